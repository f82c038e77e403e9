"""Record what a student's code does for a check, inside the sandboxed kernel (staged as a module).

The grader rewrites every test call ``check_x(func, 3, seed=3, backward=func2)`` of a test cell into
``_dlnn_grading_recorder.record(CELL, INDEX, "check_x", [func, func2], (3,), {"seed": 3},
["backward"])``.  Here the check runs with the student's objects wrapped, and every crossing of the
boundary between the check and the student's code is written down (:mod:`records`): calls of the
student's functions and classes and of the methods of the objects they return (an optimiser's
``step``, a module's ``forward``), the values returned, the errors raised, the calls of the
check's callbacks, the state of every tensor, array and module the check handed over after each
call, the structure of returned networks, and what the check's shortcut windows found while the
student's code ran (``_shortcuts.REPORTER``: a refused library routine such as ``torch.optim.Adam``
reached in any way, the course's expected answers read).  The recording is saved to
``records/CELL.pt``.  A check that stops in the kernel after the student's code ran (its expected
values of a hidden setting are not in the student package: ``ReferenceUnavailable``) is normal:
what it said is kept as information, never as a verdict.

Nothing computed here is a verdict: the grader replays the recording into the genuine checks in its
own clean process (:mod:`autograder.grading.judge.replay`).  Patching the checks, numpy, torch or this
module in the kernel can only change what is recorded: the student's own answers.

This module is imported by untrusted code and trusts nothing it finds at run time; it uses only the
standard library, ``numpy``, ``torch``, :mod:`records` and the student package's shortcut windows
(``dlnn_helpers.checks._shortcuts``, imported in the notebook's first cell, before any student
code).  It prints nothing.
"""

from __future__ import annotations

import os
import types
from typing import Any

import numpy as np
import torch

try:
    from ..protocol import records
except ImportError:  # staged in the kernel as a top-level module next to its records model
    import _dlnn_grading_records as records  # type: ignore[no-redef]

try:  # the student package's shortcut windows (imported before any student code runs)
    from dlnn_helpers.checks import _shortcuts
except ImportError:  # pragma: no cover - a package without shortcut windows
    _shortcuts = None

_TENSOR = torch.Tensor
_NDARRAY = np.ndarray
_MODULE = torch.nn.Module
_GRAD = torch.autograd.grad
_VARIABLE = torch.autograd.Variable
_ENGINE = _VARIABLE._execution_engine
"""autograd's engine as it was before any notebook code or shortcut window (the recorder's own
gradients are not the student's use of autograd)."""
_FOLDER = os.path.join(os.getcwd(), "records")
_CELLS: dict[str, list] = {}
MAX_DEPTH = 4
MAX_NODES = 5_000
MAX_EVENTS = 20_000


def _is_own_class(cls: type) -> bool:
    module = str(getattr(cls, "__module__", ""))
    return not (module == "builtins" or module.startswith(("torch", "numpy")))


def _torch_base(cls: type) -> type | None:
    for base in getattr(cls, "__mro__", ()):
        if records.is_torch_class(base) and issubclass(base, _MODULE):
            return base
    return None


