"""Judge recorded answers in the grader's own, clean process: every verdict is computed here.

A test cell of the course is a list of calls ``check_x(func_name, literal, key=literal,
other=func_name2)`` (:func:`~autograder.grading.protocol.cells.parse_test_cell`, one
:class:`~autograder.grading.protocol.records.CheckCall` each).  In the sandbox
each call ran with the student's objects recorded (:mod:`autograder.grading.inside.recorder`).  Here the
*same* check, imported by a process that never ran student code, is called again with stand-ins that
replay the recording: a function, a class (a genuine type, derived from the ``torch.nn`` class the
student's derives from), the objects they returned (an optimiser whose ``step`` and ``zero_grad``
replay, a module rebuilt from genuine ``torch.nn`` classes whose ``forward`` replays).  Each replayed
call checks that the check asks what the kernel's check asked, calls the check's own callbacks as the
student's code did, gives every tensor, array and module the check handed over the state the
student's code left it in (``.grad`` included), and returns the recorded value, rebuilt only from
plain tensors, arrays, numbers, strings and genuine ``torch.nn`` classes (a returned tensor that
carried a graph gets a first-order stand-in graph with the recorded gradients), or raises the
recorded error.  Whatever the notebook patched in its own process (numpy, torch, ``builtins``, the
checks, the recorder) and whatever lying objects it returned, the verdict is computed here.

Recordings are read by :func:`records.load` (bounded size, entries, pickle operations, values,
depth and time; a refused file gives a verdict that says why), and judging a cell has a time limit.

Shortcuts: the genuine check runs inside :func:`_shortcuts.replaying` with what the kernel's
windows found (:attr:`records.CallRecord.windows`), so the same windows refuse the same routines
and the check fails with its own plain message ("ADAMOptimizer uses torch.optim.Adam: the exercise
is to write the update yourself"; :attr:`Verdict.shortcut`).  A replay that passes through more
windows than the kernel reported means that the notebook silenced the watch: it fails.

An answer whose optimiser trajectory is bitwise identical to the library routine the exercise asks
to write (``torch.optim.SGD``, ``torch.optim.Adam``) without calling it is flagged for review
(:attr:`Verdict.review`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlnn_helpers.checks import CHECKS, _shortcuts

from ..model import Verdict
from ..protocol import records
from ..protocol.records import CheckCall, find_check

JUDGE_SECONDS = 120.0
"""Time limit for judging one test cell."""

__all__ = ["load_records", "judge", "Loaded"]


@dataclass
class Loaded:
    """A cell's recording as read from its file (or why it was refused)."""

    calls: list = field(default_factory=list)
    store: records.TensorStore | None = None
    problem: str = ""

    def __bool__(self) -> bool:
        return not self.problem


def load_records(folder: Path, cell: str) -> Loaded | None:
    """The recording of one test cell; None when there is none, falsy with a reason if refused."""
    try:
        loaded = records.load(str(Path(folder) / f"{cell}.pt"))
    except records.RecordingRejected as exc:
        return Loaded(problem=str(exc))
    except Exception as exc:  # noqa: BLE001 - anything else about the file: refused, with a reason
        return Loaded(problem=f"the recording could not be read ({type(exc).__name__})")
    if loaded is None:
        return None
    return Loaded(loaded[0], loaded[1])


# ------------------------------------------------------------------------------------------------
# Replaying
# ------------------------------------------------------------------------------------------------


class ReplayMismatch(RuntimeError):
    """The check asked something the recording does not hold."""


def _opaque(type_name: str) -> Any:
    name = "".join(c if c.isalnum() else "_" for c in str(type_name).rsplit(".", 1)[-1])[:80]
    module = str(type_name).rsplit(".", 1)[0][:80] if "." in str(type_name) else "builtins"
    cls = type(name or "object", (), {"__module__": module,
                                      "__repr__": lambda self: f"<{type_name}>"})
    return cls()


