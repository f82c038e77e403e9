"""The check-call and record model shared by the recorder (in the kernel) and the judge (grader).

A test cell of the course is a list of calls ``check_x(func, literal, key=literal, other=func2)``:
one :class:`CheckCall` each.  In the sandboxed kernel the recorder runs each call with the student's
callables (``func``, ``func2``) wrapped, and writes down everything that crosses the boundary
between the check and the student's code, as a :class:`CallRecord`:

* every call the check makes into the student's code (an :class:`Event`): the function or class
  called, or the method of an object the student's code returned (``optimiser.step()``,
  ``block.forward(x)``), the inputs' signature, what came back (or what was raised), every call the
  student's code made to a callback the check gave it (:class:`Callback`), and the state every
  object the check handed over (tensors, arrays, modules, their ``.grad``) was left in;
* the structure of returned networks (:class:`ModuleNode`: class, sizes, parameters, sub-modules,
  shared layers), so that the grader can rebuild them from genuine ``torch.nn`` classes;
* for a returned tensor that carries a graph, the gradients of its sum with respect to the tensors
  the check handed over, so that the grader can give its stand-in the same first-order graph;
* what every shortcut window of the check found while the student's code ran
  (:func:`dlnn_helpers.checks._shortcuts.student_code`: a refused library routine, the course's
  expected answers), one list per window in the order the windows closed, so that the grader's
  replay hands the same findings to the same windows (:attr:`CallRecord.windows`).

The grader never runs student code: it runs the genuine check against stand-ins that replay the
recording (:mod:`autograder.grading.judge.replay`), so every verdict is computed outside the kernel.

The recording is written with :func:`save` as ``{"format", "meta": JSON text, "tensors": [...]}``
and read back with :func:`load`, which bounds the file size, the inflated size and the number of
entries of the archive, the number of pickle operations, the size, nesting depth and number of
values of the JSON text, and the time spent, and says why it refused a file.

This module is staged into the kernel next to the recorder: it imports only the standard library,
``numpy`` and ``torch``, and prints nothing.
"""

from __future__ import annotations

import importlib
import io
import json
import math
import os
import pickletools
import stat
import time
import warnings
import zipfile
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

FORMAT = 3
MAX_FILE_BYTES = 128 * 2**20
"""Largest recording file read (a cell's recording is a few MiB at most)."""
MAX_INFLATED_BYTES = 256 * 2**20
"""Largest total size of the archive's entries (checked before anything is inflated)."""
MAX_ENTRIES = 20_000
MAX_PICKLE_OPS = 200_000
MAX_META_BYTES = 32 * 2**20
MAX_VALUES = 500_000
"""Most JSON values (numbers, strings, lists, objects) in a recording's description."""
MAX_DEPTH = 64
MAX_TENSORS = 50_000
LOAD_SECONDS = 30.0
MAX_WINDOWS = 5_000
"""Most shortcut windows recorded for one check call."""
MAX_FOUND = 64
"""Most findings kept per window."""
MAX_FOUND_CHARS = 200
"""Longest finding kept (a routine's name, e.g. ``torch.optim.Adam``)."""


class RecordingRejected(Exception):
    """A recording file that is not read; the message says why (for the report)."""


# ------------------------------------------------------------------------------------------------
# The model
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TorchClass:
    """A ``torch.nn`` class named in a test cell (``settings=((10, 7, 2, nn.Tanh),)``)."""

    name: str

    def __repr__(self) -> str:  # code that names the class in the kernel's test cell
        return f"__import__('torch').nn.{self.name}"

    def resolve(self) -> type | None:
        cls = getattr(torch.nn, self.name, None) if self.name.isidentifier() else None
        return cls if is_torch_class(cls) else None