class Session:
    """The recording of one check call (also used by the grader on trusted library code)."""

    def __init__(self, students: list, names: list[str]) -> None:
        self.store = records.TensorStore()
        self.tracker = records.Tracker()
        self.before: list = []
        self.depth = 0
        self.event: records.Event | None = None
        self.node_ids: dict[int, int] = {}
        self.keep: list = []  # described modules stay alive, so that their ids stay theirs
        self.handles = 0
        self.reporting = False
        self.record = records.CallRecord([self._describe(n, s) for n, s in zip(names, students,
                                                                                 strict=True)])
        self.handles = len(students)

    @staticmethod
    def _describe(name: str, obj: Any) -> records.StudentObject:
        if obj is None:
            return records.StudentObject(name, "missing")
        kind = type(obj)
        if isinstance(obj, type):
            base = _torch_base(obj)
            return records.StudentObject(name, "class", obj.__name__,
                                         records.class_path(base) if base else "")
        if isinstance(obj, types.FunctionType):
            return records.StudentObject(name, "function", kind.__name__)
        if callable(obj):
            return records.StudentObject(name, "callable", kind.__name__)
        return records.StudentObject(name, "value", kind.__name__)

    # -- shortcut windows ------------------------------------------------------------------------

    def report(self, window: Any) -> None:
        """``_shortcuts.REPORTER``: keep what a top-level window of the check found."""
        if not self.reporting or len(self.record.windows) >= records.MAX_WINDOWS:
            return
        try:
            if _shortcuts is not None and list(_shortcuts._open_windows):
                return  # a window opened inside another one (e.g. by the student's code)
            used = list(window.used)[:records.MAX_FOUND]
            self.record.windows.append([str(u)[:records.MAX_FOUND_CHARS] for u in used])
        except Exception:  # noqa: BLE001 - a tampered window: recorded as finding nothing
            self.record.windows.append([])

    # -- wrapping --------------------------------------------------------------------------------

    def wrap(self, index: int, obj: Any) -> Any:
        """What the check receives instead of the student's object ``index``."""
        if obj is None or not callable(obj):
            return obj
        session = self

        def recorded(*args, **kwargs):
            return session.invoke(index, "__call__", obj, args, kwargs)

        if isinstance(obj, type):
            try:
                return type(obj)(obj.__name__, (obj,), {
                    "__new__": staticmethod(lambda cls, *a, **k: recorded(*a, **k)),
                    "__module__": obj.__module__, "__qualname__": obj.__qualname__,
                })
            except Exception:  # noqa: BLE001 - a class that cannot be derived: call it plainly
                return recorded
        recorded.__name__ = getattr(obj, "__name__", "func")
        return recorded

    def _callback(self, index: int, func: Any) -> Any:
        session = self

        def callback(*args, **kwargs):
            event = session.event
            if event is not None and len(event.callbacks) < MAX_EVENTS:
                event.callbacks.append(records.Callback(
                    index, [session.encode(a, 0) for a in args],
                    {str(k): session.encode(v, 0) for k, v in kwargs.items()}))
            return func(*args, **kwargs)

        return callback

    def invoke(self, target: int, method: str, func: Any, args: tuple, kwargs: dict) -> Any:
        """Call the student's ``func`` for the check, and record the call."""
        if self.depth > 0 or len(self.record.events) >= MAX_EVENTS:  # the student's own inner calls
            return func(*args, **kwargs)
        signature: list = []
        args = tuple(self.tracker.walk(a, signature, self._callback) for a in args)
        kwargs = {k: self.tracker.walk(v, signature, self._callback) for k, v in kwargs.items()}
        while len(self.before) < len(self.tracker.objects):
            self.before.append(self.tracker.snapshot(self.tracker.objects[len(self.before)]))
        event = records.Event(target, method, signature)
        self.record.events.append(event)
        self.event, self.depth = event, 1
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            event.raised = [type(exc).__name__, str(exc)[:2000]]
            raise
        else:
            event.returned = self.encode(result, 0, returned=True)
            return result
        finally:
            self.depth, self.event = 0, None
            self._states(event)

    def _states(self, event: records.Event) -> None:
        for k, obj in enumerate(self.tracker.objects):
            try:
                if self.tracker.changed(obj, self.before[k]):
                    event.states[str(k)] = self.tracker.encode_state(obj, self.before[k], self.store)
                    self.before[k] = self.tracker.snapshot(obj)
            except Exception as exc:  # noqa: BLE001 - the student's objects may refuse to be read
                event.states[str(k)] = {"kind": "unreadable", "why": f"{type(exc).__name__}"}

    # -- values ----------------------------------------------------------------------------------

    def _grads(self, value: torch.Tensor) -> list:
        """Gradients of ``value.sum()`` w.r.t. the tensors the check handed over (first order)."""
        inputs, where = [], []
        for k, obj in enumerate(self.tracker.objects):
            if isinstance(obj, _TENSOR) and obj.requires_grad:
                inputs.append(obj)
                where.append([k, ""])
            elif isinstance(obj, _MODULE):
                for name, p in _MODULE.named_parameters(obj):
                    if p.requires_grad:
                        inputs.append(p)
                        where.append([k, name])
        if not inputs:
            return []
        engine = _VARIABLE._execution_engine
        try:
            _VARIABLE._execution_engine = _ENGINE  # unwatched: this is the recorder's own pass
            grads = _GRAD(_TENSOR.sum(value), inputs, allow_unused=True, retain_graph=True)
        except Exception:  # noqa: BLE001 - no usable graph: recorded as reaching nothing
            return []
        finally:
            _VARIABLE._execution_engine = engine
        return [[k, name, self.store.put(g)] for (k, name), g in zip(where, grads, strict=True)
                if type(g) is _TENSOR]

    def encode(self, value: Any, depth: int, returned: bool = False) -> Any:
        """A JSON description of a value (tensors stored apart)."""
        kind = type(value)
        index = self.tracker.index(value) if isinstance(value, (_TENSOR, _NDARRAY, _MODULE)) \
            else None
        if index is not None:
            return {"ref": index}
        if value is None or kind in (bool, int, float, str):
            return {"value": records.encode_number(value)}
        if kind in records._NUMPY_SCALARS:
            return {"npscalar": records._NUMPY_SCALARS[kind],
                    "value": records.encode_number(value.item())}
        if isinstance(value, _TENSOR):
            entry = {"tensor": self.store.put(value), "exact": kind is _TENSOR,
                     "requires_grad": bool(value.requires_grad),
                     "graph": value.grad_fn is not None}
            if returned and value.grad_fn is not None and kind is _TENSOR:
                entry["grads"] = self._grads(value)
            return entry
        if isinstance(value, _NDARRAY):
            array = np.asarray(value)
            if array.dtype.kind in "biuf":
                return {"ndarray": self.store.put(torch.from_numpy(np.array(array, copy=True))),
                        "exact": kind is _NDARRAY}
            return {"opaque": f"numpy.ndarray[{array.dtype}]"}
        if kind in (tuple, list) and depth < MAX_DEPTH:
            items = tuple.__iter__(value) if kind is tuple else list.__iter__(value)
            return {"seq": kind.__name__,
                    "items": [self.encode(v, depth + 1, returned) for v in items]}
        if isinstance(value, type) and records.is_torch_class(value):
            return {"class": records.class_path(value)}
        if isinstance(value, _MODULE):
            node = self.module(value, 0)
            if returned and _is_own_class(kind) and node is not None and "node" in node:
                self._instrument(value, node["node"])
            return node if node is not None else {"opaque": "torch.nn.Module"}
        if returned and _is_own_class(kind) and not isinstance(value, type):
            handle, methods = self._handle(value)
            return {"handle": handle, "type": kind.__name__, "methods": methods}
        return {"opaque": f"{kind.__module__}.{kind.__qualname__}"}

    def module(self, module: Any, depth: int) -> dict | None:
        """Describe a module tree as nodes (shared modules once); refs for the check's own."""
        index = self.tracker.index(module)
        if index is not None:
            return {"ref": index}
        if id(module) in self.node_ids:
            return {"node": self.node_ids[id(module)]}
        if depth > 32 or len(self.record.nodes) >= MAX_NODES:
            return None
        kind = type(module)
        own = _is_own_class(kind) or not records.is_torch_class(kind)
        base = _torch_base(kind)
        if base is None:
            return None
        node = records.ModuleNode(kind.__name__, records.class_path(kind if not own else base), own,
                                  {}, [], [], [])
        self.node_ids[id(module)] = len(self.record.nodes)
        self.keep.append(module)
        self.record.nodes.append(node)
        for name in getattr(base, "__constants__", []):
            value = getattr(module, name, None)
            if value is None or type(value) in (bool, int, float, str):
                node.constants[name] = records.encode_number(value)
            elif type(value) is tuple and all(type(v) in (int, float, bool) for v in value):
                node.constants[name] = {"seq": "tuple", "items": list(value)}
        node.training = bool(object.__getattribute__(module, "__dict__").get("training", True))
        for slot, target in (("_parameters", node.params), ("_buffers", node.buffers)):
            entries = object.__getattribute__(module, "__dict__").get(slot, {})
            for name, tensor in dict.items(entries):
                if tensor is None or not isinstance(tensor, _TENSOR):
                    target.append([str(name), None])
                elif self.tracker.index(tensor) is not None:
                    target.append([str(name), {"ref": self.tracker.index(tensor)}])
                else:
                    target.append([str(name), {"tensor": self.store.put(tensor),
                                               "requires_grad": bool(tensor.requires_grad)}])
        children = object.__getattribute__(module, "__dict__").get("_modules", {})
        for name, child in dict.items(children):
            node.children.append([str(name), None if child is None else self.module(child,
                                                                                   depth + 1)])
        return {"node": self.node_ids[id(module)]}

    @staticmethod
    def _methods_of(obj: Any) -> list[str]:
        """Public methods the check may call: those of the student's own classes, and for an
        object that is not a module, those it inherits from a library class too (an optimiser
        derived from ``torch.optim.SGD`` steps with the library's ``step``)."""
        names = set()
        inherited = not isinstance(obj, _MODULE)
        for cls in type(obj).__mro__:
            if cls is object or not (_is_own_class(cls) or inherited):
                continue
            for name, member in vars(cls).items():
                if not name.startswith("_") and isinstance(member, types.FunctionType):
                    names.add(name)
        if isinstance(obj, _MODULE):
            names.add("forward")
        return sorted(names)

    def _handle(self, obj: Any) -> tuple[int, list[str]]:
        handle = self.handles
        self.handles += 1
        methods = self._methods_of(obj)
        self._bind(obj, handle, methods)
        return handle, methods

    def _instrument(self, module: Any, node_index: int) -> None:
        node = self.record.nodes[node_index]
        if node.handle < 0:
            node.handle, node.methods = self._handle(module)

    def _bind(self, obj: Any, handle: int, methods: list[str]) -> None:
        session = self
        for name in methods:
            try:
                bound = getattr(obj, name)
            except Exception:  # noqa: BLE001
                continue
            if not callable(bound):
                continue

            def method(*args, _name=name, _bound=bound, **kwargs):
                return session.invoke(handle, _name, _bound, args, kwargs)

            try:
                object.__setattr__(obj, name, method)
            except Exception:  # noqa: BLE001 - slots or a read-only object: not recorded
                pass


