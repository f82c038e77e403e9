"""Reference answers of tutorial 4 (weight initialisation).

The initialisers (``ex_zero_weights``, ``ex_random_weights``, ``ex_lecun_weights``,
``ex_he_weights``) and the two ``Supervise`` classes that re-initialise a network
(``Supervise_random_weights``, ``Supervise_Kaiming_weights``).  Their checks judge random draws by
statistics (standard deviation, mean, shape of the distribution) and the loss by its definition, so
they need no expected values: this module registers none (no ``@expects``), only the reference
answers of the notebook's self-check calls (``@answers``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dlnn_helpers.deep_training import Supervise

from . import answers


@answers("check_init_weights", method="zero")
def zero_weights(n_in: int, n_out: int) -> torch.Tensor:
    """All-zero weights of shape (n_in, n_out)."""
    return torch.zeros(n_in, n_out)


@answers("check_init_weights", method="random")
def random_weights(n_in: int, n_out: int, scale: float = 0.01) -> torch.Tensor:
    """Weights of shape (n_in, n_out) drawn from N(0, 1) and multiplied by ``scale``."""
    return torch.randn(n_in, n_out) * scale


@answers("check_init_weights", method="lecun")
def lecun_weights(n_in: int, n_out: int) -> torch.Tensor:
    """Weights of shape (n_in, n_out) from N(0, 1 / n_in) (LeCun's initialisation)."""
    return torch.randn(n_in, n_out) / math.sqrt(n_in)


@answers("check_init_weights", method="he")
def he_weights(n_in: int, n_out: int) -> torch.Tensor:
    """Weights of shape (n_in, n_out) from N(0, 2 / n_in)."""
    return torch.randn(n_in, n_out) * math.sqrt(2.0 / n_in)


@answers("check_supervise_init", method="random")
class SuperviseRandomWeights(Supervise):
    """``Supervise`` that re-draws every Linear weight of ``net`` from N(0, 0.01²)."""

    def __init__(self, criterion: nn.Module, net: nn.Module) -> None:
        super().__init__(criterion, net)
        for module in self.net.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=0.01)


@answers("check_supervise_init", method="kaiming")
class SuperviseKaimingWeights(Supervise):
    """``Supervise`` that re-draws every Linear weight of ``net`` with ``kaiming_normal_``."""

    def __init__(self, criterion: nn.Module, net: nn.Module) -> None:
        super().__init__(criterion, net)
        for module in self.net.modules():
            if isinstance(module, nn.Linear):
                nn.init.kaiming_normal_(module.weight)


