"""The record model shared by the kernel's recorder and the judge (``autograder.grading.protocol.records``).

Quick tests of its logic, no kernel: literals and their torch classes, the bounded window findings,
the check lookup, the tensor store, input fingerprints, tracking and restoring what the check hands
over, and the recording file with its refusals.
"""

from __future__ import annotations

import math
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

from autograder.grading.protocol import records
from dlnn_helpers.checks import check_net_svd

# ------------------------------------------------------------------------------------ literals


def test_a_torch_class_named_in_a_test_cell_resolves_to_the_class_only_in_torch_nn():
    assert records.TorchClass("Tanh").resolve() is nn.Tanh
    assert repr(records.TorchClass("Tanh")) == "__import__('torch').nn.Tanh"
    assert records.TorchClass("functional").resolve() is None  # a module, not a class
    assert records.TorchClass("os.system").resolve() is None
    assert records.resolve_literal({"s": ((10, records.TorchClass("ReLU")),), "n": [1, 2.5]}) == {
        "s": ((10, nn.ReLU),), "n": [1, 2.5]}


@pytest.mark.parametrize("value", [
    (1, 2.5, "a", None, True), [1, [2, (3,)]], {"seed": 3, "shapes": ((2, 3), (4,))},
    (float("inf"), -float("inf")),
])
def test_literals_survive_the_round_trip_with_tuples_kept_apart_from_lists(value):
    back = records.unliteral(records.literal(value))
    assert back == value and type(back) is type(value)


def test_a_literal_that_is_not_plain_data_becomes_opaque_and_reads_back_as_none():
    encoded = records.literal(object())
    assert encoded == {"opaque": "object"}
    assert records.unliteral(encoded) is None
    assert math.isnan(records.unliteral(records.literal(float("nan"))))
    assert records.decode_number({"float": "1e308"}) is None  # only nan and the infinities


def test_window_findings_are_bounded_lists_of_short_strings():
    found = records.found_lists([["torch.optim.Adam", 3, "x" * 1000], "not a list",
                                 ["a"] * (records.MAX_FOUND + 10)])
    assert found[0] == ["torch.optim.Adam", "x" * records.MAX_FOUND_CHARS]
    assert found[1] == []
    assert len(found[2]) == records.MAX_FOUND
    assert records.found_lists("x") == []
    assert len(records.found_lists([[]] * (records.MAX_WINDOWS + 5))) == records.MAX_WINDOWS


# ------------------------------------------------------------------------------------ lookups


def test_find_check_finds_checks_and_nothing_else():
    assert records.find_check("check_net_svd") is check_net_svd
    assert records.find_check("check_does_not_exist") is None
    assert records.find_check("self_check") is None  # not a check's name
    assert records.find_check("check_x; import os") is None
    assert records.find_check(None) is None


def test_torch_class_paths_are_resolved_inside_torch_nn_only():
    assert records.torch_class("torch.nn.modules.linear:Linear") is nn.Linear
    assert records.torch_class(records.class_path(nn.BatchNorm1d)) is nn.BatchNorm1d
    assert records.torch_class("os:system") is None
    assert records.torch_class("torch.nn:functional") is None
    assert records.torch_class("torch.nn.modules.linear:Nope") is None
    assert records.torch_class("no colon") is None
    assert records.is_torch_class(nn.ReLU) and not records.is_torch_class(int)


# ------------------------------------------------------------------------------------ values


def test_the_store_keeps_detached_copies_and_hands_out_copies():
    store = records.TensorStore()
    x = torch.ones(3, requires_grad=True)
    index = store.put(x * 2)
    got = store.get(index)
    assert torch.equal(got, torch.full((3,), 2.0)) and not got.requires_grad
    got.zero_()
    assert torch.equal(store.get(index), torch.full((3,), 2.0))
    assert store.get(5) is None and store.get(True) is None and store.get("0") is None
    assert store.get(-1) is None


def test_input_fingerprints_match_within_a_tolerance_and_not_across_shapes():
    given = [torch.ones(2, 3), np.arange(4.0), 3, nn.Linear(2, 2), lambda: 0]
    signature = [records._summary(v) for v in given]
    assert records.signatures_match(signature, [records._summary(v) for v in given])
    nudged = [torch.ones(2, 3) * (1 + 1e-7), np.arange(4.0), 3, nn.Linear(2, 2), print]
    assert records.signatures_match(signature, [records._summary(v) for v in nudged])
    other = [torch.ones(3, 2), np.arange(4.0), 3, nn.Linear(2, 2), print]
    assert not records.signatures_match(signature, [records._summary(v) for v in other])
    changed = [torch.ones(2, 3) * 2, np.arange(4.0), 3, nn.Linear(2, 2), print]
    assert not records.signatures_match(signature, [records._summary(v) for v in changed])
    assert not records.signatures_match(signature[:2], [records._summary(v) for v in given])
    assert not records.signatures_match("forged", [])


