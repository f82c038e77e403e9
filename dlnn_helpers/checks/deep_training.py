"""Checks of the graded exercises of tutorial 3 (training deep networks).

* :func:`check_residual_sequence` — a ``ResidualSequence`` class computing y = f(x) + x, judged by
  that defining property on layers and inputs the check makes itself (no expected data);
* :func:`check_tiny_rule` — the rule of the tiny task, recovered from the trained network and
  written as a program: its labels of random grids the check draws itself, against the labels the
  instructor's rule gives them (:func:`~._expected.expected`; the rule is not in this package, and
  the messages show a grid on which the answer is wrong, never the rule);
* :func:`check_mlp`, :func:`check_batchnorm_mlp`, :func:`check_residual_net` — functions that build
  the tutorial's networks, checked by structure (layer types, sizes and order), never by weights.
  The expected structure of each setting (:func:`describe` of the reference network, plain nested
  tuples) comes from :func:`~._expected.expected`: shipped for the self-check settings, computed
  by the instructor's reference for the hidden ones.

The exercises of this tutorial refuse no library routine (they are about which layers go where;
every layer is PyTorch's own); like every check, these refuse reading the course's expected values.

Each returns a one-line summary when the answer is right and raises
:class:`~dlnn_helpers.checks._core.CheckFailure` with a specific message otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from ._contract import expect_tensor
from ._core import CheckFailure, call_student, captured_warnings, warning_note
from ._diagnosis import Mistake, judge
from ._expected import expected
from ._registry import registered
from ._shortcuts import student_code

_MLP_REFUSED = ()
_BATCHNORM_MLP_REFUSED = ()
_RESIDUAL_NET_REFUSED = ()
_RESIDUAL_SEQUENCE_REFUSED = ()
_TINY_RULE_REFUSED = ()

_LEAVES: dict[type, str] = {
    nn.Linear: "Linear",
    nn.BatchNorm1d: "BatchNorm1d",
    nn.ReLU: "ReLU",
    nn.Tanh: "Tanh",
    nn.Sigmoid: "Sigmoid",
    nn.LeakyReLU: "LeakyReLU",
    nn.Dropout: "Dropout",
    nn.Identity: "Identity",
}

def _CHILDREN(module: nn.Module) -> list[nn.Module]:
    """Direct sub-modules in order, repeats included (``children()`` drops repeated objects)."""
    return [m for m in object.__getattribute__(module, "_modules").values() if m is not None]

_PARAMETERS = nn.Module.parameters


# ------------------------------------------------------------------------------------------------
# Structure of a network
# ------------------------------------------------------------------------------------------------


def describe(module: nn.Module) -> tuple:
    """A hashable description of a module: leaf type and sizes, or container name and children.

    Plain nested tuples of strings, ints and bools (what the expected values of the architecture
    checks are): ``("Linear", 36, 128, True)``, ``("BatchNorm1d", 32)``, ``("ReLU",)``,
    ``("Sequential", (child, ...))``, ``("ResidualSequence", (child, ...))``.
    """
    kind = type(module)
    if kind is nn.Linear:
        return ("Linear", module.in_features, module.out_features, module.bias is not None)
    if kind is nn.BatchNorm1d:
        return ("BatchNorm1d", module.num_features)
    if kind in _LEAVES:
        return (_LEAVES[kind],)
    children = tuple(describe(child) for child in _CHILDREN(module))
    name = "Sequential" if kind is nn.Sequential else kind.__name__
    return (name, children)


def _text(desc: tuple) -> str:
    if desc[0] == "Linear":
        bias = "" if desc[3] else ", bias=False"
        return f"Linear({desc[1]}, {desc[2]}{bias})"
    if desc[0] == "BatchNorm1d":
        return f"BatchNorm1d({desc[1]})"
    if len(desc) == 1:
        return f"{desc[0]}()"
    return f"{desc[0]}({', '.join(_text(c) for c in desc[1])})"


def _top_level(value: Any, name: str) -> nn.Module:
    if isinstance(value, (list, tuple)):
        raise CheckFailure(
            f"{name} returned a {type(value).__name__} of layers; wrap them in a network: "
            "return nn.Sequential(*layers)."
        )
    if type(value) is not nn.Sequential:
        raise CheckFailure(
            f"{name} should return an nn.Sequential, got {type(value).__module__}."
            f"{type(value).__qualname__}."
        )
    return value


def _shared_modules(net: nn.Module) -> str:
    seen: dict[int, int] = {}
    stack = [net]
    while stack:
        module = stack.pop()
        for child in _CHILDREN(module):
            if type(child) in (nn.Linear, nn.BatchNorm1d):
                seen[id(child)] = seen.get(id(child), 0) + 1
            stack.append(child)
    if any(count > 1 for count in seen.values()):
        return (
            "the same layer object appears more than once, so its weights are shared between the "
            "places where it is used (a list repeated with `[...] * k`, or one layer created "
            "before a loop); create a new nn.Linear / nn.BatchNorm1d for every position"
        )
    return ""


def _compare(got: tuple, expected: tuple, where: str) -> str:
    """Describe the first difference between two structure descriptions ('' when equal)."""
    if got == expected:
        return ""
    if got[0] != expected[0]:
        return f"{where} should be {_text(expected)}, got {_text(got)}"
    if got[0] in ("Linear", "BatchNorm1d"):
        if got[0] == "Linear" and got[1:3] != expected[1:3]:
            return (f"{where} should map {expected[1]} → {expected[2]} features, got "
                    f"{got[1]} → {got[2]} ({_text(got)} instead of {_text(expected)})")
        return f"{where} should be {_text(expected)}, got {_text(got)}"
    got_children, expected_children = got[1], expected[1]
    for i, (g, e) in enumerate(zip(got_children, expected_children, strict=False)):
        diff = _compare(g, e, f"layer {i} of {where}" if where != "the network" else f"layer {i}")
        if diff:
            return diff
    if len(got_children) < len(expected_children):
        missing = ", ".join(_text(c) for c in expected_children[len(got_children):])
        return (f"{where} has {len(got_children)} layers but should have "
                f"{len(expected_children)}: it ends too early (missing {missing})")
    extra = ", ".join(_text(c) for c in got_children[len(expected_children):])
    return (f"{where} has {len(got_children)} layers but should have {len(expected_children)}: "
            f"the extra layers at the end are {extra}")


def _count(desc: tuple, kind: str) -> int:
    if desc[0] == kind:
        return 1
    if len(desc) == 2 and isinstance(desc[1], tuple) and desc[0] not in ("BatchNorm1d",):
        return sum(_count(c, kind) for c in desc[1])
    return 0


def _check_structure(
    name: str,
    func: Callable[..., Any],
    args: tuple,
    kwargs: dict,
    refused: tuple[str, ...],
    check: str,
    settings: dict[str, Any],
    diagnose: Callable[[tuple, tuple], str] | None = None,
) -> Callable[[], str]:
    """Call the student's code for one setting now; return the comparison, to run once the
    student's code has run for every setting of the check (the grader's kernel has no expected
    values for hidden settings: every student call must come before the first ``expected``)."""
    shown = ", ".join([repr(a) if not isinstance(a, type) else f"nn.{a.__name__}" for a in args]
                      + [f"{k}={v!r}" for k, v in kwargs.items()])
    call = f"{name}({shown})"
    with student_code(name, refused) as window:
        with torch.random.fork_rng(devices=[]), captured_warnings() as caught:
            returned = call_student(name, func, *args, **kwargs)
        net = _top_level(returned, call)
        got_desc = describe(net)
    window.verdict()

    def compare() -> str:
        expected_desc = expected(check, **settings)["correct"]
        diff = _compare(got_desc, expected_desc, "the network")
        if diff:
            hint = diagnose(got_desc, expected_desc) if diagnose else ""
            raise CheckFailure(f"{call}: {diff}." + (f"\nHint: {hint}." if hint else ""))
        shared = _shared_modules(net)
        if shared:
            raise CheckFailure(f"{call}: {shared}.")
        return warning_note(caught)

    return compare


def _diagnose_mlp(got: tuple, expected: tuple) -> str:
    n_got, n_expected = _count(got, "Linear"), _count(expected, "Linear")
    if n_got == n_expected - 1:
        return ("n_layers counts the Linear layers, the output layer included: a 3-layer network "
                "has two hidden layers and one output layer")
    if n_got == n_expected + 1:
        return "n_layers counts every Linear layer, the output layer included (you built one more)"
    children = got[1]
    if children and children[-1][0] != "Sigmoid":
        return "the output must go through a Sigmoid, so that it can be read as a probability"
    return ""


def _diagnose_residual(got: tuple, expected: tuple) -> str:
    blocks_got = [c for c in got[1] if len(c) == 2 and isinstance(c[1], tuple)]
    if any(c[0] != "ResidualSequence" for c in blocks_got):
        return "each block must be a ResidualSequence (the class you wrote above) holding its layers"
    n_got = len(blocks_got)
    n_expected = sum(1 for c in expected[1] if c[0] == "ResidualSequence")
    if n_got != n_expected:
        return f"there should be n_blocks = {n_expected} residual blocks, found {n_got}"
    return ""


# ------------------------------------------------------------------------------------------------
# Architectures
# ------------------------------------------------------------------------------------------------


@registered("ex_mlp", refuses=_MLP_REFUSED)
def check_mlp(
    func: Callable[..., Any],
    *,
    settings: tuple[tuple, ...] = (
        (36, 128, 3, nn.Sigmoid),
        (36, 128, 3, nn.Tanh),
        (36, 64, 4, nn.ReLU),
        (36, 32, 6, nn.ReLU),
    ),
    name: str = "ex_mlp",
) -> str:
    """Check ``func(input_size, hidden_dims, n_layers, activation)`` builds the plain perceptron.

    Expected: (Linear → activation()) × (n_layers − 1), then Linear(hidden_dims, 1) → Sigmoid().

    Parameters
    ----------
    func : callable
        The student's function.
    settings : tuple of (input_size, hidden_dims, n_layers, activation class)
        The calls to try.
    name : str
        Name of the exercise, for messages.

    Returns
    -------
    str
        Summary of what was verified.
    """
    compares = []
    for input_size, hidden, n_layers, activation in settings:
        compares.append(_check_structure(
            name, func, (input_size, hidden, n_layers, activation), {}, _MLP_REFUSED, "check_mlp",
            {"input_size": input_size, "hidden_dims": hidden, "n_layers": n_layers,
             "activation": activation.__name__}, _diagnose_mlp))
    notes = "".join(compare() for compare in compares)
    return (f"{name} is correct: {len(settings)} networks have the right layers, sizes and order."
            + notes)


@registered("ex_batchnorm_mlp", refuses=_BATCHNORM_MLP_REFUSED)
def check_batchnorm_mlp(
    func: Callable[..., Any],
    *,
    settings: tuple[tuple[int, int, int], ...] = ((36, 32, 6), (36, 64, 4), (10, 8, 5)),
    name: str = "ex_batchnorm_mlp",
) -> str:
    """Check ``func(input_size, hidden_dims, n_layers)`` builds the BatchNorm perceptron.

    Expected: Linear → ReLU → BatchNorm1d, (Linear → ReLU) × (n_layers − 3), Linear → ReLU →
    BatchNorm1d, Linear(hidden, 1) → Sigmoid.

    Parameters
    ----------
    func : callable
        The student's function.
    settings : tuple of (input_size, hidden_dims, n_layers)
        The calls to try.
    name : str
        Name of the exercise, for messages.

    Returns
    -------
    str
        Summary of what was verified.
    """

    def diagnose(got: tuple, expected: tuple) -> str:
        n_bn = _count(got, "BatchNorm1d")
        if n_bn != 2:
            return (f"there should be exactly two BatchNorm1d layers (after the first and after the "
                    f"last hidden ReLU), found {n_bn}")
        order = [c[0] for c in got[1]]
        if order[:3] == ["Linear", "BatchNorm1d", "ReLU"]:
            return "here BatchNorm comes after the ReLU: Linear → ReLU → BatchNorm1d"
        return _diagnose_mlp(got, expected)

    compares = []
    for input_size, hidden, n_layers in settings:
        compares.append(_check_structure(
            name, func, (input_size, hidden, n_layers), {}, _BATCHNORM_MLP_REFUSED,
            "check_batchnorm_mlp", {"input_size": input_size, "hidden_dims": hidden,
                                    "n_layers": n_layers}, diagnose))
    notes = "".join(compare() for compare in compares)
    return (f"{name} is correct: {len(settings)} networks have the right layers, sizes and order."
            + notes)


@registered("ex_residual_net", refuses=_RESIDUAL_NET_REFUSED)
def check_residual_net(
    func: Callable[..., Any],
    *,
    settings: tuple[tuple[int, int, int, int, bool], ...] = (
        (36, 16, 32, 4, False),
        (36, 16, 32, 2, True),
        (36, 16, 32, 6, True),
        (20, 8, 24, 1, False),
    ),
    name: str = "ex_residual_net",
) -> str:
    """Check ``func(input_size, hidden_dims, fan_out_dims, n_blocks, batchnorm)``.

    Expected: Linear(input_size, hidden_dims), then ``n_blocks`` blocks ResidualSequence(ReLU →
    Linear(hidden_dims, fan_out_dims) → ReLU → Linear(fan_out_dims, hidden_dims)), then
    Linear(hidden_dims, 1) → Sigmoid; with ``batchnorm`` every block starts with
    BatchNorm1d(hidden_dims) instead of its ReLU and a BatchNorm1d(hidden_dims) precedes the output
    Linear.  Blocks must be instances of a class named ``ResidualSequence`` (the student's own);
    what it computes is checked separately by :func:`check_residual_sequence`.

    Parameters
    ----------
    func : callable
        The student's function.
    settings : tuple of (input_size, hidden_dims, fan_out_dims, n_blocks, batchnorm)
        The calls to try.
    name : str
        Name of the exercise, for messages.

    Returns
    -------
    str
        Summary of what was verified.
    """
    compares = []
    for input_size, hidden, fan_out, n_blocks, batchnorm in settings:
        compares.append(_check_structure(
            name, func, (input_size, hidden, fan_out, n_blocks), {"batchnorm": batchnorm},
            _RESIDUAL_NET_REFUSED, "check_residual_net",
            {"input_size": input_size, "hidden_dims": hidden, "fan_out_dims": fan_out,
             "n_blocks": n_blocks, "batchnorm": bool(batchnorm)}, _diagnose_residual,
        ))
    notes = "".join(compare() for compare in compares)
    return (f"{name} is correct: {len(settings)} residual networks (with and without BatchNorm) "
            "have the right layers, sizes and order." + notes)


# ------------------------------------------------------------------------------------------------
# ResidualSequence
# ------------------------------------------------------------------------------------------------


def _block_layers(width: int, fan_out: int, generator: torch.Generator) -> list[nn.Module]:
    with torch.random.fork_rng(devices=[]):
        layers = [nn.Linear(width, fan_out), nn.Tanh(), nn.Linear(fan_out, width)]
    with torch.no_grad():
        for layer in layers:
            for p in _PARAMETERS(layer):
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5)
    return layers


@registered("ResidualSequence", refuses=_RESIDUAL_SEQUENCE_REFUSED)
def check_residual_sequence(
    cls: Any,
    *,
    seed: int = 7150,
    width: int = 6,
    fan_out: int = 11,
    batch: int = 5,
    name: str = "ResidualSequence",
) -> str:
    """Check a class ``cls(*layers)`` whose forward computes y = f(x) + x, f = the layers in order.

    Parameters
    ----------
    cls : type
        The student's class.
    seed : int
        Seed of the layers' weights and of the input.
    width, fan_out : int
        The block maps width → fan_out → width (Linear, Tanh, Linear).
    batch : int
        Number of input rows.
    name : str
        Name of the exercise, for messages.

    Returns
    -------
    str
        Summary of what was verified.
    """
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise CheckFailure(f"{name} should be a class derived from nn.Module (or nn.Sequential).")
    generator = torch.Generator().manual_seed(seed)
    layers = _block_layers(width, fan_out, generator)
    x = torch.randn(batch, width, generator=generator, requires_grad=True)
    x_leaf = x.detach().clone().requires_grad_(True)
    x_given = x_leaf * 1.0  # not a leaf: an in-place change is possible, and detected below
    with torch.no_grad():
        f_x = layers[2](layers[1](layers[0](x)))
    expected = (f_x + x).detach().double().numpy()
    with student_code(name, _RESIDUAL_SEQUENCE_REFUSED) as window, captured_warnings() as caught:
        block = call_student(f"{name}(...)", cls, *layers)
        if isinstance(block, nn.Module):
            registered = {id(p) for p in _PARAMETERS(block)}
            returned = call_student(f"{name}.forward", block, x_given)
    window.verdict()
    if not isinstance(block, nn.Module):
        raise CheckFailure(f"{name}(...) did not create an nn.Module.")
    own = {id(p) for layer in layers for p in _PARAMETERS(layer)}
    if registered != own:
        raise CheckFailure(
            f"{name}(*layers).parameters() does not list exactly the layers' parameters "
            f"({len(registered)} found, {len(own)} expected): the layers must be registered as "
            "sub-modules (derive from nn.Sequential and call super().__init__(*layers), or "
            "store them in an nn.ModuleList), or an optimiser will never train them."
        )
    if not torch.equal(x_given.detach(), x.detach()):
        raise CheckFailure(
            f"{name} modified its input x in place (e.g. `x += ...`); compute a new tensor: "
            "return f(x) + x."
        )
    y = expect_tensor(returned, f"The output of {name}", shape=expected.shape,
                      meaning="(batch, width), the shape of its input x")
    f_np = f_x.double().numpy()
    x_np = x.detach().double().numpy()
    judge(f"The output of {name}", y, expected, [
        Mistake("it returns its input unchanged (y = x): the layers are never applied", x_np),
        Mistake("it returns f(x) only: the skip connection `+ x` is missing", f_np),
        Mistake("it applies ReLU after the sum; the block computes just f(x) + x",
                np.maximum(expected, 0.0)),
        Mistake("it subtracts the input (f(x) - x); the block computes f(x) + x", f_np - x_np),
        Mistake("it adds the input twice (f(x) + 2x)", f_np + 2 * x_np),
        Mistake("it doubles f(x) (2 f(x) + x)", 2 * f_np + x_np),
    ], rtol=1e-5, advice="The block computes f(x) + x, with f the layers applied in order.")
    if returned.grad_fn is None:
        raise CheckFailure(
            f"The output of {name} is detached from the graph (no gradient can flow back through "
            "it): do not use .detach(), .data or torch.no_grad() in forward."
        )
    grad_x, *grad_w = torch.autograd.grad(returned.sum(), [x_leaf, *_PARAMETERS(layers[0])],
                                          allow_unused=True)
    if grad_x is None or any(g is None for g in grad_w):
        raise CheckFailure(f"No gradient reaches the input or the layers through {name}.")
    return (f"{name} is correct: y = f(x) + x for a block {width} → {fan_out} → {width}, "
            "gradients flow to the input and the layers' weights." + warning_note(caught))


# ------------------------------------------------------------------------------------------------
# The rule of the tiny task
# ------------------------------------------------------------------------------------------------


def rule_grids(seed: int, n_grids: int) -> torch.Tensor:
    """The grids :func:`check_tiny_rule` labels: ``n_grids`` uniform random 6 × 6 grids of 0.0 and
    1.0, shape (n_grids, 6, 6), float32, drawn from ``seed`` (the global random state is untouched)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (n_grids, 6, 6), generator=generator).to(torch.float32)