def resolve_literal(value: Any) -> Any:
    """A parsed literal with its :class:`TorchClass` names replaced by the classes."""
    if isinstance(value, TorchClass):
        return value.resolve()
    if type(value) in (tuple, list):
        return type(value)(resolve_literal(v) for v in value)
    if type(value) is dict:
        return {k: resolve_literal(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class CheckCall:
    """One ``check(func, *args, **settings, **{keyword: student_name})`` call of a test cell."""

    check: str
    func: str
    settings: dict
    args: tuple = ()
    """Literal positional arguments after the function (``"zero"`` in
    ``check_init_weights(ex_zero_weights, "zero")``)."""
    student_kwargs: tuple[tuple[str, str], ...] = ()
    """Keywords whose value is another name of the notebook, e.g. ``(("backward",
    "ex_linear_backward"),)``."""

    @property
    def students(self) -> list[str]:
        """Names of the notebook's objects the check receives: ``func`` first, then keywords."""
        return [self.func, *(name for _, name in self.student_kwargs)]


@dataclass
class Callback:
    """The student's code called a callable the check gave it (e.g. ``loss_fn(x)``)."""

    index: int
    """Which callback, in the order the check handed them over."""
    args: list
    kwargs: dict


@dataclass
class Event:
    """One call the check made into the student's code, and what came of it."""

    target: int
    """0.. for the notebook's objects (:attr:`CheckCall.students`), then the objects the student's
    code returned (``handles``) in the order they appeared."""
    method: str
    """``__call__`` or the name of the method called."""
    signature: list
    """The inputs' kinds, shapes and sums (to notice a check that was tampered with)."""
    callbacks: list[Callback] = field(default_factory=list)
    returned: Any = None
    """Encoded value (see :func:`encode_plain`), or None when something was raised."""
    raised: list | None = None
    """``[exception type name, message]``."""
    states: dict = field(default_factory=dict)
    """Tracked object index (as text) -> its state after the call, for those that changed."""


@dataclass
class ModuleNode:
    """A module the student's code built (rebuilt by the grader from genuine ``torch.nn``)."""

    type_name: str
    torch_class: str
    """``module:qualname`` of the class, or of its nearest ``torch.nn`` base for the student's own
    classes (then ``own`` is True)."""
    own: bool
    constants: dict
    params: list
    """``[name, encoded tensor or None]``."""
    buffers: list
    children: list
    """``[name, {"node": k} | {"ref": k} | None]``."""
    training: bool = True
    handle: int = -1
    """The student's own module returned to the check: its handle (its methods are recorded)."""
    methods: list = field(default_factory=list)


@dataclass
class StudentObject:
    """What the notebook defined under a name the check receives."""

    name: str
    kind: str
    """``missing``, ``function``, ``class``, ``callable`` or ``value``."""
    type_name: str = ""
    torch_base: str = ""
    """For a class derived from a ``torch.nn`` module: that base (``module:qualname``)."""


@dataclass
class CallRecord:
    """Everything one check call saw of the student's code."""

    students: list[StudentObject]
    events: list[Event] = field(default_factory=list)
    nodes: list[ModuleNode] = field(default_factory=list)
    kernel_message: str = ""
    """What the check said in the kernel: information only, never a verdict."""
    complete: bool = False
    windows: list = field(default_factory=list)
    """What each top-level shortcut window of the check found (a list of names per window, in the
    order the windows closed; see :mod:`dlnn_helpers.checks._shortcuts`)."""


def found_lists(value: Any) -> list[list[str]]:
    """Recorded window findings as bounded lists of short strings (anything else is dropped)."""
    if not isinstance(value, list):
        return []
    windows = []
    for item in value[:MAX_WINDOWS]:
        if isinstance(item, list):
            windows.append([str(x)[:MAX_FOUND_CHARS] for x in item[:MAX_FOUND]
                            if isinstance(x, str)])
        else:
            windows.append([])
    return windows


# ------------------------------------------------------------------------------------------------
# Check lookup (one copy, used in the kernel and by the judge)
# ------------------------------------------------------------------------------------------------


def find_check(name: str) -> Any:
    """The check function ``name`` from ``dlnn_helpers.checks`` or one of its modules, or None."""
    import pkgutil

    if not (isinstance(name, str) and name.startswith("check_") and name.isidentifier()):
        return None
    package = importlib.import_module("dlnn_helpers.checks")
    found = getattr(package, name, None)
    if callable(found):
        return found
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"dlnn_helpers.checks.{info.name}")
        found = getattr(module, name, None)
        if callable(found):
            return found
    return None


# ------------------------------------------------------------------------------------------------
# Values
# ------------------------------------------------------------------------------------------------

_TENSOR = torch.Tensor
_NDARRAY = np.ndarray
_PLAIN = (bool, int, float, str)
_NUMPY_SCALARS = {np.float64: "float64", np.float32: "float32", np.int64: "int64",
                  np.int32: "int32", np.bool_: "bool"}


def class_path(cls: type) -> str:
    return f"{getattr(cls, '__module__', '?')}:{getattr(cls, '__qualname__', '?')}"


def is_torch_class(cls: Any) -> bool:
    """A class of ``torch.nn`` (genuine, importable by its path)."""
    return isinstance(cls, type) and str(getattr(cls, "__module__", "")).startswith("torch.nn")


def torch_class(path: str) -> type | None:
    """The ``torch.nn`` class at ``module:qualname`` (None unless it is one)."""
    if not isinstance(path, str) or ":" not in path:
        return None
    module, _, qualname = path.partition(":")
    if not (module == "torch.nn" or module.startswith("torch.nn.")) or not qualname.isidentifier():
        return None
    try:
        cls = getattr(importlib.import_module(module), qualname)
    except (ImportError, AttributeError):
        return None
    return cls if is_torch_class(cls) else None


def encode_number(value: float) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    return value


def decode_number(value: Any) -> Any:
    if isinstance(value, dict) and "float" in value:
        return float(value["float"]) if value["float"] in ("nan", "inf", "-inf") else None
    return value


class TensorStore:
    """Tensors of a recording, referred to by index from the JSON description."""

    def __init__(self, tensors: list | None = None) -> None:
        self.tensors: list[torch.Tensor] = tensors if tensors is not None else []

    def put(self, value: torch.Tensor) -> int:
        self.tensors.append(_TENSOR.clone(_TENSOR.detach(_TENSOR.cpu(value))).as_subclass(_TENSOR))
        return len(self.tensors) - 1

    def get(self, index: Any) -> torch.Tensor | None:
        if type(index) is int and 0 <= index < len(self.tensors):
            value = self.tensors[index]
            if type(value) is torch.Tensor:
                return value.detach().clone()
        return None


def literal(value: Any, depth: int = 0) -> Any:
    """A check's literal argument as JSON (tuples kept apart from lists)."""
    if value is None or type(value) in _PLAIN:
        return encode_number(value)
    if type(value) in (tuple, list) and depth < 8:
        return {"seq": type(value).__name__, "items": [literal(v, depth + 1) for v in value]}
    if type(value) is dict and depth < 8:
        return {"dict": [[str(k), literal(v, depth + 1)] for k, v in value.items()]}
    return {"opaque": type(value).__name__}


def unliteral(value: Any) -> Any:
    if isinstance(value, dict):
        if "seq" in value:
            items = [unliteral(v) for v in value.get("items", [])]
            return tuple(items) if value["seq"] == "tuple" else items
        if "dict" in value:
            return {str(k): unliteral(v) for k, v in value["dict"]}
        if "float" in value:
            return decode_number(value)
        return None
    return value


def _summary(value: Any) -> list:
    """Kind, shape and sum of an input (a cheap fingerprint to match the check's calls)."""
    if type(value) is torch.Tensor or isinstance(value, torch.Tensor):
        data = _TENSOR.detach(_TENSOR.cpu(value))
        total = float(torch.nan_to_num(data.double()).abs().sum()) if data.is_floating_point() \
            or data.dtype in (torch.int64, torch.int32, torch.bool) else 0.0
        return ["tensor", list(data.shape), total]
    if isinstance(value, np.ndarray):
        total = float(np.nan_to_num(np.abs(value.astype(np.float64)).sum())) \
            if value.dtype.kind in "biuf" else 0.0
        return ["ndarray", list(value.shape), total]
    if isinstance(value, torch.nn.Module):
        return ["module", type(value).__name__]
    if value is None or type(value) in _PLAIN:
        return ["value", encode_number(value)]
    if type(value) in (list, tuple):
        return [type(value).__name__, len(value)]
    if isinstance(value, type):
        return ["class", class_path(value)]
    if callable(value):
        return ["callable"]
    return ["other", type(value).__name__]


def signatures_match(recorded: Any, given: list) -> bool:
    """Whether the inputs the grader's check passes are those the kernel's check passed."""
    if not isinstance(recorded, list) or len(recorded) != len(given):
        return False
    for a, b in zip(recorded, given, strict=True):
        if not isinstance(a, list) or len(a) != len(b) or a[0] != b[0]:
            return False
        if a[0] in ("tensor", "ndarray"):
            if a[1] != b[1] or not isinstance(a[2], (int, float)):
                return False
            if abs(a[2] - b[2]) > 1e-5 * max(1.0, abs(b[2])):
                return False
        elif a[0] not in ("callable",) and a != b:
            return False
    return True


# ------------------------------------------------------------------------------------------------
# Tracking what the check hands over (same walk in the kernel and in the grader)
# ------------------------------------------------------------------------------------------------


class Tracker:
    """Objects the check handed to the student's code, numbered in order of first appearance.

    Tensors, arrays and modules are *tracked* (their state after every call is recorded, and
    restored in the grader); other callables are *callbacks*.  Iterators (``model.parameters()``,
    generators) are read into a list: the student gets a fresh iterator over the same items.
    """

    def __init__(self) -> None:
        self.objects: list = []
        self.ids: dict[int, int] = {}
        self.callbacks: list = []
        self.callback_ids: dict[int, int] = {}

    def index(self, obj: Any) -> int | None:
        return self.ids.get(id(obj))

    def _track(self, obj: Any) -> None:
        if id(obj) not in self.ids:
            self.ids[id(obj)] = len(self.objects)
            self.objects.append(obj)

    def walk(self, value: Any, signature: list, wrap_callback=None, depth: int = 0) -> Any:
        """Register what ``value`` holds; return what to pass on (iterators re-made)."""
        if isinstance(value, (torch.Tensor, np.ndarray, torch.nn.Module)):
            self._track(value)
            signature.append(_summary(value))
            return value
        if value is None or type(value) in _PLAIN or isinstance(value, type):
            signature.append(_summary(value))
            return value
        if type(value) in (list, tuple) and depth < 4:
            signature.append(_summary(value))
            items = [self.walk(v, signature, wrap_callback, depth + 1) for v in value]
            return value if all(a is b for a, b in zip(items, value, strict=True)) else type(value)(
                items)
        if hasattr(type(value), "__next__") and hasattr(type(value), "__iter__") and depth < 4:
            items = []
            for count, item in enumerate(value):
                if count >= 10_000:
                    break
                items.append(item)
            signature.append(["iterator", len(items)])
            passed = [self.walk(v, signature, wrap_callback, depth + 1) for v in items]
            return iter(passed)
        if callable(value):
            if id(value) not in self.callback_ids:
                self.callback_ids[id(value)] = len(self.callbacks)
                self.callbacks.append(value)
            signature.append(["callable"])
            index = self.callback_ids[id(value)]
            return wrap_callback(index, value) if wrap_callback else value
        signature.append(_summary(value))
        return value

    # -- state ---------------------------------------------------------------------------------

    @staticmethod
    def _tensor_state(t: torch.Tensor) -> tuple:
        data = _TENSOR.detach(t)
        grad = t.grad if isinstance(t, torch.Tensor) and t.is_leaf else None
        return (data.clone(), None if grad is None else _TENSOR.detach(grad).clone())

    def snapshot(self, obj: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            return self._tensor_state(obj)
        if isinstance(obj, np.ndarray):
            return np.array(obj, copy=True)
        if isinstance(obj, torch.nn.Module):
            return {name: (p, *self._tensor_state(p))
                    for name, p in torch.nn.Module.named_parameters(obj)}
        return None

    @staticmethod
    def _same_tensor(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
        if a is None or b is None:
            return a is b
        return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b))

    def changed(self, obj: Any, before: Any) -> bool:
        now = self.snapshot(obj)
        if isinstance(obj, torch.Tensor):
            return not (self._same_tensor(now[0], before[0]) and self._same_tensor(now[1], before[1]))
        if isinstance(obj, np.ndarray):
            return not (now.shape == before.shape and np.array_equal(now, before, equal_nan=True))
        if isinstance(obj, torch.nn.Module):
            if now.keys() != before.keys():
                return True
            return any(now[k][0] is not before[k][0] or not self._same_tensor(now[k][1], before[k][1])
                       or not self._same_tensor(now[k][2], before[k][2]) for k in now)
        return False

    @staticmethod
    def encode_state(obj: Any, before: Any, store: TensorStore) -> dict:
        """The state of a tracked object, for the recording."""

        def tensor(t: torch.Tensor) -> dict:
            grad = t.grad if t.is_leaf else None
            return {"t": store.put(t), "grad": None if grad is None else store.put(grad)}

        if isinstance(obj, torch.Tensor):
            return {"kind": "tensor", **tensor(obj)}
        if isinstance(obj, np.ndarray):
            if obj.dtype.kind not in "biuf":
                return {"kind": "none"}
            return {"kind": "ndarray", "t": store.put(torch.from_numpy(np.array(obj, copy=True)))}
        if isinstance(obj, torch.nn.Module):
            params = {}
            for name, p in torch.nn.Module.named_parameters(obj):
                replaced = not (isinstance(before, dict) and name in before and before[name][0] is p)
                params[name] = {**tensor(p), "replaced": replaced}
            return {"kind": "module", "params": params}
        return {"kind": "none"}


def restore_state(obj: Any, state: Any, store: TensorStore) -> None:
    """Give a tracked object of the grader's check the state the student's code left it in."""
    if not isinstance(state, dict):
        return

    def put(t: torch.Tensor, entry: dict) -> None:
        value = store.get(entry.get("t"))
        if value is None:
            return
        with torch.no_grad():
            if value.shape == t.shape and value.dtype == t.dtype:
                t.copy_(value)
            else:
                t.data = value
        if t.is_leaf:
            grad = store.get(entry.get("grad"))
            try:
                t.grad = grad if grad is None or grad.shape == t.shape else None
            except (RuntimeError, TypeError):
                t.grad = None

    kind = state.get("kind")
    if isinstance(obj, torch.nn.Module) and kind == "module":
        params = state.get("params")
        if not isinstance(params, dict):
            return
        for name, param in list(torch.nn.Module.named_parameters(obj)):
            entry = params.get(name)
            if not isinstance(entry, dict):
                continue
            if entry.get("replaced"):
                value = store.get(entry.get("t"))
                if value is None:
                    continue
                owner_name, _, attr = name.rpartition(".")
                owner = obj.get_submodule(owner_name) if owner_name else obj
                setattr(owner, attr, torch.nn.Parameter(value, requires_grad=param.requires_grad))
                grad = store.get(entry.get("grad"))
                getattr(owner, attr).grad = grad if grad is None or grad.shape == value.shape else None
            else:
                put(param, entry)
    elif isinstance(obj, torch.Tensor) and kind == "tensor":
        put(obj, state)
    elif isinstance(obj, np.ndarray) and kind == "ndarray":
        value = store.get(state.get("t"))
        if value is not None and tuple(value.shape) == obj.shape:
            np.copyto(obj, value.numpy(), casting="unsafe")


# ------------------------------------------------------------------------------------------------
# Files
# ------------------------------------------------------------------------------------------------


def to_json(records: list) -> str:
    """JSON text of call records (dataclasses or their ``asdict`` form)."""
    return json.dumps([asdict(r) if isinstance(r, CallRecord) else r for r in records],
                      allow_nan=False)


def save(records: list, store: TensorStore, path: str) -> None:
    """Write one cell's recording (``torch.save`` of a JSON text and a list of tensors)."""
    data = {"format": FORMAT, "meta": to_json(records), "tensors": store.tensors}
    tmp = f"{path}.tmp"
    torch.save(data, tmp)
    os.replace(tmp, path)


def _check_archive(raw: bytes) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile:
        raise RecordingRejected("not a recording written by the recorder (not a zip archive)") \
            from None
    entries = archive.infolist()
    if len(entries) > MAX_ENTRIES:
        raise RecordingRejected(f"the recording holds {len(entries)} entries (limit {MAX_ENTRIES})")
    inflated = sum(e.file_size for e in entries)
    if inflated > MAX_INFLATED_BYTES:
        raise RecordingRejected(f"the recording inflates to {inflated / 2**20:.0f} MiB (limit "
                                f"{MAX_INFLATED_BYTES // 2**20} MiB)")
    if any(e.compress_type != zipfile.ZIP_STORED for e in entries):
        raise RecordingRejected("the recording holds compressed entries (the recorder writes none)")
    pickles = [e for e in entries if e.filename.endswith("data.pkl")]
    if len(pickles) != 1:
        raise RecordingRejected("the recording has no single data.pkl")
    operations = 0
    try:
        for _ in pickletools.genops(archive.read(pickles[0])):
            operations += 1
            if operations > MAX_PICKLE_OPS:
                raise RecordingRejected(f"the recording's pickle has more than {MAX_PICKLE_OPS} "
                                        "operations")
    except RecordingRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged pickle
        raise RecordingRejected(f"the recording's pickle is damaged ({type(exc).__name__})") from None


def _check_json(value: Any) -> None:
    """Bound the number of values and the nesting depth (iteratively: no recursion)."""
    stack = [(value, 0)]
    count = 0
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise RecordingRejected(f"the recording describes more than {MAX_VALUES} values")
        if depth > MAX_DEPTH:
            raise RecordingRejected(f"the recording is nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def read_file(path: str) -> bytes | None:
    """The bytes of a regular file no larger than :data:`MAX_FILE_BYTES` (None if absent)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RecordingRejected(f"the recording cannot be opened ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RecordingRejected("the recording is not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise RecordingRejected(f"the recording is {info.st_size / 2**20:.0f} MiB (limit "
                                    f"{MAX_FILE_BYTES // 2**20} MiB)")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > MAX_FILE_BYTES:
                raise RecordingRejected("the recording grew while it was read")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def load(path: str) -> tuple[list[CallRecord | None], TensorStore] | None:
    """Read a cell's recording with every bound; None when there is none.

    Raises
    ------
    RecordingRejected
        With the reason, when the file is not read.
    """
    start = time.perf_counter()
    raw = read_file(path)
    if raw is None:
        return None
    _check_archive(raw)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a forged file may make torch warn: it is refused
            data = torch.load(io.BytesIO(raw), weights_only=True)
    except Exception as exc:  # noqa: BLE001 - forged or damaged
        raise RecordingRejected(f"the recording cannot be read ({type(exc).__name__})") from None
    if not (type(data) is dict and data.get("format") == FORMAT and type(data.get("meta")) is str
            and type(data.get("tensors")) is list):
        raise RecordingRejected("the recording is not in the recorder's format")
    tensors = data["tensors"]
    if len(tensors) > MAX_TENSORS or any(type(t) is not torch.Tensor for t in tensors):
        raise RecordingRejected("the recording's tensors are not plain tensors")
    if len(data["meta"]) > MAX_META_BYTES:
        raise RecordingRejected("the recording's description is too large")
    try:
        meta = json.loads(data["meta"])
    except RecursionError:
        raise RecordingRejected("the recording is nested too deeply") from None
    except ValueError:
        raise RecordingRejected("the recording's description is not valid JSON") from None
    _check_json(meta)
    if time.perf_counter() - start > LOAD_SECONDS:
        raise RecordingRejected(f"reading the recording took more than {LOAD_SECONDS:.0f} s")
    if not isinstance(meta, list):
        raise RecordingRejected("the recording's description is not a list of check calls")
    return [_call_record(item) for item in meta], TensorStore(tensors)


def _call_record(item: Any) -> CallRecord | None:
    if not isinstance(item, dict):
        return None
    try:
        students = [StudentObject(str(s["name"]), str(s["kind"]), str(s.get("type_name", "")),
                                  str(s.get("torch_base", ""))) for s in item["students"]]
        events = []
        for e in item.get("events", []):
            callbacks = [Callback(int(c["index"]), list(c["args"]), dict(c["kwargs"]))
                         for c in e.get("callbacks", [])]
            raised = e.get("raised")
            events.append(Event(int(e["target"]), str(e["method"]), list(e["signature"]),
                                callbacks, e.get("returned"),
                                [str(x) for x in raised][:2] if isinstance(raised, list) else None,
                                dict(e.get("states") or {})))
        nodes = [ModuleNode(str(n["type_name"]), str(n["torch_class"]), bool(n["own"]),
                            dict(n.get("constants") or {}), list(n.get("params") or []),
                            list(n.get("buffers") or []), list(n.get("children") or []),
                            bool(n.get("training", True)), int(n.get("handle", -1)),
                            [str(m) for m in n.get("methods", [])])
                 for n in item.get("nodes", [])]
        return CallRecord(students, events, nodes, str(item.get("kernel_message", ""))[:4000],
                          bool(item.get("complete", False)), found_lists(item.get("windows")))
    except (KeyError, TypeError, ValueError):
        return None
