"""dlnn_helpers.deep_training: ``Supervise``, the training loop ``run_test`` and its replays.

The architectures are the tutorial's exercises: their reference versions (instructor side,
``dlnn_reference``) give the networks trained here; the data are :mod:`dlnn_helpers.deep_training_data`'s.
"""

from __future__ import annotations

import contextlib
import io
import json

import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

from dlnn_helpers import deep_training as dt
from dlnn_helpers import deep_training_data as cd
from dlnn_reference import deep_training as ref

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def tiny():
    return cd.tiny_classification()


# ------------------------------------------------------------------------------- modules and nets


def test_supervise_and_residual_sequence():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 1), nn.Sigmoid())
    sup = dt.Supervise(nn.BCELoss(), net)
    x, y = torch.rand(6, 4), torch.tensor([0.0, 1, 1, 0, 1, 0])
    assert torch.allclose(sup(x, y), nn.functional.binary_cross_entropy(net(x).reshape(-1), y))
    one = dt.Supervise(nn.BCELoss(), net)(x[:1], y[:1])  # a batch of one still works
    assert one.shape == ()
    block = ref.ResidualSequence(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 3))
    h = torch.randn(2, 3)
    assert torch.allclose(block(h), block[2](block[1](block[0](h))) + h)


@pytest.mark.parametrize(
    ("net", "n_parameters"),
    [
        (ref.mlp(36, 128, 3, nn.Sigmoid), 21377),  # the source's counts
        (ref.mlp(36, 64, 3), 6593),
        (ref.mlp(36, 64, 4), 10753),
        (ref.mlp(36, 32, 6), 5441),
        (ref.batchnorm_mlp(36, 32, 6), 5569),
        (ref.residual_net(36, 16, 32, 4), 4897),
        (ref.residual_net(36, 16, 32, 2), 2753),
        (ref.residual_net(36, 16, 32, 2, batchnorm=True), 2849),
        (ref.residual_net(36, 16, 32, 6, batchnorm=True), 7265),
    ],
)
def test_architectures_have_the_sources_parameter_counts(net, n_parameters):
    assert dt.count_parameters(net) == n_parameters
    assert net(torch.rand(5, 36)).shape == (5, 1)


def test_the_student_package_holds_no_architecture():
    for name in ("mlp", "batchnorm_mlp", "residual_net", "ResidualSequence"):
        assert not hasattr(dt, name)


def test_batchnorm_mlp_needs_three_layers():
    with pytest.raises(ValueError):
        ref.batchnorm_mlp(36, 8, 2)


# ------------------------------------------------------------------------------------- run_test


def _quiet(func, *args, **kwargs):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        result = func(*args, **kwargs)
    assert err.getvalue() == ""
    return result, out.getvalue()


