"""dlnn_helpers.optimisation_demos and the generated optimisation_data: the data, the recording loop
and the stand-ins of tutorial 2's demonstrations.

The reference optimisers and the EMA live on the instructor side (``dlnn_reference.optimisation``):
the stand-ins must take the reference's path, and the precomputed values must be the reference's.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch

from dlnn_reference.shipped import RTOL

matplotlib.use("Agg")

from dlnn_helpers import optimisation_data  # noqa: E402
from dlnn_helpers.optimisation_demos import (  # noqa: E402
    descend_with_torch_sgd,
    make_jump_series,
    precomputed_ema,
    precomputed_gradient_mean_rms,
    record_gradients,
)
from dlnn_helpers.optimisation_surface import START, LossFunctionWithPlot  # noqa: E402
from dlnn_reference import optimisation as reference  # noqa: E402
from dlnn_reference.optimisation import ema_history, gradient_descent, gradient_mean_rms  # noqa: E402

pytestmark = pytest.mark.usefixtures("no_warnings_and_close")  # tests/helpers/conftest.py


def test_jump_series_is_reproducible_and_leaves_the_global_generator_alone():
    torch.manual_seed(5)
    expected_next = torch.rand(2)
    torch.manual_seed(5)
    first = make_jump_series(random_state=11)
    assert torch.equal(torch.rand(2), expected_next)
    assert torch.equal(first, make_jump_series(random_state=11))
    assert not torch.equal(first, make_jump_series(random_state=12))
    assert first.shape == (200,)
    assert float(first[:100].mean()) == pytest.approx(-10.0, abs=0.05)
    assert float(first[100:].mean()) == pytest.approx(0.5, abs=0.3)


# ---------------------------------------------------------------------- stand-ins and their data


@pytest.mark.parametrize("learning_rate", [0.1, torch.tensor([0.02, 0.2]), 0.01])
def test_the_torch_sgd_stand_in_takes_the_same_path_as_gradient_descent(learning_rate):
    ours, theirs = LossFunctionWithPlot(), LossFunctionWithPlot()
    x, y = (torch.tensor(START, requires_grad=True) for _ in range(2))
    gradient_descent(ours, x, learning_rate, 50)
    descend_with_torch_sgd(theirs, y, learning_rate, 50)
    assert torch.equal(x.detach(), y.detach()) and ours.losses == theirs.losses
    assert y.grad is None


_NUMBER = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?")


def _assert_same_source(shipped: str, fresh: str) -> None:
    """The generated module is the reference's: the same text, its numbers equal within the
    shipped values' cross-machine tolerance (BLAS and CPUs change the last printed digits)."""
    assert _NUMBER.split(shipped) == _NUMBER.split(fresh)
    a = np.array([float(x) for x in _NUMBER.findall(shipped)])
    b = np.array([float(x) for x in _NUMBER.findall(fresh)])
    assert a.shape == b.shape and np.allclose(a, b, rtol=RTOL, atol=1e-7)


def test_the_precomputed_values_are_the_references_and_refuse_other_data():
    assert optimisation_data.__doc__ and "generated" in optimisation_data.__doc__
    _assert_same_source(Path(optimisation_data.__file__).read_text(encoding="utf-8"),
                        reference.fallback_source())  # up to date
    series = make_jump_series(random_state=2021)
    ema, ema_star = precomputed_ema(series, 0.9)
    ref_ema, ref_star = ema_history(series, 0.9)
    assert torch.allclose(ema, ref_ema, rtol=1e-6) and torch.allclose(ema_star, ref_star, rtol=1e-6)
    grads, _ = record_gradients(LossFunctionWithPlot(), torch.tensor(START),
                                lambda p: torch.optim.SGD(p, lr=0.1), 50)
    mean, rms = precomputed_gradient_mean_rms(grads)
    ref_mean, ref_rms = gradient_mean_rms(grads)
    assert torch.allclose(mean, ref_mean, rtol=1e-6) and torch.allclose(rms, ref_rms, rtol=1e-6)
    assert mean.dtype == rms.dtype == torch.float32 and mean.shape == (2,)
    with pytest.raises(ValueError, match="Section 3 only"):
        precomputed_gradient_mean_rms(grads[:, [1, 0]])
    with pytest.raises(ValueError, match="random_state=2021"):
        precomputed_ema(make_jump_series(random_state=3), 0.9)
    with pytest.raises(ValueError, match="beta = 0.9"):
        precomputed_ema(series, 0.5)

