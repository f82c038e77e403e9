"""Training deep classifiers on the 6×6 tasks: ``Supervise``, ``run_test``, and replayed runs.

The training loop of tutorials 3 and 4 and what it reports.  The networks themselves are the
students' exercises (``ex_mlp``, ``ex_batchnorm_mlp``, ``ResidualSequence``, ``ex_residual_net``,
``Supervise_random_weights``, ``Supervise_Kaiming_weights``): this package does not hold them.
Until an exercise passes its self-check, a notebook goes on with :func:`precomputed`, a stand-in
that builds nothing: :func:`run_test` then replays the run that the course's reference made and
recorded (``data/precomputed_runs.json``), saying so.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import run_sharing
from .course import AUTOGRADE_ENV_VAR  # nbgrader sets it while it autogrades: run_test trains less
from .deep_training_data import ClassificationData, tiny_classification
from .utils import torch_threads

AUTOGRADE_EPOCHS = 20
"""Epoch budget of :func:`run_test` while autograding (the graded results never depend on it)."""

DEFAULT_THREADS = 1
"""Threads :func:`run_test` lets torch use.  Measured with ``scripts/benchmark_t3_t4.py`` on a
2-core machine: with the machine otherwise idle, two threads train the 3 × 128 network about 1.7
times faster than one (9 against 16 ms per epoch); with anything else running, two threads fight
over the cores and an epoch becomes 2 to 50 times slower than with one (25 against 14 ms for the
3 × 128 network, 250 against 5 ms for the 6 × 32 one).  One thread is the safe choice: tutorial 3
stays within its time budget either way.  ``None`` leaves torch's own setting (one per core)."""


PRECOMPUTED_RUNS = Path(__file__).parent / "data" / "precomputed_runs.json"
"""The runs of tutorials 3 and 4 as the course's reference made them, by label (written by the
instructor's ``dlnn_reference.deep_training.write_precomputed_runs``)."""

RECORD_ENV_VAR = "DLNN_RECORD_RUNS"
"""When set to a file name, :func:`run_test` appends a record of every run to that file (one JSON
line each): how the precomputed runs are made."""


@contextmanager
def flush_denormals() -> Iterator[None]:
    """Within the block, float results too small for a normal number (below about 1e-38 in
    float32: *denormal* numbers) are set to 0; afterwards they are kept again (torch's default).

    Arithmetic on denormal numbers is many times slower on x86 processors, and a network whose
    signals have died (tutorial 3's plain 6-layer network, tutorial 4's weights N(0, 0.01²)) is full
    of them: measured on the 2-core development machine (issue 22), one epoch of the dead 6 × 32
    network took 9 ms of CPU while its signals were still normal numbers and 25 to 50 ms once they
    had decayed to denormals; with them set to 0, 9 ms throughout.  Such a network computes nothing
    either way: it stops for lack of progress at the same epoch and chance accuracy.
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def autograding() -> bool:
    """True while nbgrader autogrades a notebook (the environment variable it sets is present)."""
    return AUTOGRADE_ENV_VAR in os.environ


# ------------------------------------------------------------------------------------------------
# Modules
# ------------------------------------------------------------------------------------------------


class Supervise(nn.Module):
    """A network together with its loss: ``Supervise(criterion, net)(x, y)`` is the loss.

    Parameters
    ----------
    criterion : nn.Module
        Loss comparing predictions of shape (batch,) with targets of shape (batch,), e.g.
        ``nn.BCELoss()`` or ``nn.MSELoss()``.
    net : nn.Module
        Maps inputs of shape (batch, n_in) to outputs of shape (batch, 1).
    """

    def __init__(self, criterion: nn.Module, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.criterion = criterion

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Return the scalar loss of the predictions for ``x`` (batch, n_in) against ``y`` (batch,)."""
        out = self.net(x).squeeze(-1)
        return self.criterion(out, y)


# ------------------------------------------------------------------------------------------------
# Stand-ins for exercises that are not done yet: replayed runs
# ------------------------------------------------------------------------------------------------