def _exception(raised: list) -> BaseException:
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in str(raised[0]))[:80] or "Exception"
    message = str(raised[1]) if len(raised) > 1 else ""
    if name == "NotImplementedError":
        return NotImplementedError(message)
    return type(name, (Exception,), {"__module__": "builtins"})(message)


class Replayer:
    """Stand-ins for the student's objects in one check call, replaying its recording."""

    def __init__(self, call: CheckCall, record: records.CallRecord, store: records.TensorStore,
                 deadline: float) -> None:
        self.call_spec, self.record, self.store, self.deadline = call, record, store, deadline
        self.tracker = records.Tracker()
        self.position = 0
        self.built: dict[int, Any] = {}
        self.classes: dict[tuple, type] = {}
        self.names = call.students

    # -- the student's objects ---------------------------------------------------------------------

    def stand_in(self, index: int) -> Any:
        student = self.record.students[index] if index < len(self.record.students) else None
        if student is None or student.kind == "missing":
            return None
        name = self.names[index] if index < len(self.names) else student.name
        replayer = self
        if student.kind == "class":
            base = records.torch_class(student.torch_base) or object

            def new(cls, *args, **kwargs):
                return replayer.replay(index, "__call__", args, kwargs)

            return type(student.type_name or name, (base,), {
                "__new__": new, "__init__": lambda self, *a, **k: None, "__module__": "__main__",
            })
        if student.kind in ("function", "callable"):
            def replayed(*args, **kwargs):
                return replayer.replay(index, "__call__", args, kwargs)

            replayed.__name__ = replayed.__qualname__ = name
            return replayed
        return _opaque(student.type_name or "object")

    # -- one call ----------------------------------------------------------------------------------

    def replay(self, target: int, method: str, args: tuple, kwargs: dict) -> Any:
        if time.monotonic() > self.deadline:
            raise TimeoutError(f"judging took more than {JUDGE_SECONDS:.0f} s")
        events = self.record.events
        who = self.names[target] if target < len(self.names) else f"the object {self.names[0]} made"
        if self.position >= len(events):
            raise ReplayMismatch(
                f"{who} was not called with these inputs when the notebook ran (the test was not "
                "reached or was interfered with)"
            )
        event = events[self.position]
        self.position += 1
        signature: list = []
        for value in (*args, *kwargs.values()):
            self.tracker.walk(value, signature)
        if event.target != target or event.method != method or not records.signatures_match(
                event.signature, signature):
            raise ReplayMismatch(
                "the recording does not match what the check asks (the notebook interfered with "
                "the test)"
            )
        for callback in event.callbacks:
            if time.monotonic() > self.deadline:
                raise TimeoutError(f"judging took more than {JUDGE_SECONDS:.0f} s")
            if 0 <= callback.index < len(self.tracker.callbacks):
                try:
                    self.tracker.callbacks[callback.index](
                        *[self.decode(a) for a in callback.args],
                        **{str(k): self.decode(v) for k, v in callback.kwargs.items()})
                except Exception:  # noqa: BLE001 - the check's callback refused a recorded input
                    pass
        for key, state in event.states.items():
            try:
                k = int(key)
            except ValueError:
                continue
            if 0 <= k < len(self.tracker.objects):
                records.restore_state(self.tracker.objects[k], state, self.store)
        if event.raised is not None:
            raise _exception(event.raised)
        return self.decode(event.returned)

    # -- values ------------------------------------------------------------------------------------

    def _tracked(self, k: Any, name: str = "") -> Any:
        if type(k) is not int or not 0 <= k < len(self.tracker.objects):
            return None
        obj = self.tracker.objects[k]
        if name:
            if not isinstance(obj, torch.nn.Module):
                return None
            return dict(torch.nn.Module.named_parameters(obj)).get(name)
        return obj

    def _surrogate(self, value: torch.Tensor, grads: Any) -> torch.Tensor:
        """``value`` with a graph whose gradients (of the sum) are the recorded ones."""
        if not value.is_floating_point():
            return value
        total = None
        for entry in grads if isinstance(grads, list) else []:
            if not (isinstance(entry, list) and len(entry) == 3):
                continue
            source = self._tracked(entry[0], str(entry[1]))
            grad = self.store.get(entry[2])
            if (not isinstance(source, torch.Tensor) or grad is None or grad.shape != source.shape
                    or not source.requires_grad):
                continue
            term = (source * grad.to(source.dtype)).sum()
            total = term if total is None else total + term
        if total is None or not bool(torch.isfinite(total.detach())):
            total = torch.zeros((), requires_grad=True)
        total = total.to(value.dtype) / max(value.numel(), 1)
        return value + (total - total.detach())

    def decode(self, entry: Any, depth: int = 0) -> Any:
        if not isinstance(entry, dict) or depth > records.MAX_DEPTH:
            return _opaque("unreadable")
        if "ref" in entry:
            found = self._tracked(entry["ref"])
            return found if found is not None else _opaque("unreadable")
        if "value" in entry and "npscalar" not in entry:
            value = records.decode_number(entry["value"])
            return value if value is None or type(value) in records._PLAIN else None
        if "npscalar" in entry:
            kinds = {v: k for k, v in records._NUMPY_SCALARS.items()}
            kind = kinds.get(entry["npscalar"])
            value = records.decode_number(entry.get("value"))
            return kind(value) if kind is not None and type(value) in (bool, int, float) else None
        if "tensor" in entry:
            value = self.store.get(entry["tensor"])
            if value is None:
                return _opaque("unreadable")
            if not entry.get("exact", False):
                return _opaque("torch.Tensor subclass")
            if entry.get("graph"):
                return self._surrogate(value, entry.get("grads"))
            if entry.get("requires_grad") and value.is_floating_point():
                value.requires_grad_(True)
            return value
        if "ndarray" in entry:
            value = self.store.get(entry["ndarray"])
            if value is None:
                return _opaque("unreadable")
            if not entry.get("exact", False):
                return _opaque("ndarray subclass")
            return value.numpy()
        if "seq" in entry:
            items = [self.decode(item, depth + 1) for item in entry.get("items", [])]
            return tuple(items) if entry["seq"] == "tuple" else items
        if "class" in entry:
            return records.torch_class(entry["class"]) or _opaque(str(entry["class"]))
        if "node" in entry:
            return self.module(entry["node"], depth + 1)
        if "handle" in entry:
            return self._handle(entry)
        return _opaque(entry.get("opaque", "object"))

    def _bind(self, obj: Any, handle: int, methods: list) -> None:
        replayer = self
        for name in methods:
            if not (isinstance(name, str) and name.isidentifier()):
                continue

            def method(*args, _name=name, **kwargs):
                return replayer.replay(handle, _name, args, kwargs)

            object.__setattr__(obj, name, method)

    def _handle(self, entry: dict) -> Any:
        handle = entry.get("handle")
        if type(handle) is not int:
            return _opaque("unreadable")
        if handle in self.built:
            return self.built[handle]
        name = "".join(c for c in str(entry.get("type", "Object")) if c.isalnum() or c == "_")
        obj = type(name or "Object", (), {"__module__": "__main__"})()
        self._bind(obj, handle, list(entry.get("methods", []))[:200])
        self.built[handle] = obj
        return obj

    def module(self, index: Any, depth: int) -> Any:
        """Rebuild the module node ``index`` from genuine ``torch.nn`` classes (shared once)."""
        key = ("node", index)
        if key in self.built:
            return self.built[key]
        nodes = self.record.nodes
        if type(index) is not int or not 0 <= index < len(nodes) or depth > records.MAX_DEPTH:
            return _opaque("unreadable")
        node = nodes[index]
        cls = records.torch_class(node.torch_class)
        if cls is None:
            return _opaque(node.type_name)
        if node.own:
            name = "".join(c for c in node.type_name if c.isalnum() or c == "_") or "Module"
            cls = self.classes.setdefault((name, cls), type(name, (cls,), {"__module__": "__main__"}))
        module = cls.__new__(cls)
        torch.nn.Module.__init__(module)
        self.built[key] = module
        allowed = set(getattr(cls, "__constants__", ()))  # the class's own plain settings only
        for name, value in node.constants.items():
            if name in allowed:
                object.__setattr__(module, name, records.unliteral(value))
        for name, value in node.params:
            name = str(name)
            if value is None:
                module.register_parameter(name, None)
            elif "ref" in value:
                found = self._tracked(value["ref"])
                if isinstance(found, torch.nn.Parameter):
                    module.register_parameter(name, found)
            else:
                tensor = self.store.get(value.get("tensor"))
                if tensor is not None and tensor.is_floating_point():
                    module.register_parameter(name, torch.nn.Parameter(
                        tensor, requires_grad=bool(value.get("requires_grad", True))))
        for name, value in node.buffers:
            tensor = None if value is None else self.store.get(value.get("tensor"))
            module.register_buffer(str(name), tensor)
        for name, value in node.children:
            child = None
            if isinstance(value, dict) and "node" in value:
                child = self.module(value["node"], depth + 1)
            elif isinstance(value, dict) and "ref" in value:
                child = self._tracked(value["ref"])
            if child is None or isinstance(child, torch.nn.Module):
                module.add_module(str(name), child)
        object.__setattr__(module, "training", bool(node.training))
        if node.handle >= 0:
            self._bind(module, node.handle, node.methods[:200])
            self.built[node.handle] = module
        return module


