"""Checks of the graded exercises of tutorial 4 (weight initialisation).

Initialisations are random, so they are judged by statistics: the sample standard deviation, the
mean and the fraction of values within one standard deviation (68.3 % for a normal distribution,
57.7 % for a uniform one), each with a tolerance of six standard errors computed from the number of
values.  A correct answer therefore passes for any seed (the chance of a false alarm is below one in
a hundred million per statistic), while the common mistakes, which change a statistic by far more
than six standard errors on the sizes used here, fail with a message naming the mistake.  These are
defining properties: the checks need no expected values (nothing of this tutorial is shipped in
``checks/expected``, and hidden settings are judged the same way everywhere).

Refused shortcuts: ``ex_zero_weights``, ``ex_random_weights``, ``ex_lecun_weights`` and
``ex_he_weights`` exist to draw the weights from the distribution by hand, so they refuse
``torch.nn.init`` (caught where it runs: through ``getattr``, a wrapper or a helper alike).
``Supervise_random_weights`` and ``Supervise_Kaiming_weights`` are about re-initialising a model
*with* ``torch.nn.init`` (``normal_``, ``kaiming_normal_``) and refuse nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from ._contract import expect_tensor
from ._core import CheckFailure, call_student, captured_warnings, warning_note
from ._diagnosis import Mistake, find_mistake
from ._registry import registered
from ._shortcuts import student_code

_INIT_REFUSED = ("torch.nn.init",)
"""The initialisers draw from the distribution themselves: torch.nn.init is what they replace."""
_SUPERVISE_REFUSED = ()
"""Supervise_random_weights and Supervise_Kaiming_weights use torch.nn.init on purpose."""

_SENTINEL = 7.0
_NORMAL_WITHIN_ONE_SD = 0.682689
_UNIFORM_WITHIN_ONE_SD = 1.0 / math.sqrt(3.0)


def _sd_tolerance(n: int) -> float:
    """Six standard errors of a sample standard deviation, relative to the true one."""
    return 6.0 / math.sqrt(2.0 * n)


def _judge_normal(
    values: np.ndarray,
    sigma: float,
    what: str,
    mistakes: list[Mistake],
    advice: str,
) -> str:
    """Raise CheckFailure unless ``values`` look like draws from N(0, sigma²); return a summary."""
    n = values.size
    std = float(values.std())
    mean = float(values.mean())
    tol = _sd_tolerance(n)
    if std == 0.0:
        raise CheckFailure(f"{what} is constant ({mean:.4g}); draw it at random. {advice}")
    if abs(std / sigma - 1.0) > tol:
        mistake = find_mistake(std, mistakes,
                               same=lambda got, wrong: wrong > 0 and abs(got / wrong - 1.0) <= tol)
        because = f" It looks like {mistake.why}." if mistake else ""
        raise CheckFailure(
            f"{what} has standard deviation {std:.4g} but should have {sigma:.4g} "
            f"(ratio {std / sigma:.3g}; a correct answer is within {tol:.1%}).{because} {advice}"
        )
    if abs(mean) > 6.0 * sigma / math.sqrt(n):
        raise CheckFailure(f"{what} has mean {mean:.4g}; the weights should have mean 0. {advice}")
    inside = float(np.mean(np.abs(values - mean) < std))
    slack = 6.0 * math.sqrt(_NORMAL_WITHIN_ONE_SD * (1 - _NORMAL_WITHIN_ONE_SD) / n)
    if abs(inside - _NORMAL_WITHIN_ONE_SD) > slack:
        shape = (" — that is a uniform distribution (57.7%)"
                 if abs(inside - _UNIFORM_WITHIN_ONE_SD) < slack else "")
        raise CheckFailure(
            f"{what} has the right standard deviation, but {inside:.1%} of its values lie within one "
            f"standard deviation of the mean{shape}; a normal distribution has 68.3%. {advice}"
        )
    return f"std {std:.4g} (expected {sigma:.4g})"


# ------------------------------------------------------------------------------------------------
# Weight matrices for the activation histograms
# ------------------------------------------------------------------------------------------------

_METHODS = ("zero", "random", "lecun", "he")


def _expected_sigma(method: str, n_in: int, scale: float) -> float:
    return {"zero": 0.0, "random": scale, "lecun": 1.0 / math.sqrt(n_in),
            "he": math.sqrt(2.0 / n_in)}[method]


def _init_mistakes(method: str, n_in: int, n_out: int, scale: float) -> list[Mistake]:
    """The standard deviations that common wrong initialisers give."""
    if method == "random":
        return [
            Mistake("you multiplied by scale twice", scale**2),
            Mistake("the scale is missing: multiply the N(0, 1) draws by scale", 1.0),
            Mistake("you divided by scale instead of multiplying", 1.0 / scale),
            Mistake("you used sqrt(scale) — scale multiplies the standard normal draws",
                    math.sqrt(scale)),
        ]
    formula = "1 / n_in" if method == "lecun" else "2 / n_in"
    mistakes = {
        f"you used n_out (the fan-out); the variance is {formula} with n_in = number of rows":
            _expected_sigma(method, n_out, scale),
        f"you used the variance as the standard deviation: the standard deviation is "
        f"sqrt({formula})": _expected_sigma(method, n_in, scale) ** 2,
        "you used Glorot's (Xavier's) average fan 2 / (n_in + n_out); this exercise asks for the "
        "fan-in only": math.sqrt(2.0 / (n_in + n_out)),
        "you used 1 / (n_in + n_out)": math.sqrt(1.0 / (n_in + n_out)),
        "the draws are not scaled at all (N(0, 1))": 1.0,
    }
    if method == "lecun":
        mistakes["you used He's variance 2 / n_in; LeCun's is 1 / n_in"] = math.sqrt(2.0 / n_in)
    else:
        mistakes["you used LeCun's variance 1 / n_in; He's is 2 / n_in (ReLU halves the variance)"
                 ] = math.sqrt(1.0 / n_in)
    return [Mistake(why, wrong) for why, wrong in mistakes.items()]


@registered("ex_*_weights", refuses=_INIT_REFUSED)
def check_init_weights(
    func: Callable[..., Any],
    method: str,
    *,
    seed: int = 2048,
    shape: tuple[int, int] = (400, 150),
    scale: float = 0.01,
    name: str | None = None,
) -> str:
    """Check a weight initialiser ``func(n_in, n_out)`` (``func(n_in, n_out, scale)`` for random).

    The initialiser must draw the weights itself: ``torch.nn.init`` is refused (the exercise is to
    draw from the distribution by hand).

    Parameters
    ----------
    func : callable
        The student's function; returns a float32 ``torch.Tensor`` of shape (n_in, n_out) (the
        contract stated in the tutorial's text).
    method : {"zero", "random", "lecun", "he"}
        What it should draw: all zeros; N(0, 1) · scale; N(0, 1 / n_in) (LeCun's);
        N(0, 2 / n_in) (He's).
    seed : int
        Seed of torch's (and NumPy's legacy) global generator while ``func`` runs; the caller's
        generator states are restored.
    shape : (int, int)
        ``(n_in, n_out)`` to ask for (different sizes, so that fan-in and fan-out mistakes show).
    scale : float
        Scale passed to a "random" initialiser.
    name : str, optional
        Name of the exercise, for messages.

    Returns
    -------
    str
        Summary of what was verified.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}")
    name = name or f"ex_{method}_weights"
    n_in, n_out = shape
    args = (n_in, n_out, scale) if method == "random" else (n_in, n_out)
    np_state = np.random.get_state()  # noqa: NPY002 (students may draw with NumPy)
    try:
        with student_code(name, _INIT_REFUSED) as window, torch.random.fork_rng(devices=[]), \
                captured_warnings() as caught:
            torch.manual_seed(seed)
            np.random.seed(seed)  # noqa: NPY002
            first = call_student(name, func, *args)
            second = call_student(name, func, *args) if method != "zero" else None
    finally:
        np.random.set_state(np_state)  # noqa: NPY002
    window.verdict()
    contract = {
        "shape": (n_in, n_out), "dtype": torch.float32, "meaning": "(n_in, n_out)",
        "dtype_reason": "torch's default, what torch.randn and torch.zeros give",
        "shape_hints": {(n_out, n_in): "that is (n_out, n_in), nn.Linear's layout; here a layer "
                        "computes x @ W, so W has shape (n_in, n_out)"} if n_in != n_out else None,
    }
    weights = expect_tensor(first, f"The result of {name}({', '.join(map(str, args))})", **contract)
    if method == "zero":
        if not np.all(weights == 0.0):
            raise CheckFailure(
                f"{name} should return only zeros; {int(np.count_nonzero(weights))} of "
                f"{weights.size} entries are not 0 (largest magnitude {np.abs(weights).max():.3g})."
                + (" torch.empty does not clear memory: use torch.zeros." if np.unique(weights).size
                   > 2 else "")
            )
        return f"{name} is correct: zeros of shape {(n_in, n_out)}." + warning_note(caught)
    again = expect_tensor(second, f"The result of {name}({', '.join(map(str, args))})", **contract)
    if again.shape == weights.shape and np.array_equal(again, weights):
        raise CheckFailure(
            f"{name} returned exactly the same weights on two calls: do not seed a generator inside "
            "the function, or every layer of a network gets the same matrix."
        )
    if n_in > 1 and np.all(weights == weights[:1]):
        raise CheckFailure(
            f"All rows of the result of {name} are equal: draw a full (n_in, n_out) matrix, not one "
            "row that is broadcast."
        )
    if n_out > 1 and np.all(weights == weights[:, :1]):
        raise CheckFailure(
            f"All columns of the result of {name} are equal: draw a full (n_in, n_out) matrix, not "
            "one column that is broadcast."
        )
    sigma = _expected_sigma(method, n_in, scale)
    advice = {
        "random": "Use torch.randn(n_in, n_out) * scale.",
        "lecun": "Draw from N(0, 1 / n_in): torch.randn(n_in, n_out) / math.sqrt(n_in).",
        "he": "Draw from N(0, 2 / n_in): torch.randn(n_in, n_out) * math.sqrt(2 / n_in).",
    }[method]
    summary = _judge_normal(weights, sigma, f"The result of {name}",
                            _init_mistakes(method, n_in, n_out, scale), advice)
    return (f"{name} is correct: shape {(n_in, n_out)}, mean ≈ 0, {summary}, normally distributed."
            + warning_note(caught))