SUPERVISE_EXERCISES = ("Supervise_random_weights", "Supervise_Kaiming_weights")
"""The exercises that are ``Supervise``-like classes (the others build networks)."""


class PrecomputedNetwork(nn.Module):
    """Stands in for a network that an exercise would build: it holds no layers and computes
    nothing; :func:`run_test` replays the course's precomputed run of the same label instead.

    Parameters
    ----------
    exercise : str
        The exercise it stands in for, e.g. ``"ex_mlp"``.
    *args, **kwargs
        The arguments the exercise was called with (kept for the messages).
    """

    def __init__(self, exercise: str, *args, **kwargs) -> None:
        if not isinstance(exercise, str):
            raise TypeError(f"PrecomputedNetwork stands in for an exercise named by a string, not "
                            f"{type(exercise).__name__}")
        super().__init__()
        self.exercise = exercise
        self.arguments = (args, kwargs)
        self.record: dict | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Always raises: there is no network here (complete the exercise to build one)."""
        raise RuntimeError(
            f"This network stands in for {self.exercise}, which does not pass its self-check yet: "
            f"it computes nothing (run_test replays the course's run instead). Complete "
            f"{self.exercise} to build and train the network yourself."
        )


class PrecomputedSupervise(Supervise):
    """Stands in for a ``Supervise``-like exercise class: the network keeps its initialisation and
    :func:`run_test` replays the course's precomputed run of the same label instead of training."""

    exercise = "Supervise"


def precomputed(exercise: str) -> Callable[..., nn.Module]:
    """A stand-in for ``exercise`` while it does not pass its self-check (see
    :func:`~dlnn_helpers.checks.own_or_fallback`).

    Parameters
    ----------
    exercise : str
        ``"ex_mlp"``, ``"ex_batchnorm_mlp"``, ``"ex_residual_net"`` (architecture functions: the
        stand-in returns a :class:`PrecomputedNetwork`), ``"Supervise_random_weights"`` or
        ``"Supervise_Kaiming_weights"`` (classes: the stand-in is a :class:`PrecomputedSupervise`).

    Returns
    -------
    callable
        Called like the exercise; :func:`run_test` recognises what it made and replays the run.
    """
    if exercise in SUPERVISE_EXERCISES:
        return type(f"Precomputed_{exercise}", (PrecomputedSupervise,), {"exercise": exercise})

    def build(*args, **kwargs) -> PrecomputedNetwork:
        return PrecomputedNetwork(exercise, *args, **kwargs)

    build.__name__ = build.__qualname__ = f"precomputed_{exercise}"
    return build


def _stand_in(net: nn.Module) -> str | None:
    """The exercise a stand-in replaces, when ``net`` (a Supervise-like module) holds one."""
    if isinstance(net, PrecomputedSupervise):
        return net.exercise
    inner = getattr(net, "net", None)
    if isinstance(inner, PrecomputedNetwork):
        return inner.exercise
    return None


def load_precomputed(label: str) -> dict:
    """The precomputed record of the run labelled ``label`` (raises KeyError when there is none)."""
    with open(PRECOMPUTED_RUNS, encoding="utf-8") as stream:
        records = json.load(stream)
    if label not in records:
        raise KeyError(
            f"the course precomputed no run labelled {label!r} (keep the notebook's labels, or "
            f"complete the exercise to train the network yourself); precomputed: {sorted(records)}"
        )
    return records[label]