@pytest.fixture(scope="module")
def trained(tiny):
    """The 2-block BatchNorm residual network trained by run_test once: (result, printed, net, threads)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.delenv(dt.AUTOGRADE_ENV_VAR, raising=False)
        torch.manual_seed(7150)
        threads = torch.get_num_threads()
        net = ref.residual_net(36, 16, 32, 2, batchnorm=True)
        result, printed = _quiet(
            dt.run_test, dt.Supervise(nn.BCELoss(), net),
            lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=1e-3), tiny, label="bn res", plot=True,
        )
    return result, printed, net, threads


def test_run_test_stops_at_full_validation_accuracy_and_reports(trained):
    result, printed, _, threads = trained
    assert torch.get_num_threads() == threads
    assert "2849 parameters" in printed and "100% validation accuracy" in printed
    assert result.stop_reason == "100% validation accuracy"
    assert result.val_acc == 1.0 and result.epochs < 2000 and result.epochs % 10 == 0
    assert len(result.losses) == result.epochs
    assert list(result.eval_epochs) == list(range(10, result.epochs + 1, 10))
    assert len(result.train_accs) == len(result.val_accs) == len(result.eval_epochs)
    assert result.losses[-1] < result.losses[0]
    assert "bn res: 2849 parameters" in result.summary()


def test_run_test_gives_up_on_a_stuck_network_after_patience(tiny, monkeypatch):
    monkeypatch.delenv(dt.AUTOGRADE_ENV_VAR, raising=False)
    torch.manual_seed(0)
    net = ref.mlp(36, 8, 3)
    for p in net.parameters():
        nn.init.zeros_(p)  # every hidden unit dead: nothing can be learned
    result, _ = _quiet(dt.run_test, dt.Supervise(nn.BCELoss(), net),
                       lambda p: torch.optim.SGD(p, lr=0.1), tiny, patience=100, plot=False)
    assert result.stop_reason == "no progress"
    assert result.epochs == 110  # patience counts from the last improvement: the first evaluation
    result, _ = _quiet(dt.run_test, dt.Supervise(nn.BCELoss(), ref.mlp(36, 8, 3)),
                       lambda p: torch.optim.SGD(p, lr=0.0), tiny, patience=None, max_epochs=30,
                       plot=False, verbose=False)
    assert result.stop_reason == "epoch budget" and result.epochs == 30


def test_run_test_trains_with_denormal_numbers_flushed_and_keeps_them_afterwards(tiny, monkeypatch):
    """A dead network's signals decay to denormal numbers, which x86 processors compute with many
    times slower: run_test trains with them set to 0, and leaves torch's default behind."""
    monkeypatch.delenv(dt.AUTOGRADE_ENV_VAR, raising=False)
    tiniest = torch.tensor([1e-39], dtype=torch.float32)  # below float32's smallest normal number
    flushed = 0.0 if torch.set_flush_denormal(False) else 1e-39  # True where torch can flush them
    # (x86 processors only: elsewhere they are kept, and computing with them is not slow)
    assert float(tiniest * 1.0) != 0.0  # torch's default: kept
    with dt.flush_denormals():
        assert float(tiniest * 1.0) == pytest.approx(flushed, abs=0.0, rel=1e-6)
    assert float(tiniest * 1.0) != 0.0
    seen = []

    class Watch(nn.Module):  # records, during training, what a denormal input becomes
        def forward(self, x):
            seen.append(float(tiniest * 1.0))
            return x

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(36, 1), Watch(), nn.Sigmoid())
    _quiet(dt.run_test, dt.Supervise(nn.BCELoss(), net), lambda p: torch.optim.SGD(p, lr=0.1), tiny,
           max_epochs=3, plot=False, verbose=False)
    assert seen and all(value == pytest.approx(flushed, abs=0.0, rel=1e-6) for value in seen)
    assert float(tiniest * 1.0) != 0.0


def test_run_test_shrinks_under_autograding(tiny, monkeypatch):
    monkeypatch.setenv(dt.AUTOGRADE_ENV_VAR, "1")
    torch.manual_seed(0)
    result, printed = _quiet(dt.run_test, dt.Supervise(nn.MSELoss(), ref.mlp(36, 16, 3)),
                             lambda p: torch.optim.SGD(p, lr=1.0), tiny, plot=False)
    assert result.epochs == dt.AUTOGRADE_EPOCHS and "autograding" in printed


def test_run_test_stops_on_a_diverging_loss(tiny, monkeypatch):
    monkeypatch.delenv(dt.AUTOGRADE_ENV_VAR, raising=False)
    torch.manual_seed(0)
    result, _ = _quiet(dt.run_test, dt.Supervise(nn.MSELoss(), nn.Sequential(nn.Linear(36, 1))),
                       lambda p: torch.optim.SGD(p, lr=1e6), tiny, plot=False)
    assert result.stop_reason == "the loss is not finite"


def test_results_table_and_flip_sensitivity(trained, tiny):
    result, _, net, _ = trained
    table = dt.results_table([("bn", "1.0", result), ("missing", "0.5", None)])
    assert "| bn | 1.0 | 1.000 |" in table and "| missing | 0.5 | – |" in table
    sensitivity = dt.flip_sensitivity(net, tiny.val_data).reshape(6, 6)
    centre = sensitivity[2:4, 2:4]
    assert (centre > 0.98).all()  # every centre pixel is a parity term
    for r, c in [(0, 0), (0, 5), (5, 5)]:
        assert 0.15 < sensitivity[r, c] < 0.35  # matters only when the other two corners are on
    rest = sensitivity.clone()
    rest[2:4, 2:4] = 0
    rest[0, 0] = rest[0, 5] = rest[5, 5] = 0
    assert rest.max() < 0.02
    fig = dt.plot_flip_sensitivity(sensitivity.reshape(-1), "t", show=False)
    assert fig.axes


