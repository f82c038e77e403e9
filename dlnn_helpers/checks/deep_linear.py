"""Checks of the graded exercises of tutorial 1 (deep linear networks).

Each ``check_*`` function returns a one-line summary when the answer is right and raises
:class:`~dlnn_helpers.checks._core.CheckFailure` with a specific message otherwise.  The keyword
arguments (seed, shapes, scale) let the hidden nbgrader tests run the same check on other data.

No reference answer lives here.  A check builds its inputs from its settings (the builders below,
which the instructor's ``dlnn_reference.deep_linear`` imports to compute the same values), calls the
student's code inside a :func:`~._shortcuts.student_code` window, and only then asks
:func:`~._expected.expected` once for that setting: the correct values and the output of each known
mistake.  ``check_initializer`` needs no expected values (it judges the statistics of the weights),
and ``check_net_svd`` judges U and V by their defining properties (U diag(S) Vᵀ = W_tot, orthonormal
columns).  Refused routines: ``linear_regression`` may not call a least-squares solver
(``np.linalg.lstsq``, ``torch.linalg.lstsq``) or the pseudo-inverse (``np.linalg.pinv``,
``torch.linalg.pinv``), which solves the same problem: the exercise is to solve the normal
equations.  ``ex_net_svd`` may not multiply the weights with ``torch.linalg.multi_dot`` (or
``torch.chain_matmul``, ``np.linalg.multi_dot``), and ``ex_net_rsm`` may not call ``torch.inner``:
each does the exercise in one call, and the notebook uses them as the stand-ins.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from ..deep_linear_nets import LNNet
from ._contract import expect_array, expect_tensor
from ._core import (
    CheckFailure,
    call_student,
    captured_warnings,
    close,
    max_rel_error,
    unpack,
    warning_note,
)
from ._diagnosis import Mistake, find_mistake, judge
from ._expected import expected
from ._registry import registered
from ._shortcuts import student_code

_INITIALIZER_REFUSED = ()
_NET_SVD_REFUSED = ("multi_dot",)
"""The product of the weights is the exercise (and torch.linalg.multi_dot the notebook's stand-in)."""
_NET_RSM_REFUSED = ("torch.inner",)
"""The dot products are the exercise (and torch.inner the notebook's stand-in)."""
_LINEAR_REGRESSION_REFUSED = ("lstsq",)

_SENTINEL = 7.0  # every weight is set to this before the student's initialiser runs


def _weights(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {
        name: np.array(p.detach().cpu().numpy(), dtype=np.float64, copy=True)
        for name, p in model.named_parameters()
    }


# ----------------------------------------------------------------------------------------------
# ex_initializer_
# ----------------------------------------------------------------------------------------------


def _sigma_mistakes(gamma: float, n_in: int, n_out: int) -> dict[str, float]:
    """Standard deviations that common wrong formulas give, with what each mistake is."""
    total = n_in + n_out
    return {
        "you divided by sqrt(n_in) only (fan-in); use sqrt(n_in + n_out)": gamma / math.sqrt(n_in),
        "you divided by sqrt(n_out) only (fan-out); use sqrt(n_in + n_out)": gamma
        / math.sqrt(n_out),
        "you used the product n_in * n_out; the formula has the sum n_in + n_out": gamma
        / math.sqrt(n_in * n_out),
        "you forgot the square root: σ = γ / sqrt(n_in + n_out)": gamma / total,
        "you passed the variance γ² / (n_in + n_out) where the standard deviation is expected": gamma
        ** 2 / total,
        "γ is inside the square root; σ = γ / sqrt(n_in + n_out)": math.sqrt(gamma / total),
        "you multiplied by sqrt(n_in + n_out) instead of dividing": gamma * math.sqrt(total),
        "the scale γ is missing (σ does not depend on gamma)": 1.0 / math.sqrt(total),
    }


@registered("ex_initializer_", refuses=_INITIALIZER_REFUSED)
def check_initializer(
    func: Callable[..., object],
    *,
    seed: int = 2021,
    dims: tuple[int, int, int] = (300, 200, 120),
    gamma: float = 2.5,
    name: str = "ex_initializer_",
) -> str:
    """Check an in-place initialiser: every weight ~ N(0, σ²), σ = γ / sqrt(n_in + n_out).

    The statistics are judged with tolerances derived from the number of weights (six standard
    errors), so a correct answer passes for any seed while each listed mistake fails.

    Parameters
    ----------
    func : callable
        ``func(model, gamma)``, modifying ``model`` in place.
    seed : int
        Seed of torch's generator while ``func`` runs (the caller's generator state is restored).
    dims : (int, int, int)
        ``(in_dim, hid_dim, out_dim)`` of the :class:`LNNet` it is tried on.
    gamma : float
        Initialisation scale passed to ``func``.
    name : str
        Name of the exercise, for messages.

    Returns
    -------
    str
        Summary of what was verified.
    """
    with torch.random.fork_rng(devices=[]), captured_warnings() as caught:
        torch.manual_seed(seed)
        model = LNNet(*dims)
        params_before = dict(model.named_parameters())
        with torch.no_grad():
            for p in params_before.values():
                p.fill_(_SENTINEL)
        with student_code(name, _INITIALIZER_REFUSED) as window:
            returned = call_student(name, func, model, gamma)
    window.verdict()

    params_after = dict(model.named_parameters())
    for layer, p in params_before.items():
        if params_after.get(layer) is not p:
            raise CheckFailure(
                f"{name} replaced the parameter '{layer}' with a new object; fill the existing "
                "weight in place instead (nn.init.normal_(weight, ...) or weight.normal_(...))."
            )
        if p.dtype != torch.float32:
            raise CheckFailure(f"{name} changed the dtype of '{layer}' to {p.dtype}.")

    lines = []
    for layer, weight in _weights(model).items():
        n_out, n_in = weight.shape
        n = weight.size
        if np.all(weight == _SENTINEL):
            extra = (
                " It returned a value, but the model itself must be changed."
                if returned is not None
                else ""
            )
            raise CheckFailure(
                f"{name} did not change the weight '{layer}': it must re-initialise every weight of "
                f"the model in place (loop over model.parameters()).{extra}"
            )
        if not np.all(np.isfinite(weight)):
            raise CheckFailure(f"'{layer}' contains NaN or infinite values after {name}.")
        sigma = gamma * (n_in + n_out) ** -0.5  # the exercise's standard deviation
        std = float(weight.std())
        mean = float(weight.mean())
        rel_tol = 6.0 / math.sqrt(2.0 * n)  # six standard errors of a sample std
        if abs(std / sigma - 1.0) > rel_tol:
            if std == 0.0:
                raise CheckFailure(
                    f"'{layer}' (shape {n_out}x{n_in}) is constant ({mean:.4g}); draw it from a "
                    "normal distribution."
                )
            mistake = find_mistake(
                std, [Mistake(why, wrong) for why, wrong in _sigma_mistakes(gamma, n_in, n_out).items()],
                same=lambda got, wrong, tol=rel_tol: abs(got / wrong - 1.0) <= tol,
            )
            because = f" It looks like {mistake.why}." if mistake else ""
            raise CheckFailure(
                f"'{layer}' (shape {n_out}x{n_in}, so n_in={n_in}, n_out={n_out}) has standard "
                f"deviation {std:.5g} for γ={gamma}, but should have σ = γ / sqrt(n_in + n_out) = "
                f"{sigma:.5g} (ratio {std / sigma:.3g}).{because}"
            )
        if abs(mean) > 6.0 * sigma / math.sqrt(n):
            raise CheckFailure(
                f"'{layer}' has mean {mean:.4g}; the weights should be drawn with mean 0."
            )
        inside = float(np.mean(np.abs(weight - mean) < std))
        if abs(inside - 0.6827) > 6.0 * math.sqrt(0.6827 * 0.3173 / n):
            shape = " (a uniform distribution gives 57.7%)" if abs(inside - 0.577) < 0.03 else ""
            raise CheckFailure(
                f"'{layer}' has the right standard deviation but {inside:.1%} of its values lie "
                f"within one σ of the mean; a normal distribution has 68.3%{shape}. Use "
                "nn.init.normal_."
            )
        lines.append(f"{layer}: std {std:.4g} (σ = {sigma:.4g})")
    return f"{name} is correct: " + "; ".join(lines) + warning_note(caught)


# ----------------------------------------------------------------------------------------------
# ex_net_svd
# ----------------------------------------------------------------------------------------------


def _random_lnnet(dims: tuple[int, int, int], seed: int) -> LNNet:
    """The network ``check_net_svd`` gives the student: weights N(0, 1/n_in) from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        model = LNNet(*dims)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) / math.sqrt(p.shape[1]))
    return model


@registered("ex_net_svd", refuses=_NET_SVD_REFUSED)
def check_net_svd(
    func: Callable[..., object],
    *,
    seed: int = 2021,
    dims: tuple[int, int, int] = (8, 30, 100),
    name: str = "ex_net_svd",
) -> str:
    """Check ``func(model, in_dim) -> (U, S, V)`` with W_tot = U diag(S) Vᵀ.

    The contract (the exercise's docstring and text): three float32 tensors (the dtype of the
    network's weights), ``U`` of shape (out_dim, k), ``S`` of shape (k,), decreasing, and ``V`` of
    shape (in_dim, k), k = min(in_dim, out_dim): the reduced decomposition
    (``full_matrices=False``), V and not Vh.  Within it, any correct decomposition passes: singular
    vectors with flipped signs (paired in U and V), ``torch.svd`` or ``torch.linalg.svd``.  ``S`` is
    compared with the expected singular values; ``U`` and ``V`` are judged by their defining
    properties.  No routine is refused (the exercise is to use ``torch.linalg.svd`` well).

    Parameters
    ----------
    func : callable
        The student's function.
    seed : int
        Seed of the random weights.
    dims : (int, int, int)
        ``(in_dim, hid_dim, out_dim)`` of the network.
    name : str
        Name of the exercise, for messages.

    Returns
    -------
    str
        Summary of what was verified.
    """
    in_dim, _, out_dim = dims
    model = _random_lnnet(dims, seed)
    w1, w2 = (w for w in _weights(model).values())
    w_tot = w2 @ w1
    k = min(in_dim, out_dim)
    order_hint = ("W_tot starts as the identity of size in_dim and each weight multiplies it from "
                  "the left: W_tot = weight @ W_tot.")
    with captured_warnings() as caught:
        with student_code(name, _NET_SVD_REFUSED) as window:
            returned = call_student(
                name, func, model, in_dim,
                hints={"shapes cannot be multiplied": order_hint, "core dimension": order_hint},
            )
    window.verdict()
    for (layer, before), after in zip(
        {"in_hid.weight": w1, "hid_out.weight": w2}.items(), _weights(model).values(), strict=True
    ):
        if not np.array_equal(before, after):
            raise CheckFailure(f"{name} changed the model's weight '{layer}'; it must only read it.")
    u_ret, s_ret, v_ret = unpack(returned, ("U", "S", "V"), name)
    reason = "the dtype of the network's weights"
    u = expect_tensor(u_ret, "U", shape=None, dtype=torch.float32, dtype_reason=reason)
    s = expect_tensor(s_ret, "S", shape=None, dtype=torch.float32, dtype_reason=reason)
    v = expect_tensor(v_ret, "V", shape=None, dtype=torch.float32, dtype_reason=reason)
    if s.ndim == 2 and s.shape[0] == s.shape[1] > 1:
        raise CheckFailure(
            f"S has shape {s.shape}: return the singular values as a 1-D tensor of shape ({k},), "
            "as torch.linalg.svd does, not as a diagonal matrix."
        )

    exp = expected("check_net_svd", seed=seed, dims=dims)
    ref_s = exp["correct"]
    wrong_products = [
        Mistake("the singular values are those of only the last layer's weight (multiply all "
                "layers into W_tot)", exp["last layer only"]),
        Mistake("the singular values are those of only the first layer's weight (multiply all "
                "layers into W_tot)", exp["first layer only"]),
        Mistake("the singular values are those of W_1 W_2: the product is in the wrong order "
                "(W_tot = W_2 W_1)", exp["product in the wrong order"]),  # None unless square
    ]
    if s.shape != (k,):
        mistake = find_mistake(s, wrong_products)
        if mistake is not None:
            raise CheckFailure(f"S is wrong: {mistake.why}.")
        expect_tensor(s_ret, "S", shape=(k,), meaning="(k,) with k = min(in_dim, out_dim)")
    judge("S", s, ref_s, [
        Mistake("it holds the right singular values but not in decreasing order",
                exp["increasing order"]),
        Mistake("it holds the squares of the singular values (eigenvalues of W_totᵀ W_tot); "
                "decompose W_tot itself with torch.linalg.svd", exp["squared"]),
        *(Mistake(m.why, None if m.answer is None else m.answer[:k]) for m in wrong_products),
    ], advice="S holds the singular values of W_tot = W_2 W_1, largest first.")

    if u.shape == (in_dim, k) and v.shape == (out_dim, k) and in_dim != out_dim:
        raise CheckFailure(
            f"U has shape {u.shape} and V {v.shape}: you decomposed W_totᵀ. W_tot = W_2 W_1 maps "
            f"the input to the output, so it has shape ({out_dim}, {in_dim})."
        )
    full = ("that is the full U of full_matrices=True; the exercise asks for the reduced "
            "decomposition (full_matrices=False)")
    expect_tensor(u_ret, "U", shape=(out_dim, k), meaning="(out_dim, k) with k = min(in_dim, out_dim)",
                  shape_hints={(out_dim, out_dim): full} if out_dim != k else None)
    v_hints = {}
    if k != in_dim:
        v_hints[(k, in_dim)] = ("this is Vh = Vᵀ, the third output of torch.linalg.svd; the exercise "
                                "asks for V (columns are right singular vectors): return Vh.T "
                                "(or Vh.mT)")
        v_hints[(in_dim, in_dim)] = ("that is the full V of full_matrices=True; the exercise asks "
                                     "for the reduced decomposition (full_matrices=False)")
    expect_tensor(v_ret, "V", shape=(in_dim, k), meaning="(in_dim, k) with k = min(in_dim, out_dim)",
                  shape_hints=v_hints)
    reconstruction = (u * s) @ v.T
    if not close(reconstruction, w_tot):
        if close((u * s) @ v, w_tot):
            raise CheckFailure(
                "U diag(S) V does not give W_tot but U diag(S) Vᵀ should: you returned Vh (the "
                "third output of torch.linalg.svd) where V is asked for. Return Vh.T (or Vh.mT)."
            )
        raise CheckFailure(
            "U diag(S) Vᵀ does not reconstruct W_tot (largest error "
            f"{max_rel_error(reconstruction, w_tot):.3g}). If you flipped the sign of a singular "
            "vector, flip its partner in the other matrix too."
        )
    for label, matrix in (("U", u), ("V", v)):
        gram = matrix.T @ matrix
        if not close(gram, np.eye(k), rtol=1e-4):
            raise CheckFailure(f"The columns of {label} are not orthonormal ({label}ᵀ{label} ≠ I).")
    return (
        f"{name} is correct: W_tot of shape ({out_dim}, {in_dim}) = U diag(S) Vᵀ with "
        f"U {out_dim}x{k}, S ({k},), V {in_dim}x{k}." + warning_note(caught)
    )


# ----------------------------------------------------------------------------------------------
# ex_net_rsm
# ----------------------------------------------------------------------------------------------


def _activity(seed: int, shape: tuple[int, int]) -> torch.Tensor:
    """The hidden activity ``check_net_rsm`` gives the student: float32, N(0.5, 1) from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(tuple(shape), generator=generator) + 0.5


@registered("ex_net_rsm", refuses=_NET_RSM_REFUSED)
def check_net_rsm(
    func: Callable[..., object],
    *,
    seed: int = 2021,
    shape: tuple[int, int] = (7, 17),
    name: str = "ex_net_rsm",
) -> str:
    """Check ``func(h) -> H Hᵀ``, the representational similarity matrix of hidden activity.

    The contract: ``h`` is a float32 tensor (n_items, n_hidden); the RSM is a float32 tensor of
    shape (n_items, n_items).  No routine is refused.

    Parameters
    ----------
    func : callable
        The student's function.
    seed : int
        Seed of the random activity.
    shape : (int, int)
        ``(n_items, n_hidden)`` of the activity ``h`` passed to ``func``.
    name : str
        Name of the exercise, for messages.

    Returns
    -------
    str
        Summary of what was verified.
    """
    n_items, n_hidden = shape
    h = _activity(seed, shape)
    given = h.clone()
    with captured_warnings() as caught:
        with student_code(name, _NET_RSM_REFUSED) as window:
            returned = call_student(name, func, given)
    window.verdict()
    if not torch.equal(given, h):
        raise CheckFailure(f"{name} modified its input h in place; compute a new tensor instead.")
    rsm = expect_tensor(
        returned, "The RSM", shape=(n_items, n_items), meaning="(n_items, n_items)",
        shape_hints={(n_hidden, n_hidden): "that is hidden × hidden, Hᵀ H; the RSM compares items, "
                     "so it is H Hᵀ"} if n_hidden != n_items else None,
    )
    exp = expected("check_net_rsm", seed=seed, shape=shape)
    judge("The RSM", rsm, exp["correct"], [
        Mistake("you computed Hᵀ H; the RSM compares items: H Hᵀ", exp["Hᵀ H"]),
        Mistake("you normalised the rows (cosine similarity); the RSM here is the plain dot "
                "product H Hᵀ", exp["cosine similarity"]),
        Mistake("you divided by the number of hidden units; the RSM here is the plain dot product "
                "H Hᵀ", exp["divided by n_hidden"]),
        Mistake("you centred the activity (a covariance or correlation); use the raw H Hᵀ",
                exp["centred"]),
        Mistake("you multiplied element-wise (H * H); use a matrix product, H @ H.T",
                exp["element-wise"]),  # None when n_hidden < n_items
        Mistake("you squared the entries of H Hᵀ", exp["squared"]),
        Mistake("it is not symmetric; H Hᵀ always is", lambda: rsm if not close(
            rsm, rsm.T, rtol=1e-5) else None),
    ], rtol=1e-5, advice="The RSM is H Hᵀ: entry (i, j) is the dot product of the activity of "
       "items i and j.")
    return (
        f"{name} is correct: RSM = H Hᵀ of shape ({n_items}, {n_items}), symmetric."
        + warning_note(caught)
    )


# ----------------------------------------------------------------------------------------------
# linear_regression
# ----------------------------------------------------------------------------------------------


def _regression_problem(seed: int, shapes: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The ``(X, Y)`` that ``check_linear_regression`` gives the student: Y = W_true X + noise."""
    m, n, d = shapes
    rng = np.random.default_rng(seed)
    w_true = rng.integers(-5, 10, size=(n, m)).astype(float)
    x = rng.random((m, d))
    y = w_true @ x + rng.normal(scale=0.01, size=(n, d))
    return x, y


@registered("linear_regression", refuses=_LINEAR_REGRESSION_REFUSED)
def check_linear_regression(
    func: Callable[..., object],
    *,
    seed: int = 2021,
    shapes: tuple[int, int, int] = (3, 4, 37),
    name: str = "linear_regression",
) -> str:
    """Check ``func(X, Y) -> W``, the least-squares solution W = Y Xᵀ (X Xᵀ)⁻¹.

    The contract (the exercise's docstring): X and Y are float64 NumPy arrays, W is a float64
    ``np.ndarray`` of shape (N, M).  Any exact way of solving the normal equations is accepted
    (``inv``, ``solve``); a least-squares solver (``np.linalg.lstsq``, ``torch.linalg.lstsq``) and
    the pseudo-inverse (``np.linalg.pinv``, ``torch.linalg.pinv``) are refused, with the same
    message: either does the whole exercise.

    Parameters
    ----------
    func : callable
        The student's function.
    seed : int
        Seed of the random problem.
    shapes : (int, int, int)
        ``(M, N, D)``: X is M×D, Y is N×D, W is N×M.
    name : str
        Name of the exercise, for messages.

    Returns
    -------
    str
        Summary of what was verified.
    """
    m, n, _ = shapes
    x, y = _regression_problem(seed, shapes)
    x_given, y_given = x.copy(), y.copy()
    with captured_warnings() as caught:
        with student_code(name, _LINEAR_REGRESSION_REFUSED) as window:
            returned = call_student(
                name,
                func,
                x_given,
                y_given,
                hint="X is (M, D) and Y is (N, D): X Xᵀ is (M, M) and W = Y Xᵀ (X Xᵀ)⁻¹ is (N, M).",
            )
    window.verdict()
    if not (np.array_equal(x_given, x) and np.array_equal(y_given, y)):
        raise CheckFailure(f"{name} modified X or Y in place; leave its inputs unchanged.")
    w = expect_array(
        returned, "W", shape=(n, m), dtype=np.float64, meaning="(N, M)",
        shape_hints={(m, n): "you returned Wᵀ. W = Y Xᵀ (X Xᵀ)⁻¹ maps an input column x to the "
                     "output W x"} if m != n else None,
    )
    exp = expected("check_linear_regression", seed=seed, shapes=shapes)
    judge("W", w, exp["correct"], [
        Mistake("the inverse (X Xᵀ)⁻¹ is missing: W = Y Xᵀ (X Xᵀ)⁻¹", exp["no inverse"]),
        Mistake("you returned Wᵀ: W = Y Xᵀ (X Xᵀ)⁻¹ has shape (N, M)", exp["transposed"]),
        Mistake("(X Xᵀ)⁻¹ multiplies Y Xᵀ from the right: W = Y Xᵀ (X Xᵀ)⁻¹",
                exp["inverse on the left"]),  # None unless M = N
        Mistake("you rounded W; return the exact least-squares solution", exp["rounded"]),
    ], rtol=1e-6, advice="W is the least-squares solution W = Y Xᵀ (X Xᵀ)⁻¹.")
    return (
        f"{name} is correct: W of shape ({n}, {m}) minimises ‖Y − W X‖² "
        f"(largest error {max_rel_error(w, exp['correct']):.1e})." + warning_note(caught)
    )
