"""The kernel's recorder (``autograder.grading.inside.recorder``), driven in this process with small checks.

Quick tests of its logic, no kernel: what a wrapped student function, class and returned object
record, the callbacks and states, the shortcut windows' findings, a check that stops in the
kernel, and the cell's recording file (indices of several calls merged into one store).
"""

from __future__ import annotations

import torch
from torch import nn

from autograder.grading.inside import recorder
from autograder.grading.protocol import records
from dlnn_helpers.checks import ReferenceUnavailable, _shortcuts


def _check_doubling(func, *, size: int = 3) -> str:
    """A check that calls ``func`` once on a tensor it makes and compares the result."""
    x = torch.arange(float(size))
    got = func(x)
    return f"ok {bool(torch.equal(got, 2 * x))}"


def double(x):
    return 2 * x


def test_a_function_call_is_recorded_with_its_inputs_and_what_it_returned():
    session = recorder.drive(_check_doubling, [double], ["ex_double"], (), {"size": 4}, [])
    record = session.record
    assert record.complete and record.kernel_message == "ok True"
    assert [s.kind for s in record.students] == ["function"]
    (event,) = record.events
    assert event.target == 0 and event.method == "__call__"
    assert event.signature == [["tensor", [4], 6.0]]
    returned = session.store.get(event.returned["tensor"])
    assert torch.equal(returned, torch.tensor([0.0, 2.0, 4.0, 6.0])) and event.returned["exact"]


def test_an_error_of_the_student_code_is_recorded_and_the_message_kept():
    def broken(x):
        raise ValueError("not finished")

    record = recorder.drive(_check_doubling, [broken], ["ex_double"], (), {}, []).record
    assert record.events[0].raised == ["ValueError", "not finished"]
    assert record.events[0].returned is None
    assert record.kernel_message == "not finished" and record.complete


def test_a_check_that_stops_in_the_kernel_is_information_not_a_verdict():
    def needs_the_reference(func):
        func(torch.ones(2))
        raise ReferenceUnavailable("judged by the course's grader")

    record = recorder.drive(needs_the_reference, [double], ["ex_double"], (), {}, []).record
    assert len(record.events) == 1 and record.complete
    assert record.kernel_message == "judged by the course's grader"


def test_callbacks_and_the_state_left_in_tracked_tensors_are_recorded():
    def check_descent(func):
        x = torch.ones(2, requires_grad=True)
        func(lambda v: (v**2).sum(), x, 0.25)
        return "ran"

    def descent(loss_fn, x, learning_rate):
        loss_fn(x).backward()
        with torch.no_grad():
            x -= learning_rate * x.grad

    session = recorder.drive(check_descent, [descent], ["gradient_descent"], (), {}, [])
    (event,) = session.record.events
    assert [c.index for c in event.callbacks] == [0]
    state = event.states["0"]
    assert state["kind"] == "tensor"
    assert torch.equal(session.store.get(state["t"]), torch.full((2,), 0.5))
    assert torch.equal(session.store.get(state["grad"]), torch.full((2,), 2.0))


class Counter:
    """A student's class whose objects the check drives through methods."""

    def __init__(self, start):
        self.value = start

    def step(self):
        self.value += 1
        return self.value


def test_the_methods_of_an_object_the_student_code_returned_are_recorded():
    def check_counter(cls):
        counter = cls(5)
        counter.step()
        return str(counter.step())

    session = recorder.drive(check_counter, [Counter], ["Counter"], (), {}, [])
    record = session.record
    assert record.students[0].kind == "class" and record.kernel_message == "7"
    construct, first, second = record.events
    assert construct.method == "__call__" and construct.returned["methods"] == ["step"]
    handle = construct.returned["handle"]
    assert (first.target, first.method, first.returned) == (handle, "step", {"value": 6})
    assert (second.target, second.method, second.returned) == (handle, "step", {"value": 7})


def test_a_returned_network_is_described_as_nodes_with_shared_layers_once():
    def check_net(func):
        return str(type(func()).__name__)

    def build():
        layer = nn.Linear(2, 2)
        return nn.Sequential(layer, nn.ReLU(), layer)

    record = recorder.drive(check_net, [build], ["ex_net"], (), {}, []).record
    nodes = record.nodes
    assert [n.type_name for n in nodes] == ["Sequential", "Linear", "ReLU"]
    assert [child for _, child in nodes[0].children] == [{"node": 1}, {"node": 2}, {"node": 1}]
    assert dict(nodes[1].constants) == {"in_features": 2, "out_features": 2}


def test_what_a_shortcut_window_found_is_kept_per_window():
    def check_windowed(func):
        with _shortcuts.student_code("ex_inner", ("torch.inner",)) as window:
            func(torch.ones(2))
        with _shortcuts.student_code("ex_inner", ("torch.inner",)):
            pass
        return "" if window.used else "clean"

    def cheat(x):
        return torch.inner(x, x)

    record = recorder.drive(check_windowed, [cheat], ["ex_inner"], (), {}, []).record
    assert record.windows == [["torch.inner"], []]
    assert _shortcuts.REPORTER is None  # put back after the call


def test_the_other_student_objects_reach_the_check_by_keyword():
    def check_pair(forward, *, backward):
        return f"{forward(torch.ones(1)).item()} {backward(torch.ones(1)).item()}"

    record = recorder.drive(check_pair, [double, lambda x: 3 * x], ["f", "b"], (), {},
                            ["backward"]).record
    assert record.kernel_message == "2.0 3.0"
    assert [e.target for e in record.events] == [0, 1]
    assert [s.kind for s in record.students] == ["function", "function"]


def test_a_cell_recording_merges_its_calls_into_one_file(tmp_path, monkeypatch):
    monkeypatch.setattr(recorder, "_FOLDER", str(tmp_path))
    monkeypatch.setattr(recorder, "_CELLS", {})
    monkeypatch.setattr(records, "find_check", {"check_doubling": _check_doubling}.get)
    recorder.record("cell", 0, "check_doubling", double, {"size": 2})
    recorder.record("cell", 1, "check_doubling", double, {"size": 3})
    recorder.record("cell", 2, "check_unknown", double)
    loaded, store = records.load(str(tmp_path / "cell.pt"))
    assert [r.kernel_message for r in loaded] == ["ok True", "ok True", "check_unknown"]
    second = loaded[1].events[0].returned["tensor"]
    assert second == 1  # moved past the first call's tensor
    assert torch.equal(store.get(second), torch.tensor([0.0, 2.0, 4.0]))
    assert loaded[2].events == []
