"""Shortcuts a graded exercise refuses: library routines it exists to replace, the course's answers.

Each check runs the student's code inside :func:`student_code`, naming the routines that its exercise
exists to replace (``refused=("torch.optim",)`` for an optimiser written by hand).  While the
student's code runs, those routines are watched *where they run*, not in the source text: a routine
reached through ``getattr(torch.optim, "Ad" + "am")``, a subclass or a wrapper is caught as surely as
a plain import.  Every window also watches the course's own expected values: reading the shipped
file (``checks/expected``) or asking :func:`~._expected.expected` from inside the student's code.

After the student's code has run, :meth:`Window.verdict` raises a :class:`ShortcutUsed` (a
``CheckFailure``) that says plainly what was used, e.g. "ADAMOptimizer uses torch.optim.Adam: the
exercise is to write the update yourself".

The watch covers the threads the student's code starts while a window is open (the profiling hook
goes to new threads through ``threading.setprofile``; on Python 3.12+ to every running thread), and
escaping it is a finding of its own: the profiling hook removed or replaced (:data:`PROFILING_OFF`,
seen by an audit hook, which nothing can remove), a patched routine put back
(:data:`WATCH_REMOVED`), a process started (:data:`PROCESS_STARTED`).  Each scores the test 0 with
a sentence that ends "its work cannot be checked".

The catalogue of watchable routines is :data:`ROUTINES`.  The grader records what a window found
inside the sandboxed kernel (:data:`REPORTER`) and hands it back to the same window when it replays
the check in its own process (:func:`replaying`).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ._core import CheckFailure

_EXPECTED_FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "expected")


class ShortcutUsed(CheckFailure):
    """The student's code used a routine its exercise refuses (or the course's answers)."""


@dataclass
class Routine:
    """A family of library routines an exercise can refuse."""

    label: str
    """How the message names it when nothing more precise is known, e.g. ``"torch.optim"``."""
    install: Callable[[Callable[[str], None]], Callable[[], None]]
    """Patches the routines to call ``found(name)`` when used; returns the function undoing it."""
    task: str
    """What the exercise is, for the message: "write the update yourself"."""
    patterns: tuple[str, ...] = ()
    """Regular expressions that find the routine in source code (the grader also reads the text)."""


CANNOT_CHECK = ": its work cannot be checked"
"""How every finding about a watch the student's code escaped ends (the test scores 0)."""

WATCH_REMOVED = "the exercise removed the check's watch on {what}" + CANNOT_CHECK


def _patch(owner: Any, name: str, wrapper_of: Callable[[Callable], Callable],
           undo: list[Callable[[], None]], found: Callable[[str], None] | None = None) -> None:
    """Replace ``owner.name`` by ``wrapper_of(original)`` until ``undo`` runs.

    With ``found``: the wrapper removed or replaced while the window is open is a finding
    (:data:`WATCH_REMOVED`).
    """
    original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
    wrapper = wrapper_of(original)
    setattr(owner, name, wrapper)

    def restore() -> None:
        current = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name,
                                                                                   None)
        if found is not None and current is not wrapper:
            found(WATCH_REMOVED.format(what=f"{getattr(owner, '__name__', owner)}.{name}"))
        setattr(owner, name, original)

    undo.append(restore)


def _calling(found: Callable[[str], None], label: str, only_from_outside_torch: bool = False):
    """A wrapper factory: ``original`` reports ``label`` and then runs as before."""

    def wrap(original: Callable) -> Callable:
        @functools.wraps(original)
        def watched(*args, **kwargs):
            if not only_from_outside_torch or _called_from_outside_torch():
                found(label(args) if callable(label) else label)
            return original(*args, **kwargs)

        return watched

    return wrap


def _called_from_outside_torch() -> bool:
    frame = sys._getframe(2)
    module = frame.f_globals.get("__name__", "")
    return not (module == "torch" or module.startswith("torch."))


PROFILING_OFF = "the exercise switched off the interpreter's profiling" + CANNOT_CHECK
"""What a window found when the profiling that watches the student's code was removed or replaced."""

PROCESS_STARTED = "the exercise started another process ({how})" + CANNOT_CHECK
"""What a window found when the student's code started a process (its work escapes the watch)."""

PROCESS_EVENTS = ("os.fork", "os.forkpty", "os.posix_spawn", "os.exec", "os.spawn", "os.system",
                  "subprocess.Popen", "pty.spawn")
"""Audit events of a process being started (:func:`sys.addaudithook`; they cannot be silenced)."""

