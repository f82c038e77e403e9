"""One contract for every check (CONTRIBUTING.md, "The check contract"), tested over all of them.

Every registered check (:data:`dlnn_helpers.checks.CHECKS`) is a case, with its reference answer
from the answer key (``dlnn_reference.ANSWERS``).  For each:

* the reference answer passes (within the contract, the right values pass);
* every value the answer returns, in turn, is put outside the documented contract in each of
  three ways — the other array type (a NumPy array where a tensor is documented, or the reverse),
  another dtype (float64 where float32 is documented, or the reverse), an extra axis of size 1 —
  and the check rejects it with a message that names what was returned and what was expected;
* answers that work in place or return a module break their own contract (a parameter turned
  into float64, a list of layers instead of ``nn.Sequential``) and are rejected by name.

Dependencies come first: a check whose answer calls an earlier exercise's answer names that
exercise when it is the one that is wrong.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import nbformat
import numpy as np
import pytest
import torch
from torch import nn

import dlnn_helpers.checks as checks
import dlnn_reference
from dlnn_helpers.checks import CheckFailure, NotImplementedYet, self_check
from dlnn_reference import deep_linear, deep_training, optimisation, relu_features

from ..tools import ROOT

# ----------------------------------------------------------------------------------- the registry


@dataclass
class Case:
    """How to run one check, its reference answer, and where its answer returns values."""

    run: Callable[[Any], str]
    answer: Any
    returns: str = "function"
    """``function``: the answer returns the values; ``forward``: a module class whose forward
    returns it; ``two``: a check of two functions (``forward_fn`` or ``backward``); ``none``: the
    answer works in place or returns a module (see ``violations``)."""
    violations: list[tuple[Any, str]] = field(default_factory=list)
    """Answers outside the contract of an in-place or module answer, with the expected message."""


def _two(check, forward, backward):
    return lambda answer, which: (
        check(answer, backward=backward) if which == "forward_fn" else check(forward, backward=answer)
    )


def _initializer_float64(model, gamma=1e-12):
    deep_linear.initializer_(model, gamma)
    for weight in model.parameters():
        weight.data = weight.data.double()


def _gradient_descent_float64(loss_fn, x, learning_rate, n_steps):
    x.data = x.data.double()
    optimisation.gradient_descent(loss_fn, x, learning_rate, n_steps)


class _SGDFloat64(optimisation.SimpleGradientDescent):
    def step(self):
        super().step()
        for x in self.parameters:
            x.data = x.data.double()


class _AdamFloat64(optimisation.ADAMOptimizer):
    def step(self):
        super().step()
        for x in self.parameters:
            x.data = x.data.double()


class _MomentumFloat64(optimisation.MomentumSGD):
    def step(self):
        super().step()
        for x in self.parameters:
            x.data = x.data.double()


def _layers_list(builder):
    return lambda *args, **kwargs: list(builder(*args, **kwargs))


def _module_list(builder):
    return lambda *args, **kwargs: nn.ModuleList(builder(*args, **kwargs))


_NOT_SEQUENTIAL = "should return an nn.Sequential, got torch.nn.modules.container.ModuleList"


def _builder(builder, first):
    return [(_layers_list(builder), first), (_module_list(builder), _NOT_SEQUENTIAL)]


SPECIAL: dict[str, dict[str, Any]] = {
    "check_initializer": {"returns": "none", "violations": [
        (_initializer_float64, "changed the dtype of 'in_hid.weight' to torch.float64")]},
    "check_gradient_descent": {"returns": "none", "violations": [
        (_gradient_descent_float64, "changed the type, dtype or shape of x")]},
    "check_simple_gradient_descent": {"settings": {"n_steps": 5}, "returns": "none", "violations": [
        (_SGDFloat64, "changed the type or dtype of a parameter")]},
    "check_adam_optimizer": {"settings": {"n_steps": 5}, "returns": "none", "violations": [
        (_AdamFloat64, "changed the type or dtype of a parameter")]},
    "check_momentum_sgd": {"settings": {"n_steps": 5}, "returns": "none", "violations": [
        (_MomentumFloat64, "changed the type or dtype of a parameter")]},
    "check_mlp": {"returns": "none", "violations": _builder(
        deep_training.mlp, "returned a list of layers; wrap them in a network: return "
                           "nn.Sequential(*layers)")},
    "check_batchnorm_mlp": {"returns": "none", "violations": _builder(
        deep_training.batchnorm_mlp, "wrap them in a network")},
    "check_residual_net": {"returns": "none", "violations": _builder(
        deep_training.residual_net, "wrap them in a network")},
    "check_init_weights": {"answer": -1},  # he: values of a scale worth comparing
    "check_supervise_init": {"answer": -1},  # kaiming
    "check_second_layer_gradients": {"answer": lambda model, x: tuple(
        list(relu_features.gradient_features(model, x).values())[2:4])},
}
"""What the registry and the answer key do not say: answers that work in place or return a module
(with their violations), quicker settings, another self-check call's answer, another answer."""


