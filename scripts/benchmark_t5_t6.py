"""Benchmark of the training loops of tutorials 5 and 6 (run from the repository root).

    python scripts/benchmark_t5_t6.py                # T6 full schedule + T5 demos
    python scripts/benchmark_t5_t6.py --ref-steps 0  # skip the one-model-at-a-time loop

T6: the six runs of each architecture (widths 10, 20, 40; all layers at lr 0.02 and output layer only
at lr 0.2) for the source's schedule (150,000 SGD steps, minibatch 40 of 200, a snapshot every 1,000
steps), trained at once by :func:`dlnn_helpers.relu_features.train_relu_nets`, beside the
straightforward loop (one ``nn.Sequential``, ``torch.optim.SGD``, autograd, a deep copy of the state
every 1,000 steps) measured in the same run on ``--ref-steps`` steps of each run and extrapolated to
the full schedule. The source reported 20.1 GPU minutes (one hidden layer) and 12.0 GPU minutes (two
hidden layers) for the all-layers runs alone.

T6, the notebook's comparison of widths: five initialisations of each width, each trained on all
layers and on the output layer only (30 runs), for the notebook's 50,000 steps (``--notebook-steps``).

T5: the regression MLP of the tutorial (500 epochs) and the model-wise double-descent sweep.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from dlnn_helpers.relu_features import make_relu_data, make_relu_net, train_one_net, train_relu_nets

WIDTHS = (10, 20, 40)
SOURCE_MINUTES = {1: 20.1, 2: 12.0}


def benchmark_t6(n_steps: int, ref_steps: int) -> None:
    data = make_relu_data()
    torch.set_num_threads(1)  # both loops: tiny operations run fastest on one thread
    print(f"T6: {n_steps:,} SGD steps, batch 40, snapshot every 1,000; torch threads: "
          f"{torch.get_num_threads()}")
    for depth in (1, 2):
        generator = torch.Generator().manual_seed(depth)
        nets = [make_relu_net(w, depth, generator=generator) for w in WIDTHS]
        runs = nets + nets
        lrs = [0.02] * 3 + [0.2] * 3
        only = [False] * 3 + [True] * 3
        start = time.perf_counter()
        train_relu_nets(runs, data, lrs=lrs, output_only=only, n_steps=n_steps)
        batched = time.perf_counter() - start
        print(f"  {depth} hidden layer(s), batched (6 runs at once): {batched:6.1f} s in total, "
              f"{batched / n_steps * 1e6:6.1f} µs per step of all six runs")
        if ref_steps:
            per_step = []
            for net, lr, flag in zip(runs, lrs, only, strict=True):
                start = time.perf_counter()
                train_one_net(copy.deepcopy(net), data, lr=lr, output_only=flag, n_steps=ref_steps)
                per_step.append((time.perf_counter() - start) / ref_steps)
            total = sum(per_step) * n_steps
            all_layers = sum(per_step[:3]) * n_steps
            print(f"  {depth} hidden layer(s), one model at a time: {sum(per_step) * 1e6:6.1f} µs "
                  f"per step of all six runs (measured on {ref_steps:,} steps each), "
                  f"{total:6.1f} s extrapolated ({all_layers / 60:.1f} min for the three "
                  f"all-layers runs; source: {SOURCE_MINUTES[depth]} GPU min); "
                  f"speed-up {total / batched:.0f}x")


def benchmark_t6_notebook(n_steps: int, n_inits: int = 5) -> None:
    data = make_relu_data()
    generator = torch.Generator().manual_seed(2021)
    nets = [make_relu_net(w, 1, generator=generator) for _ in range(n_inits) for w in WIDTHS]
    start = time.perf_counter()
    train_relu_nets(nets * 2, data, lrs=[0.02] * len(nets) + [0.2] * len(nets),
                    output_only=[False] * len(nets) + [True] * len(nets), n_steps=n_steps, seed=2021)
    seconds = time.perf_counter() - start
    print(f"T6 notebook: {2 * len(nets)} runs ({n_inits} initialisations of widths {WIDTHS}, two ways of "
          f"training) of {n_steps:,} steps at once: {seconds:.1f} s")


def benchmark_t5() -> None:
    from dlnn_helpers.mlp_data import make_housing_data
    from dlnn_helpers.mlp_regression import double_descent, train_regression_mlp

    data = make_housing_data(random_state=0)
    start = time.perf_counter()
    train_regression_mlp(data, n_epochs=500, seed=0)
    print(f"T5: regression MLP, 500 epochs: {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    double_descent(random_state=0)
    print(f"T5: double-descent sweep: {time.perf_counter() - start:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150_000)
    parser.add_argument("--ref-steps", type=int, default=3_000)
    parser.add_argument("--notebook-steps", type=int, default=50_000)
    parser.add_argument("--skip-t5", action="store_true")
    args = parser.parse_args()
    benchmark_t6(args.steps, args.ref_steps)
    benchmark_t6_notebook(args.notebook_steps)
    if not args.skip_t5:
        benchmark_t5()


if __name__ == "__main__":
    main()