_SETPROFILE = sys.setprofile
_GETPROFILE = sys.getprofile
_ALL_THREADS = getattr(threading, "setprofile_all_threads", None)
"""Python 3.12+: the hook goes to the threads already running too (pools started earlier)."""
_OWN_FILES = {os.path.abspath(__file__), os.path.abspath(threading.__file__)}
"""Code allowed to set the profiling hook while a window watches: this module and ``threading``
(a thread that starts installs ``threading``'s hook, ours)."""

_watchers: list[tuple[Callable[[Any, Any], str | None], Callable[[str], None]]] = []
_before: tuple[Any, Any] = (None, None)
_chained: Callable | None = None


def _dispatch(frame, event, arg):
    """The profiling hook of every thread while a window watches calls (see :func:`_watch_calls`)."""
    if event == "call" and _watchers:
        caller = frame.f_back
        while caller is not None and caller.f_globals.get("__name__") == __name__:
            caller = caller.f_back
        for entered, found in tuple(_watchers):
            what = entered(frame, caller)
            if what is not None:
                found(what)
    chained = _chained
    if chained is not None:
        chained(frame, event, arg)


def _hook_every_thread(hook: Callable | None, threads_hook: Callable | None) -> None:
    if _ALL_THREADS is not None:
        _ALL_THREADS(hook)
    else:
        _SETPROFILE(hook)
    threading.setprofile(threads_hook)


def _watch_calls(entered: Callable[[Any, Any], str | None], found: Callable[[str], None],
                 undo: list[Callable[[], None]]) -> None:
    """Report ``entered(frame, caller)`` for every Python function entered while the window is open.

    A routine bound before the window opened (``from torch.nn.init import kaiming_normal_``) runs
    its original code, which no attribute patch reaches; its code being entered is seen here, in
    the calling thread and in every thread started while the window is open (``threading``'s
    hook; on Python 3.12+ in every thread already running too).  The caller skips this module's own
    wrappers, so that the student's code is judged, not ours.  The hook removed or replaced while
    the window is open (``sys.setprofile(None)``, ``threading.setprofile``) is itself a finding,
    :data:`PROFILING_OFF`: the audit hook sees every call of ``sys.setprofile`` however it was
    reached, and the hooks are checked again when the window closes.
    """
    global _before, _chained
    entry = (entered, found)
    if not _watchers:
        _before = (_GETPROFILE(), threading.getprofile())
        _chained = _before[0] if _before[0] is not _dispatch else None
        _hook_every_thread(_dispatch, _dispatch)
    _watchers.append(entry)

    def stop() -> None:
        global _chained
        if _GETPROFILE() is not _dispatch or threading.getprofile() is not _dispatch:
            found(PROFILING_OFF)
        if entry in _watchers:
            _watchers.remove(entry)
        if not _watchers:
            _chained = None
            _hook_every_thread(*_before)

    undo.append(stop)


def _install_optim(found: Callable[[str], None]) -> Callable[[], None]:
    undo: list[Callable[[], None]] = []

    def name_of(args: tuple) -> str:
        cls = type(args[0]) if args else torch.optim.Optimizer
        for base in cls.__mro__:
            if base.__module__.startswith("torch.optim"):
                return f"torch.optim.{base.__name__}"
        return "torch.optim"

    _patch(torch.optim.Optimizer, "__init__", _calling(found, name_of), undo, found)
    for module_name in ("adam", "adamw", "sgd", "rmsprop", "adagrad"):
        try:
            module = importlib.import_module(f"torch.optim.{module_name}")
        except ImportError:
            continue
        function = getattr(module, module_name, None)
        if callable(function) and not isinstance(function, type):
            _patch(module, module_name, _calling(found, f"torch.optim.{module_name}.{module_name}"),
                   undo, found)
    # A function bound before the window (``from torch.optim._functional import adam``) still runs
    # the original code: watch code of torch/optim being entered from outside torch/optim as well.
    folder = os.path.dirname(os.path.abspath(torch.optim.__file__)) + os.sep
    def entered(frame, caller) -> str | None:
        if not frame.f_code.co_filename.startswith(folder):
            return None
        if caller is None or caller.f_code.co_filename.startswith(folder):
            return None  # inside torch.optim: only where the student's code entered it counts
        module = frame.f_globals.get("__name__", "torch.optim")
        return f"torch.optim's code ({module}.{frame.f_code.co_name})"

    _watch_calls(entered, found, undo)
    return lambda: [u() for u in reversed(undo)] and None


