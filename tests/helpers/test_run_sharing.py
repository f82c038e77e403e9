"""Runs shared between two kernels (``dlnn_helpers.run_sharing``): the main kernel shows exactly the
runs it would have trained, refuses a record made from other weights, and stops when the helper
fails.  Both kernels are played here in one process, one after the other (each with its own
setting), on a small slice of the tiny task."""

from __future__ import annotations

import contextlib
import io

import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

from dlnn_helpers import deep_training as dt
from dlnn_helpers import run_sharing
from dlnn_helpers.deep_training_data import ClassificationData, tiny_classification
from dlnn_reference import deep_training as ref

matplotlib.use("Agg")

LABELS = ("first", "split", "after")


@pytest.fixture(scope="module")
def small() -> ClassificationData:
    data = tiny_classification()
    return ClassificationData(data.train_data[:400], data.train_labels[:400], data.val_data[:100],
                              data.val_labels[:100])


def _session(small, *, start: dict[str, dict] | None = None) -> tuple[dict, str, dict]:
    """The notebook played: three runs, the last one continuing the second's network."""
    results, nets = {}, {}
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        for label in LABELS[:2]:
            torch.manual_seed(5)
            nets[label] = dt.Supervise(nn.BCELoss(), ref.mlp(36, 8, 3))
            if start and label in start:
                nets[label].load_state_dict(start[label])
            results[label] = dt.run_test(nets[label], lambda p: torch.optim.Adam(p, lr=0.01), small,
                                         max_epochs=60, label=label, plot=False)
        nets["after"] = nets["split"]  # trained further: depends on the split run
        results["after"] = dt.run_test(nets["after"], lambda p: torch.optim.SGD(p, lr=0.1), small,
                                       max_epochs=30, label="after", plot=False)
    assert err.getvalue() == ""
    return results, out.getvalue(), {label: net.state_dict() for label, net in nets.items()}


def _printed_without_seconds(text: str) -> str:
    import re

    return re.sub(r"\[[\d.]+ s\]", "[s]", text)


def test_without_the_setting_nothing_is_shared(monkeypatch):
    monkeypatch.delenv(run_sharing.ENV_VAR, raising=False)
    assert run_sharing.current() is None


@pytest.mark.parametrize("also", [(), ("first",)])
def test_the_main_kernel_shows_the_runs_it_would_have_trained(small, tmp_path, monkeypatch, also):
    monkeypatch.delenv(run_sharing.ENV_VAR, raising=False)
    alone, printed_alone, nets_alone = _session(small)
    monkeypatch.setenv(run_sharing.ENV_VAR, run_sharing.setting(tmp_path, "helper", "split", also))
    helper, printed_helper, nets_helper = _session(small)
    if also:  # a run before the split run, trained by the helper too
        assert helper["first"].stop_reason != run_sharing.SKIPPED and helper["first"].epochs > 0
    else:
        assert helper["first"].stop_reason == run_sharing.SKIPPED and helper["first"].epochs == 0
    assert printed_helper == ""  # the helper trains quietly
    # the split run and the one after it (and the run of ``also``)
    assert len(list(tmp_path.glob("*.pt"))) == 2 + len(also)
    monkeypatch.setenv(run_sharing.ENV_VAR, run_sharing.setting(tmp_path, "main", "split", also))
    main, printed_main, nets_main = _session(small)
    assert _printed_without_seconds(printed_main) == _printed_without_seconds(printed_alone)
    for label in LABELS:
        for field in ("losses", "eval_epochs", "train_accs", "val_accs"):
            assert np.array_equal(getattr(main[label], field), getattr(alone[label], field))
        assert main[label].stop_reason == alone[label].stop_reason
        for name, value in nets_alone[label].items():  # the main kernel holds the trained network
            assert torch.equal(nets_main[label][name], value)
    sharing = run_sharing.current()
    for label in ("split", *also):  # loaded from the helper's record, seconds and all
        assert main[label].seconds == torch.load(sharing.path(label),
                                                 weights_only=True)["fields"]["seconds"]


def test_a_record_made_from_other_weights_is_refused(small, tmp_path, monkeypatch):
    torch.manual_seed(99)
    other = dt.Supervise(nn.BCELoss(), ref.mlp(36, 8, 3)).state_dict()
    monkeypatch.setenv(run_sharing.ENV_VAR, run_sharing.setting(tmp_path, "helper", "split"))
    _session(small, start={"split": other})  # the helper starts the split run from other weights
    monkeypatch.setenv(run_sharing.ENV_VAR, run_sharing.setting(tmp_path, "main", "split"))
    with pytest.raises(RuntimeError, match="other starting weights or settings"):
        _session(small)


def test_the_main_kernel_stops_waiting_when_the_helper_failed(small, tmp_path, monkeypatch):
    run_sharing.mark_failed(tmp_path, "SiteBuildError: cell 7 raised")
    monkeypatch.setenv(run_sharing.ENV_VAR, run_sharing.setting(tmp_path, "main", "split"))
    with pytest.raises(RuntimeError, match="(?s)failed before it trained 'split'.*cell 7 raised"):
        _session(small)


def test_shared_runs_need_unique_labels(tmp_path, monkeypatch):
    monkeypatch.setenv(run_sharing.ENV_VAR, run_sharing.setting(tmp_path, "main", "b"))
    sharing = run_sharing.current()
    assert [sharing.action(label) for label in ("a", "b", "c")] == ["train", "load", "load"]
    monkeypatch.setenv(run_sharing.ENV_VAR, run_sharing.setting(tmp_path, "helper", "c", ("b",)))
    helper = run_sharing.current()
    assert [helper.action(label) for label in ("a", "b", "c", "d")] == ["skip", "share", "share",
                                                                       "share"]
    with pytest.raises(ValueError, match="two runs are labelled 'a'"):
        sharing.action("a")