# ------------------------------------------------------------------------------------------------
# Verdicts
# ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def replayed_windows(found: list[list[str]], closed: list) -> Iterator[None]:
    """Hand ``found`` to the check's windows in order; append every top-level window to ``closed``."""
    previous = _shortcuts.REPORTER

    def count(window: Any) -> None:
        if not _shortcuts._open_windows:
            closed.append(window)

    _shortcuts.REPORTER = count
    try:
        with _shortcuts.replaying(found):
            yield
    finally:
        _shortcuts.REPORTER = previous


@contextlib.contextmanager
def _unwatched() -> Iterator[None]:
    """Windows note nothing (the grader's own runs of the library routine, :func:`library_twin`)."""
    found = _shortcuts.Window.found
    _shortcuts.Window.found = lambda self, what: None
    try:
        yield
    finally:
        _shortcuts.Window.found = found


class _LibraryRoutine:
    """A ``torch.optim`` class as an exercise's class would be written (for the review flag)."""

    library: type = torch.optim.SGD

    def __init__(self, parameters, **settings):
        self.optimiser = self.library(list(parameters), foreach=False, **settings)

    def step(self):
        self.optimiser.step()

    def zero_grad(self):
        self.optimiser.zero_grad()


def _library_routine(path: str) -> type:
    """:class:`_LibraryRoutine` of the ``torch.optim`` class at ``path`` (``torch.optim.Adam``)."""
    module, _, name = path.rpartition(".")
    if module != "torch.optim":
        raise ValueError(f"a check's library routine is a torch.optim class, not {path!r}")
    return type(f"_{name}Routine", (_LibraryRoutine,), {"library": getattr(torch.optim, name)})