class _Engine:
    """Stands in for autograd's engine: reports every backward pass, then runs it."""

    def __init__(self, engine: Any, found: Callable[[str], None]) -> None:
        self._engine, self._found = engine, found

    def run_backward(self, *args, **kwargs):
        self._found("autograd (.backward, torch.autograd.grad or torch.func)")
        return self._engine.run_backward(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


def _install_autograd(found: Callable[[str], None]) -> Callable[[], None]:
    undo: list[Callable[[], None]] = []
    variable = torch.autograd.Variable
    engine = variable._execution_engine
    ours = _Engine(engine, found)
    variable._execution_engine = ours

    def restore() -> None:
        if variable._execution_engine is not ours:
            found(WATCH_REMOVED.format(what="autograd's engine"))
        variable._execution_engine = engine

    undo.append(restore)
    import torch.autograd.forward_ad as forward_ad

    _patch(forward_ad, "make_dual", _calling(found, "forward-mode autograd (torch.func.jvp)"), undo,
           found)
    for name in ("grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd", "hessian",
                 "linearize"):
        if hasattr(torch.func, name):
            _patch(torch.func, name, _calling(found, f"torch.func.{name}"), undo, found)
    return lambda: [u() for u in reversed(undo)] and None


def _install_init(found: Callable[[str], None]) -> Callable[[], None]:
    undo: list[Callable[[], None]] = []
    codes: dict[Any, str] = {}
    for name in dir(torch.nn.init):
        value = getattr(torch.nn.init, name)
        if (not name.startswith("_") and callable(value) and not isinstance(value, type)
                and getattr(value, "__module__", "") == "torch.nn.init"):
            if hasattr(value, "__code__"):
                codes[value.__code__] = f"torch.nn.init.{name}"
            _patch(torch.nn.init, name,
                   _calling(found, f"torch.nn.init.{name}", only_from_outside_torch=True), undo,
                   found)
    for name, value in vars(torch.nn.init).items():  # its private helpers too (_no_grad_normal_)
        if (name.startswith("_") and not name.startswith("__") and hasattr(value, "__code__")
                and getattr(value, "__module__", "") == "torch.nn.init"):
            codes[value.__code__] = f"torch.nn.init.{name}"
    # A name bound before the window (`from torch.nn.init import kaiming_normal_`) still calls the
    # original function: watch the functions' code objects being entered as well.
    def entered(frame, caller) -> str | None:
        if frame.f_code not in codes:
            return None
        module = caller.f_globals.get("__name__", "") if caller is not None else ""
        return None if module == "torch" or module.startswith("torch.") else codes[frame.f_code]

    _watch_calls(entered, found, undo)
    return lambda: [u() for u in reversed(undo)] and None


class _LstsqMode(torch.overrides.TorchFunctionMode):
    """Sees every torch call, however the function was reached; reports least-squares solvers."""

    def __init__(self, found: Callable[[str], None]) -> None:
        super().__init__()
        self._found = found

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if "lstsq" in name:
            self._found("torch.linalg.lstsq")
        elif "pinv" in name:
            self._found("torch.linalg.pinv")
        return func(*args, **(kwargs or {}))


def _install_lstsq(found: Callable[[str], None]) -> Callable[[], None]:
    """Least-squares solvers: ``lstsq`` and the pseudo-inverse ``pinv`` (NumPy's and torch's)."""
    undo: list[Callable[[], None]] = []
    pinv_code = getattr(getattr(np.linalg.pinv, "__wrapped__", None), "__code__", None)
    _patch(torch.linalg, "lstsq", _calling(found, "torch.linalg.lstsq"), undo, found)
    _patch(np.linalg, "lstsq", _calling(found, "numpy.linalg.lstsq"), undo, found)
    _patch(torch.linalg, "pinv", _calling(found, "torch.linalg.pinv"), undo, found)
    _patch(np.linalg, "pinv", _calling(found, "numpy.linalg.pinv"), undo, found)
    # NumPy's pinv bound before the window (``from numpy.linalg import pinv``) runs its original
    # Python code: watch that code being entered.
    _watch_calls(lambda frame, caller: "numpy.linalg.pinv" if frame.f_code is pinv_code else None,
                 found, undo)
    # NumPy's lstsq, however it was bound, looks its gufunc up in this module on every call.
    umath = importlib.import_module("numpy.linalg._umath_linalg")
    _patch(umath, "lstsq", lambda original: _Gufunc(original, found), undo)
    mode = _LstsqMode(found)
    mode.__enter__()
    undo.append(lambda: mode.__exit__(None, None, None))
    return lambda: [u() for u in reversed(undo)] and None


class _Gufunc:
    """Stands in for NumPy's lstsq gufunc: reports, then runs it."""

    def __init__(self, original: Any, found: Callable[[str], None]) -> None:
        self._original, self._found = original, found

    def __call__(self, *args, **kwargs):
        self._found("numpy.linalg.lstsq")
        return self._original(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


class _CallsMode(torch.overrides.TorchFunctionMode):
    """Sees every torch call, however the function was reached; reports those named in ``names``."""

    def __init__(self, names: dict[str, str], found: Callable[[str], None]) -> None:
        super().__init__()
        self._names, self._found = names, found

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        for part, label in self._names.items():
            if part == name or name.endswith("_" + part):
                self._found(label)
        return func(*args, **(kwargs or {}))


def _install_multi_dot(found: Callable[[str], None]) -> Callable[[], None]:
    """Products of many matrices in one call: torch's ``multi_dot``/``chain_matmul``, NumPy's."""
    undo: list[Callable[[], None]] = []
    numpy_code = getattr(getattr(np.linalg.multi_dot, "__wrapped__", None), "__code__", None)
    _patch(np.linalg, "multi_dot", _calling(found, "numpy.linalg.multi_dot"), undo, found)
    _watch_calls(lambda frame, caller: ("numpy.linalg.multi_dot" if frame.f_code is numpy_code
                                        else None), found, undo)
    mode = _CallsMode({"multi_dot": "torch.linalg.multi_dot", "chain_matmul": "torch.chain_matmul"},
                      found)
    mode.__enter__()
    undo.append(lambda: mode.__exit__(None, None, None))
    return lambda: [u() for u in reversed(undo)] and None


def _install_inner(found: Callable[[str], None]) -> Callable[[], None]:
    """``torch.inner`` (and ``Tensor.inner``), however reached."""
    mode = _CallsMode({"inner": "torch.inner"}, found)
    mode.__enter__()
    return lambda: mode.__exit__(None, None, None)


ROUTINES: dict[str, Routine] = {
    "torch.optim": Routine("torch.optim", _install_optim, "write the update yourself",
                           (r"\boptim\b",)),
    "autograd": Routine("autograd", _install_autograd,
                        "compute the gradients by hand (no .backward, torch.autograd or torch.func)",
                        (r"\.backward\b", r"\bautograd\b", r"\btorch\.func\b", r"\bfunctorch\b",
                         r"\b(jacrev|jacfwd|vjp|jvp)\b")),
    "torch.nn.init": Routine("torch.nn.init", _install_init,
                             "draw the weights from the distribution yourself",
                             (r"\bnn\.init\b", r"\binit\.\w+_\s*\(")),
    "lstsq": Routine("torch.linalg.lstsq", _install_lstsq,
                     "solve the normal equations yourself",
                     (r"\blstsq\b", r"\blinalg\.pinv\b", r"(?<!\.)\bpinv\s*\(")),
    "multi_dot": Routine("torch.linalg.multi_dot", _install_multi_dot,
                         "multiply the weights into W_tot yourself, one layer at a time",
                         (r"\bmulti_dot\b", r"\bchain_matmul\b")),
    "torch.inner": Routine("torch.inner", _install_inner,
                           "compute the dot products yourself, with one matrix product",
                           (r"\btorch\.inner\b", r"(?<!torch)\.inner\s*\(")),
}
"""The routines an exercise can refuse, by the name it declares."""

COURSE_ANSWERS = "the course's expected answers"

DECLARED: dict[str, tuple[str, tuple[str, ...]]] = {}
"""Check name -> (the exercise's name, the routines it refuses): what :func:`declare` was told."""


def declare(check: str, exercise: str, refused: tuple[str, ...]) -> tuple[str, ...]:
    """Declare, next to a check, the routines its exercise exists to replace; return them.

    The grader reads :data:`DECLARED` to look for the same routines in the submitted text.
    """
    unknown = [r for r in refused if r not in ROUTINES]
    if unknown:
        raise ValueError(f"unknown refused routines {unknown}; known: {sorted(ROUTINES)}")
    DECLARED[check] = (exercise, tuple(refused))
    return tuple(refused)


@dataclass
class Window:
    """What the student's code used while it ran (see :func:`student_code`)."""

    exercise: str
    refused: tuple[str, ...]
    used: list[str] = field(default_factory=list)
    thread: int = field(default_factory=threading.get_ident)
    """The thread that opened the window (another thread's processes are not the student's)."""

    def found(self, what: str) -> None:
        if what not in self.used:
            self.used.append(what)

    def message(self) -> str | None:
        """The plain sentence about the first shortcut found (None: nothing was used)."""
        if not self.used:
            return None
        # the routine's own name where one was caught, else the code that ran
        what = next((u for u in self.used if "(" not in u), self.used[0])
        stopped = next((u for u in self.used if u.endswith(CANNOT_CHECK)), None)
        if stopped is not None:
            return f"{self.exercise}: {stopped}"
        if what == COURSE_ANSWERS:
            return (f"{self.exercise} reads {COURSE_ANSWERS} (the data the self-check compares "
                    "with): the exercise is to compute them yourself")
        task = next((ROUTINES[r].task for r in self.refused if _belongs(what, r)),
                    "write it yourself")
        return f"{self.exercise} uses {what}: the exercise is to {task}"

    def verdict(self) -> None:
        """Raise :class:`ShortcutUsed` when a refused routine (or the course's answers) was used."""
        text = self.message()
        if text is not None:
            raise ShortcutUsed(text)


def _belongs(what: str, routine: str) -> bool:
    label = ROUTINES[routine].label
    return what.startswith(label) or (routine == "autograd" and (
        "autograd" in what or what.startswith("torch.func"))) or (
        routine == "lstsq" and ("lstsq" in what or "pinv" in what)) or (
        routine == "multi_dot" and ("multi_dot" in what or "chain_matmul" in what))


_open_windows: list[Window] = []
_replayed: list[list[str]] | None = None

REPORTER: Callable[[Window], None] | None = None
"""Called with every window when it closes (the grader's recorder saves what it found)."""


def _audit(event: str, args: tuple) -> None:
    if not _open_windows:
        return
    if event == "sys.setprofile":
        if _watchers and sys._getframe(1).f_code.co_filename not in _OWN_FILES:
            for _, found in tuple(_watchers):
                found(PROFILING_OFF)
        return
    if event.startswith(PROCESS_EVENTS):
        # the window's own thread, or a thread the student's code started while a window watched
        ident = threading.get_ident()
        started = _ALL_THREADS is None and _GETPROFILE() is _dispatch
        for window in _open_windows:
            if window.refused and (window.thread == ident or started):
                window.found(PROCESS_STARTED.format(how=event))
        return
    if event != "open" or not args:
        return
    path = args[0]
    if isinstance(path, (str, bytes, os.PathLike)):
        try:
            text = os.path.abspath(os.fsdecode(path))
        except (TypeError, ValueError):
            return
        if text.startswith(_EXPECTED_FOLDER):
            for window in _open_windows:
                window.found(COURSE_ANSWERS)


sys.addaudithook(_audit)


def note_expected_lookup(check: str) -> None:
    """Called by :func:`~._expected.expected`: asked from inside the student's code, it is a shortcut."""
    for window in _open_windows:
        window.found(COURSE_ANSWERS)


@contextlib.contextmanager
def student_code(exercise: str, refused: tuple[str, ...] = ()) -> Iterator[Window]:
    """Run the student's code of ``exercise`` inside this block, watching the ``refused`` routines.

    Parameters
    ----------
    exercise : str
        The exercise's name as the student knows it (``"ADAMOptimizer"``), for the message.
    refused : tuple of str
        Keys of :data:`ROUTINES` the exercise exists to replace.

    Yields
    ------
    Window
        Call :meth:`Window.verdict` after the block, before comparing values.
    """
    unknown = [r for r in refused if r not in ROUTINES]
    if unknown:
        raise ValueError(f"unknown refused routines {unknown}; known: {sorted(ROUTINES)}")
    window = Window(exercise, tuple(refused))
    undo = []
    try:
        for name in refused:
            undo.append(ROUTINES[name].install(window.found))
        _open_windows.append(window)
        yield window
    finally:
        if window in _open_windows:
            _open_windows.remove(window)
        for step in reversed(undo):
            step()
        if _replayed is not None and _replayed:
            for what in _replayed.pop(0):
                window.found(what)
        if REPORTER is not None:
            REPORTER(window)


@contextlib.contextmanager
def replaying(found: list[list[str]]) -> Iterator[None]:
    """Give the windows opened in this block, in order, what the recorded run found (grader)."""
    global _replayed
    previous, _replayed = _replayed, [list(f) for f in found]
    try:
        yield
    finally:
        _replayed = previous
