"""Reference answers of tutorial 3 (training deep networks) and the expected values of its checks.

The architectures the tutorial asks students to write (``ex_mlp``, ``ex_batchnorm_mlp``,
``ResidualSequence``, ``ex_residual_net``), the expected *structures* their checks compare with
(:func:`dlnn_helpers.checks.deep_training.describe` of the reference network), and
:func:`write_precomputed_runs`, which records the training runs of the solution notebooks of
tutorials 3 and 4 as the data that the student notebooks replay until the student's own exercise
works (``dlnn_helpers/data/precomputed_runs.json``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from courselayout import AUTOGRADE_ENV_VAR
from dlnn_helpers.checks.deep_training import (
    describe,
    rule_grids,
)
from dlnn_helpers.deep_training import PRECOMPUTED_RUNS, RECORD_ENV_VAR

from . import answers, expects
from .deep_training_rules import tiny_rule

# ------------------------------------------------------------------------------------------------
# Reference answers
# ------------------------------------------------------------------------------------------------


@answers("check_mlp")
def mlp(
    input_size: int,
    hidden_dims: int,
    n_layers: int = 3,
    activation: type[nn.Module] = nn.ReLU,
) -> nn.Sequential:
    """(Linear → activation) × (n_layers − 1), then Linear(hidden, 1) → Sigmoid (``ex_mlp``)."""
    layers: list[nn.Module] = []
    width = input_size
    for _ in range(n_layers - 1):
        layers += [nn.Linear(width, hidden_dims), activation()]
        width = hidden_dims
    layers += [nn.Linear(width, 1), nn.Sigmoid()]
    return nn.Sequential(*layers)


@answers("check_batchnorm_mlp")
def batchnorm_mlp(input_size: int, hidden_dims: int, n_layers: int = 6) -> nn.Sequential:
    """The ReLU perceptron with BatchNorm after the first and last hidden ReLU
    (``ex_batchnorm_mlp``)."""
    if n_layers < 3:
        raise ValueError("batchnorm_mlp needs at least 3 Linear layers")
    layers: list[nn.Module] = [nn.Linear(input_size, hidden_dims), nn.ReLU(),
                               nn.BatchNorm1d(hidden_dims)]
    for _ in range(n_layers - 3):
        layers += [nn.Linear(hidden_dims, hidden_dims), nn.ReLU()]
    layers += [nn.Linear(hidden_dims, hidden_dims), nn.ReLU(), nn.BatchNorm1d(hidden_dims),
               nn.Linear(hidden_dims, 1), nn.Sigmoid()]
    return nn.Sequential(*layers)


@answers("check_residual_sequence")
class ResidualSequence(nn.Sequential):
    """Layers applied in order, with a skip connection around them: y = f(x) + x."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``f(x) + x`` for ``x`` of shape (batch, width)."""
        return super().forward(x) + x


@answers("check_residual_net")
def residual_net(
    input_size: int,
    hidden_dims: int,
    fan_out_dims: int,
    n_blocks: int,
    batchnorm: bool = False,
) -> nn.Sequential:
    """The residual network of ``ex_residual_net`` (blocks are :class:`ResidualSequence`)."""
    layers: list[nn.Module] = [nn.Linear(input_size, hidden_dims)]
    for _ in range(n_blocks):
        first = nn.BatchNorm1d(hidden_dims) if batchnorm else nn.ReLU()
        layers.append(ResidualSequence(first, nn.Linear(hidden_dims, fan_out_dims), nn.ReLU(),
                                       nn.Linear(fan_out_dims, hidden_dims)))
    if batchnorm:
        layers.append(nn.BatchNorm1d(hidden_dims))
    layers += [nn.Linear(hidden_dims, 1), nn.Sigmoid()]
    return nn.Sequential(*layers)


# ------------------------------------------------------------------------------------------------
# Expected values of the checks: the structure of the reference network
# ------------------------------------------------------------------------------------------------


def _structure(build, *args, **kwargs) -> tuple:
    with torch.random.fork_rng(devices=[]):
        return describe(build(*args, **kwargs))