LIBRARY_ROUTINES = {name: (entry.library, _library_routine(entry.library))
                    for name, entry in CHECKS.items() if entry.library}
"""Checks of exercises that re-implement a library routine: the routine, as a class."""


def _step_states(record: records.CallRecord, store: records.TensorStore) -> list:
    """The parameter values after every ``step()`` of the optimisers in a recording."""
    handles = {e.target for e in record.events if e.method == "step"}
    states = []
    for event in record.events:
        if event.method == "step" and event.target in handles:
            for key in sorted(event.states, key=lambda k: int(k) if k.isdigit() else -1):
                state = event.states[key]
                value = store.get(state.get("t")) if isinstance(state, dict) else None
                states.append((key, value))
    return states


def library_twin(call: CheckCall, record: records.CallRecord, store: records.TensorStore) -> str:
    """Which library routine the recorded optimiser reproduces bit for bit ('' if none)."""
    if call.check not in LIBRARY_ROUTINES:
        return ""
    from ..inside import recorder

    label, routine = LIBRARY_ROUTINES[call.check]
    check = find_check(call.check)
    with _unwatched():
        session = recorder.drive(check, [routine], [call.func], records.resolve_literal(call.args),
                                 records.resolve_literal(dict(call.settings)), [])
    theirs = _step_states(session.record, session.store)
    ours = _step_states(record, store)
    if not ours or len(ours) != len(theirs):
        return ""
    for (k1, a), (k2, b) in zip(ours, theirs, strict=True):
        if k1 != k2 or a is None or b is None or a.shape != b.shape or not torch.equal(a, b):
            return ""
    return f"{call.func}'s trajectory is bitwise identical to {label}"