def _case(name: str) -> Case:
    """The contract case of a registered check: its reference answer (dlnn_reference) and the
    settings of that self-check call, with :data:`SPECIAL`'s changes."""
    check = checks.CHECKS[name].function
    special = SPECIAL.get(name, {})
    chosen = special.get("answer", 0)
    answer, settings = dlnn_reference.ANSWERS[name][chosen] if isinstance(chosen, int) else (
        chosen, dlnn_reference.ANSWERS[name][0][1])
    settings = {**settings, **special.get("settings", {})}
    if "backward" in settings:
        backward = settings.pop("backward")
        return Case(_two(lambda f, **k: check(f, **settings, **k), answer, backward),
                    (answer, backward), "two")
    returns = special.get("returns", "forward" if isinstance(answer, type) else "function")
    return Case(lambda a: check(a, **settings), answer, returns, special.get("violations", []))


CASES: dict[str, Case] = {name: _case(name) for name in checks.CHECKS}
assert set(SPECIAL) <= set(CASES), set(SPECIAL) - set(CASES)


def _public_checks() -> set[str]:
    return {name for name, value in vars(checks).items()
            if name.startswith("check_") and callable(value)}


def _checks_defined_in_modules() -> set[str]:
    found = set()
    for info in pkgutil.iter_modules(checks.__path__):
        module = importlib.import_module(f"{checks.__name__}.{info.name}")
        found |= {name for name, value in vars(module).items()
                  if name.startswith("check_") and inspect.isfunction(value)
                  and value.__module__ == module.__name__}
    return found


def test_every_check_is_public_and_has_a_contract_case():
    public = _public_checks()
    assert _checks_defined_in_modules() <= public  # notebooks never import a submodule or _core
    assert public <= set(checks.__all__)
    assert {"self_check", "CheckFailure", "NotImplementedYet"} <= set(checks.__all__)
    assert set(CASES) == public


# --------------------------------------------------------------------------- running a case


def _run(case: Case, answer: Any, which: str = "") -> str:
    if case.returns == "two":
        return case.run(answer, which)
    return case.run(answer)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_reference_answer_passes(name):
    case = CASES[name]
    if case.returns == "two":
        forward, backward = case.answer
        assert "agree with autograd" in _run(case, forward, "forward_fn")
    else:
        assert _run(case, case.answer)


@pytest.mark.parametrize("name", sorted(CASES))
def test_an_unimplemented_answer_waits(name, capsys):
    case = CASES[name]

    def todo(*args, **kwargs):
        raise NotImplementedError()

    class Todo(nn.Module):
        def __init__(self, *args, **kwargs):
            raise NotImplementedError()

    stub = Todo if name in ("check_residual_sequence", "check_supervise_init",
                            "check_simple_gradient_descent", "check_adam_optimizer",
                            "check_momentum_sgd") else todo
    with pytest.raises(NotImplementedYet):
        _run(case, stub, "forward_fn")
    assert not self_check(lambda answer: _run(case, answer, "forward_fn"), stub)
    assert capsys.readouterr().out.startswith("⏳")


# ------------------------------------------------------------------- outside the contract

TRANSFORMS = ("other type", "other dtype", "extra axis")


def _transform(value: Any, how: str) -> Any:
    """``value`` moved outside its documented contract in one way (numbers and others unchanged)."""
    if type(value) is torch.Tensor:
        if how == "other type":
            return value.detach().numpy()
        if how == "other dtype":
            return value.double() if value.dtype == torch.float32 else value.float()
        return value.unsqueeze(-1)
    if type(value) is np.ndarray:
        if how == "other type":
            return torch.from_numpy(value)
        if how == "other dtype":
            return value.astype(np.float32 if value.dtype == np.float64 else np.float64)
        return value[..., None]
    return value


