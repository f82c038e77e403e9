"""One notebook in two kernels: how the site build spreads tutorial 3's training runs over two cores.

Tutorial 3 trains about twenty networks one after the other, each on one thread (full-batch runs of
up to 2,000 epochs: nearly all of the notebook's time).  The runs are independent, but a notebook
runs its cells in order, so the site build (``coursebuild.build``) executes the solution notebook
in two kernels at once, which share the runs through a folder:

* the *main* kernel, whose outputs become the page, trains the runs before the *split run* itself;
  for the split run and every run after it (and the earlier runs named in ``also``),
  :func:`~dlnn_helpers.deep_training.run_test` waits for the record the other kernel writes, loads
  the trained network and prints and draws the run as if it had trained it (the same lines, the
  other kernel's training time);
* the *helper* kernel passes over the runs before the split run (each returns at once an empty
  result, :data:`SKIPPED`, and leaves its network as it is) and trains the split run and every run
  after it (and those of ``also``), writing each record; its outputs are discarded.

Nothing changes in a notebook that runs alone (the environment variable :data:`ENV_VAR` is unset: a
student's notebook, nbgrader, the tests of single notebooks).  Every run is trained on one thread
from the same seeds in either kernel, so a shared run is the run the main kernel would have made;
:func:`run_key` (a hash of the starting weights, the architecture, the optimiser, the data and the
settings) proves it: a record whose key differs from the main kernel's is refused (a run after the
split that starts from a network trained before it would have been trained from other weights).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

ENV_VAR = "DLNN_SHARED_RUNS"
"""Set by the site build for the two kernels of a shared notebook: JSON with ``folder`` (the shared
folder), ``role`` (``"main"`` or ``"helper"``), ``split`` (the label of the split run) and ``also``
(the labels of runs before the split run that the helper trains too)."""

FAILED = "helper-failed.txt"
"""Written into the shared folder by the build when the helper kernel fails (its reason inside):
the main kernel then stops waiting and fails too."""

WAIT_LIMIT = 3600.0
"""Seconds the main kernel waits for one record before it gives up."""

SKIPPED = "trained by the other kernel"
"""The stop reason of the empty result the helper kernel returns for the runs before the split."""


@dataclass
class Sharing:
    """The shared-runs setting of this kernel (see the module docstring)."""

    folder: Path
    role: str
    split: str
    also: frozenset[str] = frozenset()
    reached: bool = False
    seen: set[str] = field(default_factory=set)

    def action(self, label: str) -> str:
        """What this kernel does with the run labelled ``label``: ``"train"`` (alone, as usual),
        ``"share"`` (train and write the record: helper), ``"load"`` (wait for the record: main) or
        ``"skip"`` (helper, before the split)."""
        if label in self.seen:
            raise ValueError(f"two runs are labelled {label!r}: a notebook whose runs are shared "
                             "between two kernels needs a label for each run")
        self.seen.add(label)
        self.reached = self.reached or label == self.split
        helpers = self.reached or label in self.also
        if self.role == "main":
            return "load" if helpers else "train"
        return "share" if helpers else "skip"

    def path(self, label: str) -> Path:
        """Where the record of the run ``label`` is written."""
        return self.folder / f"{hashlib.sha256(label.encode()).hexdigest()[:16]}.pt"

    def save(self, label: str, key: str, fields: dict, state: dict[str, torch.Tensor]) -> None:
        """Write the record of a run trained here (atomically: the main kernel never reads half)."""
        target = self.path(label)
        partial = target.with_suffix(".partial")
        torch.save({"label": label, "key": key, "fields": fields, "state": state}, partial)
        os.replace(partial, target)

    def load(self, label: str, key: str) -> tuple[dict, dict[str, torch.Tensor]]:
        """Wait for the record of the run ``label``; return its fields and the trained state.

        Raises
        ------
        RuntimeError
            When the helper kernel failed, the wait exceeds :data:`WAIT_LIMIT`, or the record is of
            a run that started from other weights or settings than this kernel's (``key``).
        """
        target, failed = self.path(label), self.folder / FAILED
        start = time.monotonic()
        while not target.exists():
            if failed.exists():
                raise RuntimeError(f"the kernel sharing the runs of this notebook failed before it "
                                   f"trained {label!r}:\n{failed.read_text(encoding='utf-8')}")
            if time.monotonic() - start > WAIT_LIMIT:
                raise RuntimeError(f"no record of the run {label!r} from the kernel sharing the runs "
                                   f"of this notebook after {WAIT_LIMIT:.0f} s")
            time.sleep(0.05)
        record = torch.load(target, weights_only=True)
        if record["key"] != key:
            raise RuntimeError(
                f"the shared run {label!r} was trained from other starting weights or settings than "
                f"this kernel's: it depends on a run before the split run {self.split!r} (move the "
                "split run after the runs it depends on)")
        return record["fields"], record["state"]


_CURRENT: dict[str, Sharing] = {}


def current() -> Sharing | None:
    """The sharing of this kernel, or None when the notebook runs alone (the usual case)."""
    value = os.environ.get(ENV_VAR)
    if not value:
        return None
    if value not in _CURRENT:
        setting = json.loads(value)
        if setting["role"] not in ("main", "helper"):
            raise ValueError(f"{ENV_VAR}: role must be 'main' or 'helper', not {setting['role']!r}")
        _CURRENT[value] = Sharing(Path(setting["folder"]), setting["role"], setting["split"],
                                  frozenset(setting.get("also", ())))
    return _CURRENT[value]


def setting(folder: Path | str, role: str, split: str, also: tuple[str, ...] = ()) -> str:
    """The value of :data:`ENV_VAR` for one of the two kernels (``also``: labels of runs before
    the split run that the helper trains too)."""
    return json.dumps({"folder": str(folder), "role": role, "split": split, "also": list(also)})


def run_key(net: nn.Module, optimizer: torch.optim.Optimizer, tensors: list[torch.Tensor],
            settings: dict) -> str:
    """A hash of everything a training run's outcome depends on.

    Parameters
    ----------
    net : nn.Module
        The network (with its loss) before training: its architecture (``repr``), its parameters
        and buffers.
    optimizer : torch.optim.Optimizer
        Its class and the hyperparameters of each parameter group.
    tensors : list of torch.Tensor
        The data (training and validation inputs and labels).
    settings : dict
        The other arguments of the run (epochs, stopping rules, threads).
    """
    digest = hashlib.sha256()
    digest.update(repr(net).encode())
    for name, value in net.state_dict().items():
        digest.update(f"{name}:{value.dtype}:{tuple(value.shape)}".encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    groups = [{k: v for k, v in group.items() if k != "params"} | {"n_params": len(group["params"])}
              for group in optimizer.param_groups]
    digest.update(f"{type(optimizer).__qualname__}:{groups!r}".encode())
    for tensor in tensors:
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(json.dumps(settings, sort_keys=True).encode())
    digest.update(torch.__version__.encode())
    return digest.hexdigest()


def mark_failed(folder: Path | str, reason: str) -> None:
    """Tell the main kernel that the helper failed (it stops waiting and fails with ``reason``)."""
    Path(folder, FAILED).write_text(reason, encoding="utf-8")