def judge(calls: list[CheckCall], loaded: Loaded | None, not_run: str = "",
          mode: str = "replay") -> Verdict:
    """Run every check of a test cell against the replayed recording, in this process.

    Parameters
    ----------
    calls : list of CheckCall
        The test cell, parsed from the gradebook's copy.
    loaded : Loaded or None
        :func:`load_records` of the cell.
    not_run : str
        What to say when there is no recording (e.g. the error the test cell raised).
    mode : str
        Kept for the spec's calibration; every check call is replayed whatever it says.

    Returns
    -------
    Verdict
        Passed when every call passed; the message is the first failure or the summaries.
    """
    if loaded is not None and not isinstance(loaded, Loaded):  # an older caller's plain list
        loaded = None
    if loaded is not None and loaded.problem:
        return Verdict(False, f"the recording of this test was refused: {loaded.problem}")
    deadline = time.monotonic() + JUDGE_SECONDS
    summaries, reviews = [], []
    for index, call in enumerate(calls):
        record = loaded.calls[index] if loaded is not None and index < len(loaded.calls) else None
        if not isinstance(record, records.CallRecord):
            return Verdict(False, not_run or "the test did not run (the notebook stopped before it, "
                           "or interfered with the recorder)", call=index)
        first = record.students[0] if record.students else None
        if first is None or first.kind in ("missing", "value"):
            return Verdict(False, f"{call.func} is not defined as a function in the notebook.",
                           call=index)
        check = find_check(call.check)
        if check is None:
            return Verdict(False, f"the grader has no check named {call.check}", call=index)
        replayer = Replayer(call, record, loaded.store, deadline)
        stand_ins = [replayer.stand_in(i) for i in range(len(call.students))]
        extra = {keyword: stand_ins[1 + i] for i, (keyword, _) in enumerate(call.student_kwargs)}
        closed: list = []
        try:
            with np.errstate(all="ignore"), replayed_windows(record.windows, closed):
                summaries.append(check(stand_ins[0], *records.resolve_literal(call.args),
                                       **records.resolve_literal(call.settings), **extra))
        except _shortcuts.ShortcutUsed as exc:
            return Verdict(False, str(exc), shortcut=str(exc), call=index)
        except AssertionError as exc:
            message = str(exc)
            if exc.__cause__ is not None and not message:
                message = str(exc.__cause__)
            return Verdict(False, message, call=index)
        except Exception as exc:  # noqa: BLE001 - a recording the check cannot digest
            return Verdict(False, f"{call.func} could not be checked: {type(exc).__name__}: {exc}",
                           call=index)
        if len(closed) > len(record.windows):
            return Verdict(False, "the recording does not match what the check asks (the notebook "
                           "interfered with the test's watch for refused routines)", call=index)
        try:
            twin = library_twin(call, record, loaded.store)
        except Exception:  # noqa: BLE001 - the flag is advice; never a reason to fail
            twin = ""
        if twin:
            reviews.append(twin)
    review = ""
    if reviews:
        review = (f"{'; '.join(sorted(set(reviews)))} in {len(reviews)} of {len(calls)} runs of "
                  "the check: it may call the library routine instead of implementing it")
    return Verdict(True, "\n".join(str(s) for s in summaries), False, review)