# ------------------------------------------------------------------ stand-ins and replayed runs


def _lines(printed: str) -> list[str]:
    return [line for line in printed.splitlines() if line.startswith("  epoch")]


def test_a_recorded_run_is_replayed_line_for_line(tiny, tmp_path, monkeypatch):
    monkeypatch.delenv(dt.AUTOGRADE_ENV_VAR, raising=False)
    log = tmp_path / "runs.jsonl"
    monkeypatch.setenv(dt.RECORD_ENV_VAR, str(log))
    torch.manual_seed(0)
    net = ref.mlp(36, 8, 3)
    live, printed = _quiet(dt.run_test, dt.Supervise(nn.BCELoss(), net),
                           lambda p: torch.optim.SGD(p, lr=0.5), tiny, max_epochs=1000, patience=None,
                           label="small", plot=False)
    monkeypatch.delenv(dt.RECORD_ENV_VAR)
    record = json.loads(log.read_text())
    table = tmp_path / "precomputed_runs.json"
    table.write_text(json.dumps({"small": record}))
    monkeypatch.setattr(dt, "PRECOMPUTED_RUNS", table)
    stand_in = dt.precomputed("ex_mlp")(36, 8, 3)
    replayed, replay_printed = _quiet(dt.run_test, dt.Supervise(nn.BCELoss(), stand_in),
                                      lambda p: pytest.fail("a replay builds no optimiser"), tiny,
                                      label="small", plot=True)
    assert "small: 377 parameters (the course's precomputed run: your ex_mlp does not pass" in replay_printed
    assert "[precomputed]" in replay_printed and _lines(replay_printed) == _lines(printed)
    assert len(_lines(printed)) == 2  # epochs 500 and 1000
    assert replayed.extra == {"precomputed": True} and replayed.stop_reason == live.stop_reason
    assert np.array_equal(replayed.losses, live.losses.astype(np.float32))
    assert np.array_equal(replayed.eval_epochs, live.eval_epochs)
    assert np.array_equal(replayed.val_accs, live.val_accs.astype(np.float32))
    # the replayed stand-in answers for the trained network on its validation set, and only there
    assert torch.equal(dt.predict(stand_in, tiny.val_data), dt.predict(net, tiny.val_data))
    assert torch.allclose(dt.flip_sensitivity(stand_in, tiny.val_data),
                          dt.flip_sensitivity(net, tiny.val_data))
    with pytest.raises(RuntimeError, match="precomputed its answers on the validation set"):
        dt.predict(stand_in, tiny.train_data)
    # a Supervise-like stand-in replays as well; an unknown label says what was precomputed
    cls = dt.precomputed("Supervise_Kaiming_weights")
    again, _ = _quiet(dt.run_test, cls(nn.BCELoss(), ref.mlp(36, 8, 3)), None, tiny, label="small",
                      plot=False)
    assert np.array_equal(again.losses, replayed.losses)
    with pytest.raises(KeyError, match="precomputed: \\['small'\\]"):
        _quiet(dt.run_test, cls(nn.BCELoss(), ref.mlp(36, 8, 3)), None, tiny, label="other", plot=False)


def test_every_precomputed_run_is_complete_and_labelled_as_in_the_notebooks():
    records = json.loads(dt.PRECOMPUTED_RUNS.read_text(encoding="utf-8"))
    assert dt.PRECOMPUTED_RUNS.stat().st_size < 400_000
    assert len(records) == 21  # 19 runs in tutorial 3, 2 in tutorial 4
    for label, record in records.items():
        losses = dt._unpack(record["losses"], "<f4")
        epochs = dt._unpack(record["eval_epochs"], "<u2")
        assert record["label"] == label and 0 < len(losses) <= record["max_epochs"] == 2000
        assert len(epochs) == len(dt._unpack(record["val_accs"], "<f4")) and epochs[-1] == len(losses)
        assert len(dt._unpack(record["flip_sensitivity"], "<f8")) == 36