def _pack(array: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _unpack(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype).copy()


def _fingerprint(data: torch.Tensor) -> str:
    return hashlib.sha1(data.detach().cpu().float().contiguous().numpy().tobytes()).hexdigest()


def _record(result: TrainingResult, inner: nn.Module | None, data: ClassificationData,
            path: str) -> None:
    """Append ``result`` (and what the trained network predicts on the validation set) to ``path``."""
    record = {
        "label": result.label, "n_parameters": result.n_parameters, "stop_reason": result.stop_reason,
        "max_epochs": result.max_epochs, "seconds": round(result.seconds, 1),
        "losses": _pack(result.losses, "<f4"),
        "eval_epochs": _pack(result.eval_epochs, "<u2"),
        "train_accs": _pack(result.train_accs, "<f4"), "val_accs": _pack(result.val_accs, "<f4"),
    }
    if isinstance(inner, nn.Module):
        val = data.val_data
        record["val_fingerprint"] = _fingerprint(val)
        record["val_predictions"] = _pack(np.packbits(predict(inner, val).numpy().astype(np.uint8)),
                                          "u1")
        record["flip_sensitivity"] = _pack(flip_sensitivity(inner, val).numpy(), "<f8")
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(json.dumps(record, sort_keys=True) + "\n")


def _progress_line(epoch: int, loss: float, train_acc: float, val_acc: float) -> str:
    """The line ``run_test`` prints every 500 epochs."""
    return (f"  epoch {epoch:4d}  loss {loss:.4g}  train accuracy {train_acc:.3f}  validation "
            f"accuracy {val_acc:.3f}")


def _print_progress(result: TrainingResult) -> None:
    """Print the progress lines of a finished run (every 500 epochs), as training prints them."""
    for epoch, train_acc, val_acc in zip(result.eval_epochs, result.train_accs, result.val_accs,
                                         strict=True):
        if epoch % 500 == 0:
            print(_progress_line(int(epoch), result.losses[epoch - 1], train_acc, val_acc))


def _replay(net: nn.Module, exercise: str, label: str, *, plot: bool, verbose: bool) -> TrainingResult:
    record = load_precomputed(label)
    result = TrainingResult(
        label=label,
        n_parameters=int(record["n_parameters"]),
        losses=_unpack(record["losses"], "<f4").astype(np.float64),
        eval_epochs=_unpack(record["eval_epochs"], "<u2").astype(np.int64),
        train_accs=_unpack(record["train_accs"], "<f4").astype(np.float64),
        val_accs=_unpack(record["val_accs"], "<f4").astype(np.float64),
        stop_reason=record["stop_reason"],
        seconds=0.0,
        max_epochs=int(record["max_epochs"]),
        extra={"precomputed": True},
    )
    inner = net if isinstance(net, PrecomputedSupervise) else net.net
    if isinstance(inner, PrecomputedNetwork):
        inner.record = record
    if verbose:
        print(f"{label}: {result.n_parameters} parameters (the course's precomputed run: your "
              f"{exercise} does not pass its self-check yet)")
        _print_progress(result)
        print(f"  stopped after {result.epochs} epochs ({result.stop_reason}): train accuracy "
              f"{result.train_acc:.3f}, validation accuracy {result.val_acc:.3f} [precomputed]")
    if plot:
        plot_training(result)
    return result


def _recorded(net: nn.Module, data: torch.Tensor, what: str) -> np.ndarray | None:
    """What a replayed stand-in network recorded about ``data`` (None for a real network)."""
    if not isinstance(net, PrecomputedNetwork):
        return None
    record = net.record
    if record is None or "val_fingerprint" not in record:
        raise RuntimeError(f"This network stands in for {net.exercise} and has no precomputed "
                           f"training run yet: complete {net.exercise} to build it yourself.")
    if _fingerprint(data) != record["val_fingerprint"]:
        raise RuntimeError(f"This network stands in for {net.exercise}: the course precomputed its "
                           "answers on the validation set it was trained with only.")
    if what == "predictions":
        return np.unpackbits(_unpack(record["val_predictions"], "u1"))[: data.shape[0]]
    return _unpack(record["flip_sensitivity"], "<f8")


def count_parameters(module: nn.Module) -> int:
    """Number of trainable numbers in ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


# ------------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------------


@dataclass
class TrainingResult:
    """What :func:`run_test` measured.

    Attributes
    ----------
    label : str
        Name of the experiment.
    n_parameters : int
        Trainable parameters of the network.
    losses : np.ndarray of shape (n_epochs_run,)
        Training loss at every epoch.
    eval_epochs : np.ndarray of shape (n_evals,)
        Epochs (counted from 1) after which the accuracies were measured.
    train_accs, val_accs : np.ndarray of shape (n_evals,)
        Training and validation accuracy at those epochs.
    stop_reason : str
        ``"100% validation accuracy"``, ``"training set fitted, validation accuracy flat"``,
        ``"no progress"``, ``"epoch budget"`` or ``"the loss is not finite"``.
    seconds : float
        Wall-clock training time.
    """

    label: str
    n_parameters: int
    losses: np.ndarray
    eval_epochs: np.ndarray
    train_accs: np.ndarray
    val_accs: np.ndarray
    stop_reason: str
    seconds: float
    max_epochs: int = 2000
    extra: dict = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        """Number of epochs trained."""
        return len(self.losses)

    @property
    def train_acc(self) -> float:
        """Training accuracy at the last evaluation."""
        return float(self.train_accs[-1]) if len(self.train_accs) else float("nan")

    @property
    def val_acc(self) -> float:
        """Validation accuracy at the last evaluation."""
        return float(self.val_accs[-1]) if len(self.val_accs) else float("nan")

    @property
    def best_val_acc(self) -> float:
        """Highest validation accuracy seen."""
        return float(self.val_accs.max()) if len(self.val_accs) else float("nan")

    def summary(self) -> str:
        """One line: parameters, epochs, accuracies and why training stopped."""
        return (f"{self.label or 'run'}: {self.n_parameters} parameters, {self.epochs} epochs "
                f"({self.stop_reason}), train accuracy {self.train_acc:.3f}, validation accuracy "
                f"{self.val_acc:.3f}, {self.seconds:.1f} s")


def _accuracy(outputs: torch.Tensor, labels: torch.Tensor) -> float:
    return float(((outputs.reshape(-1) > 0.5).to(labels.dtype) == labels).float().mean())


def run_test(
    net: nn.Module,
    optmaker: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
    data: ClassificationData | None = None,
    *,
    max_epochs: int = 2000,
    test_every: int = 10,
    patience: int | None = 500,
    min_improvement: float = 0.01,
    min_loss_improvement: float = 1e-2,
    label: str = "",
    plot: bool = True,
    verbose: bool = True,
    threads: int | None = DEFAULT_THREADS,
) -> TrainingResult:
    """Train a supervised network full-batch, watch its accuracies, stop when there is no point.

    Every epoch is one gradient step on the whole training set.  Every ``test_every`` epochs the
    training accuracy (of the outputs that epoch's step was computed from, so it costs nothing) and
    the validation accuracy (network in ``eval`` mode) are recorded.  Training stops

    * at 100 % validation accuracy (nothing left to learn);
    * when the validation accuracy has not risen above its best by ``min_improvement`` for
      ``patience`` epochs and either the training set is fitted (100 % training accuracy: the
      network has nothing left to learn from it) or the training loss has not fallen by even a
      fraction ``min_loss_improvement`` (1 %) in those epochs (a network whose loss has stopped
      moving, or creeps down without changing a prediction: dead units or saturated, vanishing
      gradients);
    * after ``max_epochs`` epochs.

    While nbgrader autogrades (:func:`autograding`), at most :data:`AUTOGRADE_EPOCHS` epochs run.
    Training runs with denormal numbers flushed to zero (:func:`flush_denormals`: a network whose
    signals have died would otherwise train several times slower).

    When ``net`` holds a stand-in (:func:`precomputed`: the exercise that builds the network does
    not pass its self-check yet), nothing is trained: the run the course's reference made with the
    same ``label`` is replayed from :data:`PRECOMPUTED_RUNS` (printed and drawn the same way, and
    marked as precomputed).

    When the site build executes the notebook in two kernels that share its runs
    (:mod:`~dlnn_helpers.run_sharing`: only then), a run may be trained by the other kernel: this
    one then loads the trained network and prints and draws the run as if it had trained it.

    Parameters
    ----------
    net : nn.Module
        ``net(x, y)`` returns the loss (a :class:`Supervise`); ``net.net(x)`` the outputs of shape
        (batch, 1) with values in [0, 1].
    optmaker : callable
        Builds the optimiser from ``net.parameters()``, e.g. ``lambda p: torch.optim.SGD(p, lr=1)``.
    data : ClassificationData, optional
        The task (default: :func:`~dlnn_helpers.deep_training_data.tiny_classification`).
    max_epochs : int
        Epoch budget (2,000 in the source).
    test_every : int
        Epochs between evaluations.
    patience : int or None
        Epochs without progress before stopping; ``None`` trains to the end.
    min_improvement : float
        Rise of the validation accuracy that counts as progress (see above).
    min_loss_improvement : float
        Relative fall of the training loss that counts as progress (see above).
    label : str
        Name of the experiment, printed and stored.
    plot : bool
        Draw the loss (log scale) and the accuracies.
    verbose : bool
        Print the parameter count, a progress line every 500 epochs and the result.
    threads : int or None
        Threads for torch during training (restored afterwards).

    Returns
    -------
    TrainingResult
    """
    data = tiny_classification() if data is None else data
    exercise = _stand_in(net)
    if exercise is not None:
        return _replay(net, exercise, label, plot=plot, verbose=verbose)
    x_train, y_train, x_val, y_val = data
    if autograding():
        max_epochs = min(max_epochs, AUTOGRADE_EPOCHS)
    n_parameters = count_parameters(net)
    shared = run_sharing.current()  # None unless the site build shares the runs between two kernels
    action = "train" if shared is None else shared.action(label)
    if action == "skip":  # the other kernel trains it
        return TrainingResult(label=label, n_parameters=n_parameters, losses=np.empty(0),
                              eval_epochs=np.empty(0, dtype=np.int64), train_accs=np.empty(0),
                              val_accs=np.empty(0), stop_reason=run_sharing.SKIPPED, seconds=0.0,
                              max_epochs=max_epochs)
    verbose, plot = (False, False) if action == "share" else (verbose, plot)
    if verbose:
        note = " (autograding: shortened run)" if autograding() else ""
        print(f"{label + ': ' if label else ''}{n_parameters} parameters{note}")
    optimizer = optmaker(net.parameters())
    inner = getattr(net, "net", None)
    if action != "train":
        key = run_sharing.run_key(net, optimizer, [x_train, y_train, x_val, y_val], {
            "max_epochs": max_epochs, "test_every": test_every, "patience": patience,
            "min_improvement": min_improvement, "min_loss_improvement": min_loss_improvement,
            "threads": threads})
    if action == "load":  # trained by the other kernel: the same run, from the same weights
        fields, state = shared.load(label, key)
        net.load_state_dict(state)
        result = TrainingResult(label=label, n_parameters=n_parameters,
                                **{k: v.numpy() if isinstance(v, torch.Tensor) else v
                                   for k, v in fields.items()})
        if verbose:
            _print_progress(result)
        return _finish(result, inner, data, verbose=verbose, plot=plot)
    losses = np.empty(max_epochs)
    eval_epochs: list[int] = []
    train_accs: list[float] = []
    val_accs: list[float] = []
    best_val, best_val_epoch = -1.0, 0
    stop_reason = "epoch budget"
    start = time.perf_counter()
    net.train()
    outputs_hook: list[torch.Tensor] = []
    handle = None
    if isinstance(inner, nn.Module):
        def keep_outputs(module, args, output):
            outputs_hook.append(output.detach())
        handle = inner.register_forward_hook(keep_outputs)
    epoch = 0
    try:
        with torch_threads(threads), flush_denormals():
            for epoch in range(1, max_epochs + 1):
                outputs_hook.clear()
                optimizer.zero_grad()
                loss = net(x_train, y_train)
                loss.backward()
                optimizer.step()
                losses[epoch - 1] = loss.item()
                if not math.isfinite(losses[epoch - 1]):
                    stop_reason = "the loss is not finite"
                    break
                if epoch % test_every and epoch != max_epochs:
                    continue
                if outputs_hook:
                    train_acc = _accuracy(outputs_hook[0], y_train)
                else:
                    with torch.no_grad():
                        train_acc = _accuracy(inner(x_train), y_train)
                net.eval()
                with torch.no_grad():
                    val_acc = _accuracy(inner(x_val), y_val)
                net.train()
                eval_epochs.append(epoch)
                train_accs.append(train_acc)
                val_accs.append(val_acc)
                if verbose and epoch % 500 == 0:
                    print(_progress_line(epoch, losses[epoch - 1], train_acc, val_acc))
                if val_acc == 1.0:
                    stop_reason = "100% validation accuracy"
                    break
                if val_acc > best_val + min_improvement:
                    best_val, best_val_epoch = val_acc, epoch
                if patience is not None and epoch >= patience and epoch - best_val_epoch >= patience:
                    if train_acc == 1.0:
                        stop_reason = "training set fitted, validation accuracy flat"
                        break
                    if losses[epoch - 1] > losses[epoch - patience] * (1.0 - min_loss_improvement):
                        stop_reason = "no progress"
                        break
    finally:
        if handle is not None:
            handle.remove()
    result = TrainingResult(
        label=label,
        n_parameters=n_parameters,
        losses=losses[:epoch].copy(),
        eval_epochs=np.array(eval_epochs, dtype=np.int64),
        train_accs=np.array(train_accs),
        val_accs=np.array(val_accs),
        stop_reason=stop_reason,
        seconds=time.perf_counter() - start,
        max_epochs=max_epochs,
    )
    if action == "share":
        shared.save(label, key, {
            "losses": torch.from_numpy(result.losses), "eval_epochs": torch.from_numpy(result.eval_epochs),
            "train_accs": torch.from_numpy(result.train_accs), "val_accs": torch.from_numpy(result.val_accs),
            "stop_reason": result.stop_reason, "seconds": result.seconds, "max_epochs": max_epochs,
        }, net.state_dict())
    return _finish(result, inner, data, verbose=verbose, plot=plot)


def _finish(result: TrainingResult, inner: nn.Module | None, data: ClassificationData, *,
            verbose: bool, plot: bool) -> TrainingResult:
    """The end of :func:`run_test`: record the run (when asked to), print the last line, draw."""
    if os.environ.get(RECORD_ENV_VAR):
        _record(result, inner, data, os.environ[RECORD_ENV_VAR])
    if verbose:
        print(f"  stopped after {result.epochs} epochs ({result.stop_reason}): train accuracy "
              f"{result.train_acc:.3f}, validation accuracy {result.val_acc:.3f} "
              f"[{result.seconds:.1f} s]")
    if plot:
        plot_training(result)
    return result


def plot_training(result: TrainingResult, ax=None, *, show: bool = True):
    """Training loss (log scale, left axis) and training / validation accuracy (right axis).

    Parameters
    ----------
    result : TrainingResult
    ax : matplotlib Axes, optional
        Where to draw; a new figure when omitted.
    show : bool
        Show the figure now (and return None), or return it without showing.

    Returns
    -------
    matplotlib.figure.Figure or None
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3.6))
    else:
        fig = ax.figure
    acc_ax = ax.twinx()
    epochs = np.arange(1, result.epochs + 1)
    positive = np.clip(result.losses, 1e-12, None)
    ax.plot(epochs, positive, color="tab:blue", label="training loss")
    ax.set_yscale("log")
    acc_ax.plot(result.eval_epochs, result.train_accs, color="tab:orange", label="training accuracy")
    acc_ax.plot(result.eval_epochs, result.val_accs, color="tab:red", label="validation accuracy")
    acc_ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    acc_ax.set_ylim(0.0, 1.02)
    for a in (ax, acc_ax):
        a.spines["top"].set_visible(False)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    acc_ax.set_ylabel("accuracy")
    if result.label:
        ax.set_title(result.label)
    handles = ax.get_legend_handles_labels()[0] + acc_ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="lower left", fontsize=8)
    fig.tight_layout()
    if show:
        plt.show()
        return None
    return fig