def _grid_text(grid: np.ndarray) -> str:
    return "\n".join("    " + " ".join(str(int(v)) for v in row) for row in grid)


@registered("ex_tiny_rule", refuses=_TINY_RULE_REFUSED)
def check_tiny_rule(
    func: Callable[..., Any],
    *,
    seed: int = 9,
    n_grids: int = 512,
    name: str = "ex_tiny_rule",
) -> str:
    """Check ``func(grids) -> labels``, the rule of the tiny task written as a program.

    The contract (the exercise's docstring): ``grids`` is a float32 tensor of shape (n, 6, 6) with
    values 0.0 and 1.0; the answer is a float32 tensor of shape (n,) with values 0.0 and 1.0, the
    label of each grid.  The check labels ``n_grids`` random grids of its own (:func:`rule_grids`)
    and compares with the labels of the tiny task's rule; when they differ it shows the first grid
    on which they do (the rule itself is not in this package).

    Parameters
    ----------
    func : callable
        The student's function.
    seed, n_grids : int
        Seed and number of the random grids.
    name : str
        Name of the exercise, for messages.

    Returns
    -------
    str
        Summary of what was verified.
    """
    grids = rule_grids(seed, n_grids)
    with student_code(name, _TINY_RULE_REFUSED) as window, captured_warnings() as caught:
        returned = call_student(name, func, grids.clone())
    window.verdict()
    got = expect_tensor(returned, f"The labels returned by {name}", shape=(n_grids,),
                        meaning="(n,): one label per grid")
    values = set(np.unique(got).tolist())
    if not values <= {0.0, 1.0}:
        odd = sorted(values - {0.0, 1.0})[:3]
        raise CheckFailure(f"{name} should return labels 0.0 or 1.0 only; it also returned "
                           f"{', '.join(f'{v:g}' for v in odd)}. If you count pixels, the label is "
                           "the count modulo 2 or a comparison, not the count itself.")
    exp = expected("check_tiny_rule", seed=seed, n_grids=n_grids)
    labels = np.asarray(exp["correct"], dtype=np.float64)
    if np.array_equal(got, 1.0 - labels):
        raise CheckFailure(f"{name} gives every grid the other label (1 where the label is 0 and "
                           "the other way round): the pixels are right, the final test is inverted.")
    wrong = np.flatnonzero(got != labels)
    if len(wrong):
        k = int(wrong[0])
        raise CheckFailure(
            f"{name} gives {len(wrong)} of {n_grids} random grids the wrong label. The first is "
            f"grid {k} (rows 0 to 5, top to bottom):\n{_grid_text(grids[k].numpy())}\n"
            f"Its label is {labels[k]:g}; {name} says {got[k]:g}. Which pixels of this grid does "
            "your rule read, and would flipping one of them change the network's answer?"
        )
    return (f"{name} is correct: it labels {n_grids} random grids exactly as the tiny task's rule "
            "does." + warning_note(caught))