# ------------------------------------------------------------------------------------ tracking


def test_the_tracker_numbers_what_the_check_hands_over_and_reads_iterators_into_lists():
    tracker = records.Tracker()
    a, b = torch.zeros(2), torch.ones(2)
    wrapped = []
    signature: list = []
    passed = tracker.walk((a, iter([b, a]), len), signature,
                          lambda i, f: wrapped.append(i) or f)
    assert tracker.objects == [a, b] and tracker.index(b) == 1
    assert wrapped == [0] and tracker.callbacks == [len]
    assert passed[0] is a and list(passed[1]) == [b, a]
    assert ["iterator", 2] in signature


def test_a_tracked_tensor_and_module_change_and_their_state_is_restored():
    tracker = records.Tracker()
    x = torch.zeros(3, requires_grad=True)
    net = nn.Linear(2, 1)
    tracker.walk([x, net], [])
    before = [tracker.snapshot(x), tracker.snapshot(net)]
    assert not tracker.changed(x, before[0]) and not tracker.changed(net, before[1])
    with torch.no_grad():
        x += 1.0
    x.grad = torch.full((3,), 0.5)
    net.weight = nn.Parameter(torch.full((1, 2), 7.0))  # replaced, not changed in place
    assert tracker.changed(x, before[0]) and tracker.changed(net, before[1])
    store = records.TensorStore()
    states = [tracker.encode_state(x, before[0], store), tracker.encode_state(net, before[1], store)]
    assert states[1]["params"]["weight"]["replaced"] and not states[1]["params"]["bias"]["replaced"]

    fresh_x, fresh_net = torch.zeros(3, requires_grad=True), nn.Linear(2, 1)
    records.restore_state(fresh_x, states[0], store)
    records.restore_state(fresh_net, states[1], store)
    assert torch.equal(fresh_x.detach(), torch.ones(3)) and torch.equal(fresh_x.grad, torch.full((3,), 0.5))
    assert torch.equal(fresh_net.weight.detach(), torch.full((1, 2), 7.0))
    assert isinstance(fresh_net.weight, nn.Parameter)
    records.restore_state(fresh_x, "forged", store)  # ignored
    records.restore_state(fresh_x, {"kind": "tensor", "t": 99}, store)  # unknown tensor: ignored
    assert torch.equal(fresh_x.detach(), torch.ones(3))


def test_an_array_is_restored_in_place_with_its_shape():
    store = records.TensorStore()
    state = {"kind": "ndarray", "t": store.put(torch.arange(3.0))}
    target = np.zeros(3)
    records.restore_state(target, state, store)
    assert np.array_equal(target, [0.0, 1.0, 2.0])
    wrong = np.zeros(4)
    records.restore_state(wrong, state, store)
    assert not wrong.any()


# ------------------------------------------------------------------------------------ files


def _record() -> records.CallRecord:
    record = records.CallRecord([records.StudentObject("ex_net_rsm", "function", "function")])
    record.events.append(records.Event(0, "__call__", [["tensor", [2, 2], 4.0]],
                                       returned={"tensor": 0, "exact": True}))
    record.windows = [["torch.inner"]]
    record.complete = True
    return record


def test_a_recording_survives_saving_and_loading(tmp_path):
    store = records.TensorStore()
    store.put(torch.eye(2))
    path = tmp_path / "cell.pt"
    records.save([_record(), None], store, str(path))
    loaded, back = records.load(str(path))
    assert loaded[1] is None
    first = loaded[0]
    assert first.students[0].name == "ex_net_rsm" and first.complete
    assert first.events[0].method == "__call__" and first.windows == [["torch.inner"]]
    assert torch.equal(back.get(0), torch.eye(2))
    assert records.load(str(tmp_path / "missing.pt")) is None


def test_files_that_are_not_recordings_are_refused_with_a_reason(tmp_path):
    text = tmp_path / "text.pt"
    text.write_text("hello")
    with pytest.raises(records.RecordingRejected, match="not a zip archive"):
        records.load(str(text))
    other = tmp_path / "other.pt"
    torch.save({"format": records.FORMAT + 1, "meta": "[]", "tensors": []}, str(other))
    with pytest.raises(records.RecordingRejected, match="not in the recorder's format"):
        records.load(str(other))
    packed = tmp_path / "packed.pt"
    with zipfile.ZipFile(packed, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"x" * 1000)
    with pytest.raises(records.RecordingRejected, match="compressed entries"):
        records.load(str(packed))
    folder = tmp_path / "folder.pt"
    folder.mkdir()
    with pytest.raises(records.RecordingRejected, match="not a regular file"):
        records.load(str(folder))
