"""Measure what makes tutorials 3 and 4 fast (or slow).

Usage (from the repository root)::

    python scripts/benchmark_t3_t4.py            # micro-benchmarks only (about a minute)
    python scripts/benchmark_t3_t4.py --notebooks  # also execute both solution notebooks, normally
                                                   # and as nbgrader's autograder would
    python scripts/benchmark_t3_t4.py --early-stopping  # the runs that run_test stops for lack of
                                                        # progress, early and for all 2,000 epochs

Prints, for the 6×6 tasks:

* the time to generate both data sets;
* milliseconds per full-batch training epoch of the widest network (3 × 128) and of the BatchNorm
  residual network, with 1 and with 2 torch threads;
* tutorial 2's reference ``ADAMOptimizer`` against ``torch.optim.Adam`` (which tutorials 3 and 4
  train with);
* the cost of the evaluation every 10 epochs, as a share of training;
* with ``--notebooks``: wall-clock time of each solution notebook, with and without
  ``NBGRADER_EXECUTION`` set;
* with ``--early-stopping``: the sigmoid and tanh runs of tutorial 3, which ``run_test`` stops for
  lack of progress, against the same runs trained for the full 2,000 epochs (time saved, and
  whether the result changes).

Timings depend on the machine and on what else runs on it; compare numbers from one run only.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from dlnn_helpers.deep_training import Supervise  # noqa: E402
from dlnn_helpers.deep_training_data import hard_classification, tiny_classification  # noqa: E402
from dlnn_reference.deep_training import mlp, residual_net  # noqa: E402 (instructor side)
from dlnn_reference.optimisation import ADAMOptimizer  # noqa: E402 (tutorial 2's reference)


def _epoch_ms(make_net, optmaker, data, epochs: int, threads: int, evaluate_every: int = 0) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = Supervise(nn.BCELoss(), make_net())
    optimiser = optmaker(net.parameters())
    x, y, xv, _ = data
    for _ in range(3):  # warm-up
        optimiser.zero_grad()
        net(x, y).backward()
        optimiser.step()
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        optimiser.zero_grad()
        net(x, y).backward()
        optimiser.step()
        if evaluate_every and epoch % evaluate_every == 0:
            net.eval()
            with torch.no_grad():
                net.net(xv)
            net.train()
    return 1000 * (time.perf_counter() - start) / epochs


def micro(epochs: int) -> None:
    start = time.perf_counter()
    tiny = tiny_classification()
    hard_classification()
    print(f"generate tiny + hard data: {1000 * (time.perf_counter() - start):.0f} ms")

    def adam_ref(p):
        return ADAMOptimizer(p, lr=0.01, weight_decay=1e-3)

    def adam_torch(p):
        return torch.optim.Adam(p, lr=0.01, weight_decay=1e-3)

    nets = {
        "3 x 128 ReLU MLP": lambda: mlp(36, 128, 3, nn.ReLU),
        "6 x 32 ReLU MLP": lambda: mlp(36, 32, 6, nn.ReLU),
        "BatchNorm + 2 residual blocks": lambda: residual_net(36, 16, 32, 2, batchnorm=True),
    }
    print(f"\nms per full-batch epoch ({epochs} epochs, 8,000 samples):")
    print(f"{'network':32s} {'optimiser':18s} {'1 thread':>9s} {'2 threads':>9s}")
    for name, make in nets.items():
        for opt_name, opt in (("ADAMOptimizer", adam_ref), ("torch.optim.Adam", adam_torch)):
            one = _epoch_ms(make, opt, tiny, epochs, 1)
            two = _epoch_ms(make, opt, tiny, epochs, 2)
            print(f"{name:32s} {opt_name:18s} {one:9.2f} {two:9.2f}")
    make = nets["3 x 128 ReLU MLP"]
    plain = _epoch_ms(make, adam_ref, tiny, epochs, 1)
    evaluated = _epoch_ms(make, adam_ref, tiny, epochs, 1, evaluate_every=10)
    every = _epoch_ms(make, adam_ref, tiny, epochs, 1, evaluate_every=1)
    print(f"\n3 x 128, 1 thread: training only {plain:.2f} ms/epoch; + validation every 10 epochs "
          f"{evaluated:.2f}; + validation every epoch {every:.2f}")


def early_stopping() -> None:
    from dlnn_helpers.deep_training import run_test

    tiny = tiny_classification()
    for name, activation in (("sigmoid", nn.Sigmoid), ("tanh", nn.Tanh)):
        for patience in (500, None):
            torch.manual_seed(7150)  # the notebook's seed
            result = run_test(
                Supervise(nn.MSELoss(), mlp(36, 128, 3, activation)),
                lambda p: torch.optim.SGD(p, lr=1.0), tiny, patience=patience, plot=False,
                verbose=False,
            )
            print(f"{name:8s} patience={patience!s:5s}: {result.epochs:4d} epochs, validation "
                  f"accuracy {result.val_acc:.3f}, training accuracy {result.train_acc:.3f}, "
                  f"{result.seconds:.1f} s")


def notebooks() -> None:
    import course  # scripts/course.py

    for tutorial in ("T3_TrainingDeepNetworks", "T4_WeightInitialisation"):
        for autograde in (False, True):
            env = {"NBGRADER_EXECUTION": "autograde"} if autograde else {}
            if not autograde:
                os.environ.pop("NBGRADER_EXECUTION", None)
            start = time.perf_counter()
            course.execute_notebook(course.solution_path(tutorial), timeout=1200, env=env)
            label = "as autograded" if autograde else "normally"
            print(f"{tutorial} solution, {label}: {time.perf_counter() - start:.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--notebooks", action="store_true")
    parser.add_argument("--early-stopping", action="store_true")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    micro(args.epochs)
    if args.early_stopping:
        print()
        early_stopping()
    if args.notebooks:
        print()
        notebooks()
    return 0


if __name__ == "__main__":
    sys.exit(main())