def drive(check: Any, students: list, names: list[str], args: tuple, settings: dict,
          student_kwargs: list[str]) -> Session:
    """Run ``check`` on the wrapped ``students``; return the session (its ``record``)."""
    session = Session(students, names)
    wrapped = [session.wrap(i, s) for i, s in enumerate(students)]
    extra = dict(zip(student_kwargs, wrapped[1:], strict=False))
    previous = getattr(_shortcuts, "REPORTER", None)
    if _shortcuts is not None:
        _shortcuts.REPORTER = session.report  # set again for every call: a notebook may reset it
    session.reporting = True
    try:
        if wrapped and callable(wrapped[0]):
            session.record.kernel_message = str(check(wrapped[0], *args, **settings, **extra))[:4000]
    except BaseException as exc:  # noqa: BLE001 - recorded (e.g. ReferenceUnavailable); goes on
        session.record.kernel_message = (str(exc) or type(exc).__name__)[:4000]
    finally:
        session.reporting = False
        if _shortcuts is not None:
            _shortcuts.REPORTER = previous
    session.record.complete = True
    return session


def record(cell: str, index: int, check_name: str, func: Any, settings: dict | None = None,
           args: tuple = (), others: dict | None = None, names: list | None = None) -> None:
    """Record the check call ``index`` of test cell ``cell``; save the cell's recording.

    ``check_name(func, *args, **settings, **others)``: ``others`` maps keywords to further objects
    of the notebook the check drives (``backward=ex_linear_backward``); ``names`` are the
    notebook's names of ``func`` and of those objects.
    """
    settings = dict(settings or {})
    others = dict(others or {})
    students = [func, *others.values()]
    names = [str(n) for n in (names or [getattr(func, "__name__", "func"), *others])]
    names += [f"arg{i}" for i in range(len(names), len(students))]
    cell_records = _CELLS.setdefault(cell, [])
    while len(cell_records) <= index:
        cell_records.append(None)
    del cell_records[index + 1:]
    try:
        check = records.find_check(check_name)
        if check is None:
            raise LookupError(check_name)
        cell_records[index] = drive(check, students, names[:len(students)], tuple(args), settings,
                                    list(others))
    except BaseException as exc:  # noqa: BLE001 - recorded; the run goes on
        session = Session(students, names[:len(students)])
        session.record.kernel_message = (str(exc) or type(exc).__name__)[:4000]
        cell_records[index] = session
    finally:
        store = records.TensorStore()
        merged = []
        for session in cell_records:
            if session is None:
                merged.append(None)
                continue
            offset = len(store.tensors)
            store.tensors.extend(session.store.tensors)
            merged.append(_shift(session.record, offset))
        os.makedirs(_FOLDER, exist_ok=True)
        records.save(merged, store, os.path.join(_FOLDER, f"{cell}.pt"))


def _shift(record: records.CallRecord, offset: int) -> dict:
    """The record as JSON data with its tensor indices moved by ``offset`` (cells share a store)."""
    import dataclasses

    data = dataclasses.asdict(record)
    if offset == 0:
        return data

    def move(value: Any) -> Any:
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if k in ("tensor", "ndarray", "t", "grad") and type(v) is int:
                    out[k] = v + offset
                elif k == "grads" and isinstance(v, list):
                    out[k] = [[a, b, c + offset] for a, b, c in v]
                else:
                    out[k] = move(v)
            return out
        if isinstance(value, list):
            return [move(v) for v in value]
        return value

    return move(data)
