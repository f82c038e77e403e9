"""Judge recorded answers in the grader's own, clean process (monkeypatch-proof verdicts).

A test cell of the course is a list of calls ``check_x(func_name, key=literal, ...)``
(:func:`parse_test_cell`).  In the sandbox each call ran with the student's function recorded
(:mod:`autograder.grading.recorder`).  Here the *same* check function, imported by a process that
never ran student code, is called again with a stand-in for the student's function that replays the
recording: it writes back the recorded state of the arguments it receives (for in-place exercises)
and returns the recorded value, rebuilt only from plain tensors, arrays, numbers and strings, or
raises the recorded error.  Whatever the notebook patched in its own process (numpy, torch,
``builtins``, the checks) and whatever lying objects it returned, the verdict is computed here.

Recordings are read with ``torch.load(weights_only=True)`` (no arbitrary unpickling), from regular
files only, with a size limit.
"""

from __future__ import annotations

import ast
import importlib
import os
import pkgutil
import re
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

MAX_RECORD_BYTES = 256 * 2**20


@dataclass(frozen=True)
class TestCall:
    """One ``check(func, **settings)`` call of a test cell."""

    check: str
    func: str
    settings: dict
    args: tuple = ()
    """Literal positional arguments after the function, e.g. ``"zero"`` in
    ``check_init_weights(ex_zero_weights, "zero")``."""


def parse_test_cell(source: str) -> list[TestCall] | None:
    """The calls of a test cell, or None when it is not a plain list of check calls.

    Parameters
    ----------
    source : str
        Full source of the test cell (hidden tests included).
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    calls = []
    for statement in tree.body:
        if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)):
            return None
        call = statement.value
        if not (
            isinstance(call.func, ast.Name)
            and call.func.id.startswith("check_")
            and len(call.args) >= 1
            and isinstance(call.args[0], ast.Name)
        ):
            return None
        try:
            args = tuple(ast.literal_eval(arg) for arg in call.args[1:])
        except ValueError:
            return None
        settings = {}
        for keyword in call.keywords:
            if keyword.arg is None:
                return None
            try:
                settings[keyword.arg] = ast.literal_eval(keyword.value)
            except ValueError:
                return None
        calls.append(TestCall(call.func.id, call.args[0].id, settings, args))
    return calls or None


def find_check(name: str) -> Any:
    """The check function ``name`` from ``dlnn_helpers.checks`` or one of its modules, or None.

    Imported in the grading process (which never runs student code), so it is the genuine one.
    """
    package = importlib.import_module("dlnn_helpers.checks")
    if hasattr(package, name):
        return getattr(package, name)
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"dlnn_helpers.checks.{info.name}")
        if hasattr(module, name):
            return getattr(module, name)
    return None


def recorder_source(cell: str, calls: list[TestCall]) -> str:
    """The code that runs in the sandbox instead of the test cell (records, judges nothing)."""
    lines = [f"# Test {cell}: recorded here, judged by the grader."]
    for index, call in enumerate(calls):
        lines.append(
            f"_dlnn_grading_recorder.record({cell!r}, {index}, {call.check!r}, "
            f"globals().get({call.func!r}), {call.settings!r}, {call.args!r})"
        )
    return "\n".join(lines)


def load_records(folder: Path, cell: str) -> list | None:
    """The recording of one test cell, or None when there is none (or it is not readable)."""
    path = folder / f"{cell}.pt"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_RECORD_BYTES:
            return None
        with os.fdopen(fd, "rb") as stream, warnings.catch_warnings():
            fd = -1
            warnings.simplefilter("ignore")  # a forged file may make torch warn: it is refused
            data = torch.load(stream, weights_only=True)
    except Exception:  # noqa: BLE001 - a damaged or forged recording counts as no recording
        return None
    finally:
        if fd >= 0:
            os.close(fd)
    return data if isinstance(data, list) else None


def _opaque(type_name: str) -> Any:
    name = re.sub(r"\W", "_", str(type_name).rsplit(".", 1)[-1]) or "object"
    module = str(type_name).rsplit(".", 1)[0] if "." in str(type_name) else "builtins"
    cls = type(name, (), {"__module__": module, "__repr__": lambda self: f"<{type_name}>"})
    return cls()


def _decode(entry: Any) -> Any:
    if not isinstance(entry, dict):
        return _opaque("unreadable")
    kind = entry.get("kind")
    if kind == "value":
        value = entry.get("value")
        return value if value is None or type(value) in (bool, int, float, str) else None
    if kind in ("tensor", "ndarray"):
        value = entry.get("value")
        if type(value) is not torch.Tensor:
            return _opaque("unreadable")
        if not entry.get("exact", False):
            return _opaque("torch.Tensor subclass" if kind == "tensor" else "ndarray subclass")
        value = value.detach().clone()
        return value if kind == "tensor" else value.numpy()
    if kind in ("tuple", "list"):
        items = [_decode(item) for item in entry.get("items", [])]
        return tuple(items) if kind == "tuple" else items
    return _opaque(entry.get("type", "object"))


def _restore_argument(argument: Any, state: Any) -> None:
    """Give an argument the state the student's function left it in."""
    if not isinstance(state, dict):
        return
    if isinstance(argument, torch.nn.Module) and state.get("kind") == "module":
        recorded = state.get("params", {})
        replaced = set(state.get("replaced", []))
        for name, param in list(argument.named_parameters()):
            value = recorded.get(name)
            if type(value) is not torch.Tensor:
                continue
            if name in replaced:
                owner_name, _, attr = name.rpartition(".")
                owner = argument.get_submodule(owner_name) if owner_name else argument
                setattr(owner, attr, torch.nn.Parameter(value.detach().clone()))
            else:
                param.data = value.detach().clone()
    elif type(argument) is torch.Tensor and state.get("kind") == "tensor":
        value = state.get("value")
        if type(value) is torch.Tensor and value.shape == argument.shape:
            with torch.no_grad():
                argument.copy_(value)
    elif type(argument) is np.ndarray and state.get("kind") == "ndarray":
        value = state.get("value")
        if type(value) is torch.Tensor and tuple(value.shape) == argument.shape:
            np.copyto(argument, value.numpy(), casting="unsafe")