def results_table(rows: list[tuple[str, str, TrainingResult | None]]) -> str:
    """A Markdown table: experiment, the source's validation accuracy, ours, and our epochs.

    Parameters
    ----------
    rows : list of (experiment, source's result, our TrainingResult or None)

    Returns
    -------
    str
        Markdown text (display it with ``IPython.display.Markdown``).
    """
    lines = ["| experiment | source: validation accuracy | ours: validation accuracy "
             "| ours: training accuracy | epochs |",
             "|---|---|---|---|---|"]
    for name, theirs, ours in rows:
        if ours is None:
            lines.append(f"| {name} | {theirs} | – | – | – |")
        else:
            lines.append(f"| {name} | {theirs} | {ours.val_acc:.3f} | {ours.train_acc:.3f} "
                         f"| {ours.epochs} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# Looking inside a trained classifier
# ------------------------------------------------------------------------------------------------


def predict(net: nn.Module, data: torch.Tensor) -> torch.Tensor:
    """Class predictions (0 or 1) of a network in eval mode, shape (n_samples,).

    Parameters
    ----------
    net : nn.Module
        Maps (n_samples, n_in) to probabilities of shape (n_samples, 1).  A replayed stand-in
        (:class:`PrecomputedNetwork`) gives the predictions its run recorded on its validation set.
    data : torch.Tensor of shape (n_samples, n_in)

    Returns
    -------
    torch.Tensor of shape (n_samples,), dtype int64
    """
    recorded = _recorded(net, data, "predictions")
    if recorded is not None:
        return torch.from_numpy(recorded.astype(np.int64))
    was_training = net.training
    net.eval()
    with torch.no_grad():
        out = net(data).reshape(-1)
    net.train(was_training)
    return (out > 0.5).long()


def flip_sensitivity(net: nn.Module, data: torch.Tensor) -> torch.Tensor:
    """For every input pixel, the fraction of samples whose predicted class changes when it flips.

    A pixel that a rule ignores scores 0; a pixel that always matters (a term of a parity) scores 1.

    Parameters
    ----------
    net : nn.Module
        Maps binary inputs (n_samples, n_in) to probabilities (n_samples, 1).  A replayed stand-in
        (:class:`PrecomputedNetwork`) gives what its run recorded on its validation set.
    data : torch.Tensor of shape (n_samples, n_in), values 0 or 1

    Returns
    -------
    torch.Tensor of shape (n_in,)
    """
    recorded = _recorded(net, data, "flip_sensitivity")
    if recorded is not None:
        return torch.from_numpy(recorded)
    base = predict(net, data)
    n_samples, n_in = data.shape
    flipped = data.unsqueeze(0).repeat(n_in, 1, 1)
    index = torch.arange(n_in)
    flipped[index, :, index] = 1.0 - flipped[index, :, index]
    changed = predict(net, flipped.reshape(n_in * n_samples, n_in)).reshape(n_in, n_samples)
    return (changed != base).double().mean(dim=1)


def plot_flip_sensitivity(
    values: torch.Tensor, title: str = "", grid: int = 6, *, show: bool = True
):
    """Show :func:`flip_sensitivity` as a grid image with the value written in each pixel.

    Parameters
    ----------
    values : torch.Tensor of shape (grid * grid,)
    title : str
    grid : int
        Side of the square input grid.
    show : bool
        Show the figure now (and return None), or return it without showing.

    Returns
    -------
    matplotlib.figure.Figure or None
    """
    import matplotlib.pyplot as plt

    image = values.reshape(grid, grid).numpy()
    fig, ax = plt.subplots(figsize=(4.4, 3.6))
    shown = ax.imshow(image, cmap="viridis", vmin=0.0, vmax=1.0)
    for (r, c), v in np.ndenumerate(image):
        ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7,
                color="black" if v > 0.5 else "white")
    ax.set_xticks(range(grid))
    ax.set_yticks(range(grid))
    ax.set_xlabel("column")
    ax.set_ylabel("row")
    fig.colorbar(shown, ax=ax, label="fraction of predictions flipped")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    if show:
        plt.show()
        return None
    return fig