# ------------------------------------------------------------------------------------------------
# Supervise_random_weights and Supervise_Kaiming_weights
# ------------------------------------------------------------------------------------------------


def _check_net(sizes: tuple[int, int, int]) -> nn.Sequential:
    """The ReLU network the Supervise classes are tried on, every Linear weight set to a sentinel."""
    input_size, hidden, n_layers = sizes
    widths = [input_size] + [hidden] * (n_layers - 1) + [1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        layers: list[nn.Module] = []
        for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        net = nn.Sequential(*layers[:-1], nn.Sigmoid())
    with torch.no_grad():
        for module in net:
            if type(module) is nn.Linear:
                module.weight.fill_(_SENTINEL)
    return net


@registered("Supervise_*_weights", refuses=_SUPERVISE_REFUSED)
def check_supervise_init(
    cls: Any,
    method: str,
    *,
    seed: int = 5,
    sizes: tuple[int, int, int] = (100, 256, 4),
    name: str | None = None,
) -> str:
    """Check a ``Supervise``-like class that re-initialises every Linear weight of its network.

    ``method="random"``: every Linear weight ~ N(0, 0.01²) (standard deviation 0.01).
    ``method="kaiming"``: every Linear weight ~ N(0, 2 / fan_in) (``nn.init.kaiming_normal_``).
    The biases are not checked.  The class must also compute the loss like ``Supervise``:
    ``criterion(net(x).squeeze(), y)``.  No routine is refused (``torch.nn.init`` is the point).

    Parameters
    ----------
    cls : type
        The student's class, called as ``cls(criterion, net)``.
    method : {"random", "kaiming"}
    seed : int
        Seed of torch's generator while the class is instantiated (the caller's state is restored).
    sizes : (input_size, hidden_dims, n_layers)
        The ReLU perceptron it is tried on.
    name : str, optional
        Name of the exercise, for messages.

    Returns
    -------
    str
        Summary of what was verified.
    """
    if method not in ("random", "kaiming"):
        raise ValueError("method must be 'random' or 'kaiming'")
    name = name or ("Supervise_random_weights" if method == "random" else
                    "Supervise_Kaiming_weights")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise CheckFailure(f"{name} should be a class derived from nn.Module.")
    net = _check_net(sizes)
    linears = [m for m in net if type(m) is nn.Linear]
    criterion = nn.BCELoss()
    with student_code(name, _SUPERVISE_REFUSED) as window, torch.random.fork_rng(devices=[]), \
            captured_warnings() as caught:
        torch.manual_seed(seed)
        model = call_student(f"{name}(criterion, net)", cls, criterion, net)
    window.verdict()
    pooled = []
    details = []
    for i, layer in enumerate(linears):
        weight = layer.weight.detach().double().numpy().copy()
        fan_out, fan_in = weight.shape
        where = f"The weight of Linear layer {i} ({fan_in} → {fan_out})"
        if np.all(weight == _SENTINEL):
            first = " none of" if all(
                np.all(m.weight.detach().numpy() == _SENTINEL) for m in linears) else ""
            raise CheckFailure(
                f"{where} was not re-initialised ({name} changed{first} the Linear layers of the "
                "network it was given): loop over self.net.modules() and initialise every "
                "nn.Linear's weight in place."
            )
        if method == "random":
            sigma = 0.01
            mistakes = {
                "you used 0.01 as the variance; the standard deviation should be 0.01": 0.1,
                "this is Kaiming's initialisation; the exercise asks for N(0, 0.01²)":
                    math.sqrt(2.0 / fan_in),
                "this is PyTorch's default initialisation: the weights were not changed":
                    1.0 / math.sqrt(3.0 * fan_in),
                "this is Glorot's (Xavier's) initialisation; the exercise asks for N(0, 0.01²)":
                    math.sqrt(2.0 / (fan_in + fan_out)),
                "the standard deviation is 1 (nn.init.normal_ without std)": 1.0,
            }
            advice = "Every Linear weight must be drawn from N(0, 0.01²): mean 0, standard deviation 0.01."
        else:
            sigma = math.sqrt(2.0 / fan_in)
            mistakes = {
                "you used mode='fan_out'; the default fan_in mode divides by in_features":
                    math.sqrt(2.0 / fan_out),
                "this is Glorot's (Xavier's) initialisation; the exercise asks for Kaiming's":
                    math.sqrt(2.0 / (fan_in + fan_out)),
                "this is the linear gain (nonlinearity='linear'), LeCun's N(0, 1 / fan_in); keep "
                "the default ReLU gain": math.sqrt(1.0 / fan_in),
                "this is N(0, 0.01²) (the random initialisation), not Kaiming's": 0.01,
                "this is PyTorch's default initialisation: the weights were not changed":
                    1.0 / math.sqrt(3.0 * fan_in),
            }
            advice = ("Every Linear weight must be drawn as Kaiming's normal initialisation does "
                      "(fan_in, ReLU gain).")
        tol = _sd_tolerance(weight.size)
        std = float(weight.std())
        if abs(std / sigma - 1.0) > tol or abs(float(weight.mean())) > 6 * sigma / math.sqrt(
                weight.size):
            _judge_normal(weight.reshape(-1), sigma, where,
                          [Mistake(why, wrong) for why, wrong in mistakes.items()], advice)
        pooled.append(weight.reshape(-1) / sigma)
        details.append(f"{std:.3g}")
    _judge_normal(np.concatenate(pooled), 1.0, f"The weights of {name} (all layers, standardised)",
                  [], "Draw from a normal distribution: " + advice)

    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(64, sizes[0], generator=generator)
    y = (torch.rand(64, generator=generator) > 0.5).float()
    with torch.no_grad():
        expected = float(criterion(net(x).squeeze(-1), y))
    with student_code(name, _SUPERVISE_REFUSED) as window, captured_warnings() as more:
        returned = call_student(f"{name}.forward", model, x, y)
    window.verdict()
    loss = expect_tensor(returned, f"The loss returned by {name}(x, y)", shape=(),
                         meaning="a scalar loss, as criterion returns it")
    if abs(float(loss) - expected) > 1e-5 * max(1.0, abs(expected)):
        raise CheckFailure(
            f"{name}(x, y) returned {float(loss):.6g}, but criterion(net(x).squeeze(), y) is "
            f"{expected:.6g}: forward should compute the loss exactly like Supervise."
        )
    return (f"{name} is correct: every Linear weight re-drawn with std "
            f"{'0.01' if method == 'random' else 'sqrt(2 / fan_in)'} (measured "
            f"{', '.join(details)}), and forward returns the loss." + warning_note(caught + more))