def _expected_words(value: Any, how: str) -> list[str]:
    """What the message must say about ``value`` moved outside the contract by ``how``."""
    if type(value) is torch.Tensor:
        shape = tuple(value.shape)
        if how == "other type":
            return ["is a np.ndarray", "it should be a", "torch.Tensor"]
        if how == "other dtype":
            other = torch.float64 if value.dtype == torch.float32 else torch.float32
            return [f"has dtype {other}; it should be {value.dtype}"]
        return [f"has shape {(*shape, 1)}", f"should have shape {shape}", "extra axis of size 1"]
    other_np = np.float32 if value.dtype == np.float64 else np.float64
    if how == "other type":
        return ["is a torch.Tensor", "it should be a np.ndarray"]
    if how == "other dtype":
        return [f"has dtype {np.dtype(other_np)}; it should be {value.dtype}"]
    return [f"has shape {(*value.shape, 1)}", f"should have shape {value.shape}",
            "extra axis of size 1"]


def _outside(func: Callable, index: int, how: str, seen: list) -> Callable:
    """``func`` with its ``index``-th returned value moved outside the contract."""

    def answer(*args, **kwargs):
        result = func(*args, **kwargs)
        if isinstance(result, tuple):
            items = list(result)
            if type(items[index]) in (torch.Tensor, np.ndarray) and not seen:
                seen.append(items[index])
            items[index] = _transform(items[index], how)
            return tuple(items)
        if type(result) in (torch.Tensor, np.ndarray) and not seen:
            seen.append(result)
        return _transform(result, how)

    return answer


def _n_outputs(case: Case, which: str) -> int:
    """How many values the reference answer returns (a tuple's length, else 1), seen by running
    the check once with it."""
    if case.returns == "forward":
        return 1
    got: list = []

    def spy(func: Callable) -> Callable:
        def answer(*args, **kwargs):
            result = func(*args, **kwargs)
            got.append(result)
            return result

        return answer

    if case.returns == "two":
        forward, backward = case.answer
        _run(case, spy(forward if which == "forward_fn" else backward), which)
    else:
        _run(case, spy(case.answer))
    return len(got[0]) if isinstance(got[0], tuple) else 1


def _violations() -> list[tuple[str, str, str]]:
    out = []
    for name, case in sorted(CASES.items()):
        if case.returns == "none":
            continue
        for which in ("forward_fn", "backward") if case.returns == "two" else ("",):
            for how in TRANSFORMS:
                out.append((name, which, how))
    return out


@pytest.mark.parametrize(("name", "which", "how"), _violations(),
                         ids=lambda v: str(v).replace(" ", "-"))
def test_a_value_outside_the_documented_contract_is_named(name, which, how):
    """Each returned value in turn (every item of a returned tuple) is moved outside."""
    case = CASES[name]
    base, make = case.answer, _outside
    for index in range(_n_outputs(case, which)):
        seen: list = []
        if case.returns == "two":
            forward, backward = case.answer
            answer = _outside(forward if which == "forward_fn" else backward, index, how, seen)
        elif case.returns == "forward":

            class answer(base):  # noqa: N801 - stands for the student's class
                def forward(self, *args, _seen=seen):
                    return make(super().forward, 0, how, _seen)(*args)
        else:
            answer = _outside(case.answer, index, how, seen)
        with pytest.raises(CheckFailure) as info:
            _run(case, answer, which)
        message = str(info.value)
        assert seen, "the answer returned no tensor or array to move outside the contract"
        for words in _expected_words(seen[0], how):
            assert words in message, (index, words, message)


@pytest.mark.parametrize(("name", "index"), [(name, i) for name, case in sorted(CASES.items())
                                             for i in range(len(case.violations))])
def test_in_place_and_module_answers_keep_their_contract(name, index):
    case = CASES[name]
    answer, words = case.violations[index]
    with pytest.raises(CheckFailure) as info:
        _run(case, answer)
    assert words in str(info.value)


# ----------------------------------------------------------------------------- dependencies


def test_a_dependency_is_checked_first_and_named():
    namespace = {"__name__": "__main__", "torch": torch}

    def ema_update(x_t, beta, t, ema_star_old):  # returns its pair in the wrong order
        ema_star = beta * ema_star_old + (1 - beta) * x_t
        return ema_star, ema_star / (1 - beta**t)

    namespace["ema_update"] = ema_update
    notebook = nbformat.read(ROOT / "solutions" / "T2_Optimisation" / "T2_Optimisation.ipynb", 4)
    source = next(c.source for c in notebook.cells
                  if c.metadata.get("nbgrader", {}).get("grade_id") == "adam_optimizer")
    exec(source, namespace)  # noqa: S102 - the ADAMOptimizer cell of a notebook, calling ema_update
    with pytest.raises(CheckFailure) as info:
        checks.check_adam_optimizer(namespace["ADAMOptimizer"], n_steps=5)
    message = str(info.value)
    assert "ADAMOptimizer calls your ema_update, which is not correct yet" in message
    assert "fix ema_update first" in message and "return (ema, ema_star)" in message
