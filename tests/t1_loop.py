"""Tutorial 1's training loop exactly as the notebook writes it out, for the tests.

The loop lives in the solution notebook (cell :data:`TRAIN_CELL`), not in the student package: the
tests run that cell's code, with the instructor's reference answers as the functions it records
with, so that they exercise what the students see.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import nbformat
import numpy as np
import torch
from torch import nn

import dlnn_helpers as dlnn
import dlnn_reference.deep_linear as reference
from courselayout import solution_path

T1 = "T1_DeepLinearNetworks"
TRAIN_CELL = "b7d41c2e"
"""The id of the cell of tutorial 1 that defines ``train``."""


@functools.cache
def notebook_train() -> Callable[..., dlnn.TrainingRecord]:
    """The notebook's ``train(model, inputs, targets, n_epochs, lr, svd=None, rsm=None, illusory_i=0)``."""
    nb = nbformat.read(solution_path(T1), as_version=4)
    (source,) = [cell.source for cell in nb.cells if cell.get("id") == TRAIN_CELL]
    namespace = {"dlnn": dlnn, "np": np, "torch": torch, "nn": nn}
    exec(source, namespace)  # noqa: S102 - the course's own notebook code
    return namespace["train"]


def recording_train() -> Callable[..., dlnn.TrainingRecord]:
    """The notebook's loop recording singular values and RSMs with the reference answers."""
    return functools.partial(notebook_train(), svd=reference.net_svd, rsm=reference.net_rsm)


def deep_run(inputs: torch.Tensor, targets: torch.Tensor, **settings) -> dlnn.TrainingRecord:
    """``dlnn.train_deep_linear`` with the notebook's loop and the reference initialiser."""
    return dlnn.train_deep_linear(inputs, targets, train=recording_train(),
                                  initializer=reference.initializer_, **settings)