@expects("check_mlp")
def mlp_expected(input_size: int, hidden_dims: int, n_layers: int, activation: str) -> dict:
    """The structure of ``mlp(input_size, hidden_dims, n_layers, nn.<activation>)``."""
    return {"correct": _structure(mlp, input_size, hidden_dims, n_layers, getattr(nn, activation))}


@expects("check_batchnorm_mlp")
def batchnorm_mlp_expected(input_size: int, hidden_dims: int, n_layers: int) -> dict:
    """The structure of ``batchnorm_mlp(input_size, hidden_dims, n_layers)``."""
    return {"correct": _structure(batchnorm_mlp, input_size, hidden_dims, n_layers)}


@expects("check_residual_net")
def residual_net_expected(input_size: int, hidden_dims: int, fan_out_dims: int, n_blocks: int,
                          batchnorm: bool) -> dict:
    """The structure of ``residual_net(...)`` (blocks named ``ResidualSequence``)."""
    return {"correct": _structure(residual_net, input_size, hidden_dims, fan_out_dims, n_blocks,
                                  batchnorm)}


@answers("check_tiny_rule")
def tiny_rule_answer(grids: torch.Tensor) -> torch.Tensor:
    """The reference of ``ex_tiny_rule``: float32 grids (n, 6, 6) of 0/1 -> float32 labels (n,)."""
    centre = grids[:, 2:4, 2:4].sum(dim=(1, 2))
    corners = grids[:, 0, 0] * grids[:, 0, 5] * grids[:, 5, 5]
    return torch.remainder(centre + corners, 2.0)


@expects("check_tiny_rule")
def tiny_rule_expected(seed: int, n_grids: int) -> dict:
    """The tiny task's labels of the check's random grids (the rule of the data generator)."""
    grids = rule_grids(seed, n_grids).numpy().astype(np.int64)
    return {"correct": tiny_rule(grids).astype(np.float64).tolist()}


# ------------------------------------------------------------------------------------------------
# The precomputed training runs that the student notebooks replay
# ------------------------------------------------------------------------------------------------

RUN_TUTORIALS = ("T3_TrainingDeepNetworks", "T4_WeightInitialisation")
"""The tutorials whose solution notebooks' runs are recorded."""


def record_runs(tutorials: tuple[str, ...] = RUN_TUTORIALS) -> dict[str, dict]:
    """Execute the solution notebooks of ``tutorials`` and return every run they made, by label.

    Each ``run_test`` of a notebook (trained with the reference answers, i.e. the solution
    notebook's own exercise cells) writes its record when :data:`RECORD_ENV_VAR` names a file.
    """
    import nbclient
    import nbformat

    from courselayout import course_layout

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "runs.jsonl"
        saved = {name: os.environ.get(name) for name in (RECORD_ENV_VAR, AUTOGRADE_ENV_VAR)}
        os.environ[RECORD_ENV_VAR] = str(log)
        os.environ.pop(AUTOGRADE_ENV_VAR, None)
        try:
            for tutorial in tutorials:
                path = course_layout().solution_path(tutorial)
                nb = nbformat.read(path, as_version=4)
                nbclient.NotebookClient(nb, timeout=1800, kernel_name="python3",
                                        resources={"metadata": {"path": str(path.parent)}}).execute()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        records = read_run_log(log)
    return records


def read_run_log(log: Path, records: dict[str, dict] | None = None) -> dict[str, dict]:
    """The runs a notebook recorded in ``log`` (one JSON record a line, :data:`RECORD_ENV_VAR`), by
    label, added to ``records``; :class:`ValueError` when two runs have one label."""
    records = {} if records is None else records
    for line in log.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["label"] in records:
            raise ValueError(f"two runs are labelled {record['label']!r}: labels must be unique")
        records[record["label"]] = record
    return records


def format_run_records(records: dict[str, dict]) -> str:
    """The text of ``precomputed_runs.json`` for ``records``: one run a line, sorted by label."""
    lines = [json.dumps(label) + ":" + json.dumps(records[label], sort_keys=True,
                                                   separators=(",", ":"))
             for label in sorted(records)]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def write_precomputed_runs(path: Path = PRECOMPUTED_RUNS) -> Path:
    """Record the runs of tutorials 3 and 4 (a few minutes) and write them to ``path``."""
    text = format_run_records(record_runs())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
