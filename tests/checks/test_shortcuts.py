"""Refused shortcuts are caught where they run, whichever way the student reaches them."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest
import torch

from dlnn_helpers.checks import ShortcutUsed, _expected, _shortcuts
from dlnn_helpers.checks._shortcuts import student_code

ORIGINALS = {
    (lambda: torch.func.jacrev): torch.func.jacrev,
    (lambda: torch.autograd.forward_ad.make_dual): torch.autograd.forward_ad.make_dual,
    (lambda: np.linalg.lstsq): np.linalg.lstsq,
    (lambda: torch.linalg.lstsq): torch.linalg.lstsq,
    (lambda: torch.nn.init.kaiming_normal_): torch.nn.init.kaiming_normal_,
    (lambda: torch.optim.Optimizer.__init__): torch.optim.Optimizer.__init__,
    (lambda: sys.getprofile()): sys.getprofile(),
}


def _run(refused, code):
    with student_code("exercise", refused) as window:
        code()
    return window


def _adam_by_name():
    param = torch.nn.Parameter(torch.ones(2))
    getattr(importlib.import_module("torch." + "optim"), "Ad" + "am")([param]).step()


class _Wrapped(torch.optim.SGD):
    pass


def _subclass():
    _Wrapped([torch.nn.Parameter(torch.ones(2))], lr=0.1)


def _functional_adam():
    adam = importlib.import_module("torch.optim.adam").adam
    adam([torch.ones(2)], [torch.ones(2)], [torch.zeros(2)], [torch.zeros(2)], [],
         [torch.tensor(1.0)], amsgrad=False, beta1=0.9, beta2=0.99, lr=0.1, weight_decay=0.0,
         eps=1e-8, maximize=False)


def _functional_bound_before():
    _FUNCTIONAL_ADAM([torch.ones(2)], [torch.ones(2)], [torch.zeros(2)], [torch.zeros(2)], [],
                     [torch.tensor(1.0)], amsgrad=False, beta1=0.9, beta2=0.99, lr=0.1,
                     weight_decay=0.0, eps=1e-8, maximize=False)


_FUNCTIONAL_ADAM = importlib.import_module("torch.optim._functional").adam


def _backward():
    x = torch.ones(2, requires_grad=True)
    (x * x).sum().backward()


def _autograd_grad():
    x = torch.ones(2, requires_grad=True)
    torch.autograd.grad((x ** 3).sum(), x)


def _jacrev_by_name():
    getattr(torch.func, "jac" + "rev")(lambda t: t * t)(torch.ones(2))


def _jvp():
    torch.func.jvp(lambda t: t * t, (torch.ones(2),), (torch.ones(2),))


def _kaiming():
    getattr(torch.nn.init, "kaiming_" + "normal_")(torch.empty(3, 4))


def _np_lstsq():
    np.linalg.lstsq(np.eye(3), np.ones(3), rcond=None)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")  # torch.func.jvp
@pytest.mark.parametrize(("refused", "code", "named"), [
    ("torch.optim", _adam_by_name, "torch.optim.Adam"),
    ("torch.optim", _subclass, "torch.optim.SGD"),
    ("torch.optim", _functional_adam, "torch.optim.adam.adam"),
    ("torch.optim", _functional_bound_before, "torch.optim's code"),
    ("autograd", _backward, "autograd"),
    ("autograd", _autograd_grad, "autograd"),
    ("autograd", _jacrev_by_name, "torch.func.jacrev"),
    ("autograd", _jvp, "torch.func.jvp"),
    ("torch.nn.init", _kaiming, "torch.nn.init.kaiming_normal_"),
    ("lstsq", _np_lstsq, "numpy.linalg.lstsq"),
])
def test_a_refused_routine_is_caught_however_it_is_reached(refused, code, named):
    window = _run((refused,), code)
    with pytest.raises(ShortcutUsed) as failure:
        window.verdict()
    message = str(failure.value)
    assert message.startswith(f"exercise uses {named}")
    assert f"the exercise is to {_shortcuts.ROUTINES[refused].task}" in message


def test_what_is_not_refused_passes_and_nothing_stays_patched():
    assert _run(("torch.nn.init",), lambda: torch.nn.Linear(3, 4)).message() is None  # torch's own
    assert _run(("torch.optim",), _backward).message() is None
    assert _run((), _adam_by_name).message() is None
    for refused, code in [("torch.optim", _adam_by_name), ("autograd", _backward),
                          ("torch.nn.init", _kaiming), ("lstsq", _np_lstsq)]:
        _run((refused,), code)
    assert torch.optim.Optimizer.__init__.__module__ == "torch.optim.optimizer"
    assert type(torch.autograd.Variable._execution_engine).__name__ != "_Engine"
    for routine, original in ORIGINALS.items():
        assert routine() is original, routine
    _backward()  # autograd still works outside any window


def test_reading_the_course_answers_is_caught(tmp_path):
    shipped = next(iter(sorted(_expected.SHIPPED.glob("*.json"))), None)
    assert shipped is not None, "no shipped expected values"
    window = _run((), lambda: open(shipped).read())  # noqa: SIM115
    with pytest.raises(ShortcutUsed, match="reads the course's expected answers"):
        window.verdict()
    other = tmp_path / "notes.json"
    other.write_text("{}")
    assert _run((), lambda: open(other).read()).message() is None  # noqa: SIM115


def test_asking_for_the_expected_values_is_caught():
    def ask():
        with pytest.raises(Exception):  # noqa: B017 - whatever it raises, the asking counts
            _expected.expected("check_that_does_not_exist", seed=0)

    with pytest.raises(ShortcutUsed, match="the course's expected answers"):
        _run((), ask).verdict()


def test_replayed_findings_reach_the_same_windows_in_order():
    reported = []
    with _shortcuts.replaying([["torch.optim.Adam"], []]):
        first = _run(("torch.optim",), lambda: None)
        second = _run(("torch.optim",), lambda: None)
    assert first.used == ["torch.optim.Adam"] and second.used == []
    previous, _shortcuts.REPORTER = _shortcuts.REPORTER, reported.append
    try:
        _run(("torch.optim",), _adam_by_name)
    finally:
        _shortcuts.REPORTER = previous
    assert len(reported) == 1 and reported[0].message().startswith("exercise uses torch.optim.Adam:")


def test_declarations_name_known_routines():
    assert _shortcuts.declare("check_probe", "probe", ("autograd",)) == ("autograd",)
    assert _shortcuts.DECLARED.pop("check_probe") == ("probe", ("autograd",))
    with pytest.raises(ValueError, match="unknown refused routines"):
        _shortcuts.declare("check_probe", "probe", ("torch.magic",))
    with pytest.raises(ValueError, match="unknown refused routines"):
        with student_code("probe", ("torch.magic",)):
            pass


# ------------------------------------------------------------------------------------------------
# Shortcuts that hide from the watch: other threads, profiling switched off, other processes
# ------------------------------------------------------------------------------------------------

def _in_a_thread(work):
    import threading

    done = []
    thread = threading.Thread(target=lambda: done.append(work()))
    thread.start()
    thread.join()
    return done[0]


def _functional_adam():
    param = torch.ones(2)
    _ADAM([param], [torch.ones(2)], [torch.zeros(2)], [torch.zeros(2)], [], [torch.tensor(0.0)],
         foreach=False, amsgrad=False, beta1=0.9, beta2=0.999, lr=0.1, weight_decay=0.0, eps=1e-8,
         maximize=False)


KAIMING = torch.nn.init.kaiming_normal_  # bound before any window: no patched attribute is reached
_ADAM = importlib.import_module("torch.optim.adam").adam


@pytest.mark.parametrize("refused, work, named", [
    (("torch.optim",), _functional_adam, "torch.optim's code"),
    (("torch.nn.init",), lambda: KAIMING(torch.empty(3, 4)), "torch.nn.init.kaiming_normal_"),
    (("torch.nn.init",), lambda: torch.nn.init._no_grad_normal_(torch.empty(3), 0.0, 1.0),
     "torch.nn.init._no_grad_normal_"),
    (("autograd",), lambda: (torch.ones(2, requires_grad=True) * 2).sum().backward(), "autograd"),
], ids=["functional adam", "kaiming bound early", "private init helper", "backward"])
def test_a_refused_routine_run_in_another_thread_is_caught(refused, work, named):
    window = _run(refused, lambda: _in_a_thread(work))
    assert window.message().startswith(f"exercise uses {named}"), window.message()
    assert sys.getprofile() is None


def test_honest_work_in_a_thread_is_not_a_finding():
    import threading

    window = _run(("torch.optim", "torch.nn.init"), lambda: _in_a_thread(lambda: torch.ones(3) * 2))
    assert window.used == []
    assert sys.getprofile() is None and threading.getprofile() is None


@pytest.mark.parametrize("switch", ["sys", "threading", "sys, then back"])
def test_switching_the_profiling_off_is_a_finding(switch):
    import threading

    def work():
        saved = sys.getprofile()
        if switch.startswith("sys"):
            sys.setprofile(None)
        else:
            threading.setprofile(None)
        if switch == "sys, then back":
            sys.setprofile(saved)  # put back before the window closes: the audit hook saw it
        _in_a_thread(_functional_adam)

    window = _run(("torch.optim",), work)
    assert window.message() == ("exercise: the exercise switched off the interpreter's profiling: "
                                "its work cannot be checked")
    assert sys.getprofile() is None and threading.getprofile() is None


def test_a_process_started_in_the_window_is_a_finding():
    import os

    def work():
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)

    window = _run(("torch.nn.init",), work)
    assert window.message() == ("exercise: the exercise started another process (os.fork): its work "
                                "cannot be checked")
    assert _run((), work).used == []  # an exercise that refuses nothing is not watched


def test_a_watch_put_back_inside_the_window_is_a_finding():
    variable = torch.autograd.Variable

    def work():
        variable._execution_engine = variable._execution_engine._engine

    window = _run(("autograd",), work)
    assert window.message() == ("exercise: the exercise removed the check's watch on autograd's "
                                "engine: its work cannot be checked")
    assert not isinstance(variable._execution_engine, _shortcuts._Engine)  # nothing stays patched

    def put_back():
        torch.nn.init.normal_ = KAIMING

    window = _run(("torch.nn.init",), put_back)
    assert "removed the check's watch on torch.nn.init.normal_" in window.message()


def test_a_process_started_by_a_thread_the_window_did_not_start_is_not_the_students():
    import subprocess
    import threading

    ready, done = threading.Event(), threading.Event()

    def grader_thread():  # e.g. another submission's sandbox, started by the grader's own pool
        ready.wait()
        subprocess.run(["true"], check=True)
        done.set()

    thread = threading.Thread(target=grader_thread)
    thread.start()

    def work():
        ready.set()
        done.wait(30)

    window = _run(("torch.optim",), work)
    thread.join()
    assert window.used == []
    window = _run(("torch.optim",), lambda: _in_a_thread(lambda: subprocess.run(["true"])))
    assert "started another process (subprocess.Popen)" in window.message()