class _Replay:
    """Stands in for the student's function: the k-th call replays the k-th recorded call."""

    def __init__(self, func_name: str, calls: list):
        self.__name__ = func_name
        self.calls = calls
        self.count = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.count >= len(self.calls):
            raise RuntimeError(
                f"{self.__name__} was not called with these inputs when the notebook ran (the "
                "test was not reached or was interfered with)"
            )
        entry = self.calls[self.count]
        self.count += 1
        if not isinstance(entry, dict):
            raise RuntimeError("its result could not be read")
        states = entry.get("args", [])
        if isinstance(states, list):
            for argument, state in zip(args, states, strict=False):
                _restore_argument(argument, state)
        if "raised" in entry:
            name = re.sub(r"\W", "_", str(entry["raised"]))[:80] or "Exception"
            message = str(entry.get("message", ""))
            if name == "NotImplementedError":
                raise NotImplementedError(message)
            raise type(name, (Exception,), {"__module__": "builtins"})(message)
        if "returned" in entry:
            return _decode(entry["returned"])
        raise RuntimeError("it returned an object that could not be read")


@dataclass
class Verdict:
    """The result of one test cell."""

    passed: bool
    message: str
    in_process: bool = False
    """True when (part of) the verdict was computed inside the student's process."""


def judge(calls: list[TestCall], records: list | None, not_run: str = "",
          mode: str = "auto") -> Verdict:
    """Run every check of a test cell against the replayed recording.

    Parameters
    ----------
    calls : list of TestCall
        The test cell, parsed from the gradebook's copy.
    records : list or None
        :func:`load_records` of the cell.
    not_run : str
        What to say when there is no recording (e.g. the error the test cell raised).
    mode : str
        ``replay``: always judge here; ``kernel``: take the verdict computed in the sandbox;
        ``auto``: replay what the recording says is replayable.

    Returns
    -------
    Verdict
        Passed when every call passed; the message is the first failure or the summaries.
    """
    summaries = []
    in_process = False
    for index, call in enumerate(calls):
        entry = records[index] if records is not None and index < len(records) else None
        if not isinstance(entry, dict):
            why = not_run or "the test did not run (the notebook stopped before it)"
            return Verdict(False, why)
        if not entry.get("callable", False):
            return Verdict(False, f"{call.func} is not defined as a function in the notebook.")
        if mode == "kernel" or (mode == "auto" and entry.get("replayable") is False):
            in_process = True
            if entry.get("passed") is not True:
                return Verdict(False, str(entry.get("message", "")), True)
            summaries.append(str(entry.get("message", "")))
            continue
        calls_made = entry.get("calls", [])
        check = find_check(call.check)
        if check is None:
            return Verdict(False, f"the grader has no check named {call.check}", in_process)
        try:
            summaries.append(
                check(_Replay(call.func, calls_made if isinstance(calls_made, list) else []),
                      *call.args, **call.settings)
            )
        except AssertionError as exc:
            message = str(exc)
            if exc.__cause__ is not None and not message:
                message = str(exc.__cause__)
            return Verdict(False, message, in_process)
        except Exception as exc:  # noqa: BLE001 - a recording the check cannot digest
            return Verdict(False, f"{call.func} could not be checked: {type(exc).__name__}: {exc}",
                           in_process)
    return Verdict(True, "\n".join(str(s) for s in summaries), in_process)
