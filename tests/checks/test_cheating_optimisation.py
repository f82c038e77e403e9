"""T2: answers that take a shortcut are refused by the self-check, with the message asserted.

The exercises ``gradient_descent``, ``SimpleGradientDescent`` and ``ADAMOptimizer`` refuse
``torch.optim`` (reached however it is reached: a plain call, ``getattr`` with a built name, a
subclass, a wrapper, the functional API); every exercise refuses the course's own expected values
(reading ``checks/expected/optimisation.json`` or calling ``expected()``).  The package that
students install holds none of the reference answers any more, and its stand-ins fail the checks.

Also: the expected values shipped for the self-checks are up to date and suffice offline
(``shipped_only``), the hidden settings are computed live (``live_only``) and, without the
reference, raise ``ReferenceUnavailable`` only after every call of the student's code was made.
"""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path

import pytest
import torch

import dlnn_helpers
from dlnn_helpers.checks import ShortcutUsed, _expected
from dlnn_helpers.checks.optimisation import (
    check_adam_optimizer,
    check_ema_update,
    check_gradient_descent,
    check_gradient_mean_rms,
    check_simple_gradient_descent,
)
from dlnn_reference import optimisation as ref

SHIPPED = Path(_expected.SHIPPED) / "optimisation.json"
OPTIM = "the exercise is to write the update yourself"
ANSWERS = ("reads the course's expected answers (the data the self-check compares with): the exercise "
           "is to compute them yourself")

# ======================================================================= torch.optim, however reached


def gd_with_sgd(loss_fn, x, learning_rate, n_steps):
    optimiser = torch.optim.SGD([x], lr=learning_rate)
    for _ in range(n_steps):
        loss_fn(x).backward()
        optimiser.step()
        optimiser.zero_grad()


def gd_with_built_name(loss_fn, x, learning_rate, n_steps):
    optim = getattr(torch, "op" + "tim")
    optimiser = getattr(optim, "S" + "GD")([x], lr=learning_rate)
    for _ in range(n_steps):
        loss_fn(x).backward()
        optimiser.step()
        optimiser.zero_grad()


class AdamByBuiltName:
    """A wrapper that finds torch.optim.Adam through getattr and a string built at run time."""

    def __init__(self, parameters, lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.inner = getattr(torch.optim, "Ad" + "am")(parameters, lr=lr, betas=betas, eps=eps,
                                                       weight_decay=weight_decay)

    def step(self):
        self.inner.step()

    def zero_grad(self):
        self.inner.zero_grad()


class AdamSubclass(torch.optim.Adam):
    """The library's Adam under the exercise's name."""


class AdamSubclassBadSignature(torch.optim.Adam):
    """Uses torch.optim.Adam and then crashes: the shortcut is named, not the crash."""

    def __init__(self, parameters, lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(parameters, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        raise RuntimeError("not finished")


class AdamCreatedLazily:
    """Builds torch.optim.Adam at the first step(), not in the constructor."""

    def __init__(self, parameters, lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.parameters = list(parameters)
        self.settings = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        self.inner = None

    def step(self):
        if self.inner is None:
            self.inner = torch.optim.Adam(self.parameters, **self.settings)
        self.inner.step()

    def zero_grad(self):
        for x in self.parameters:
            x.grad = None


class AdamFunctional(ref.ADAMOptimizer):
    """The moments kept by hand, the update done by torch.optim's functional adam."""

    def __init__(self, parameters, lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(parameters, lr, betas, eps, weight_decay)
        self.steps = [torch.tensor(0.0) for _ in self.parameters]

    @torch.no_grad()
    def step(self):
        from torch.optim._functional import adam

        with_grad = [i for i, x in enumerate(self.parameters) if x.grad is not None]
        adam(
            [self.parameters[i] for i in with_grad], [self.parameters[i].grad for i in with_grad],
            [self.m_star[i] for i in with_grad], [self.v_star[i] for i in with_grad], [],
            [self.steps[i] for i in with_grad], foreach=False, amsgrad=False, beta1=self.beta_1,
            beta2=self.beta_2, lr=self.lr, weight_decay=self.weight_decay, eps=self.eps,
            maximize=False,
        )


class SGDWrapper:
    """Holds a torch.optim.SGD and forwards to it."""

    def __init__(self, parameters, lr=0.1, weight_decay=0.0):
        self.sgd = torch.optim.SGD(parameters, lr=lr, weight_decay=weight_decay)

    def step(self):
        self.sgd.step()

    def zero_grad(self):
        self.sgd.zero_grad()


class SGDSubclass(torch.optim.SGD):
    """The library's SGD under the exercise's name."""


class SGDOnOptimizerBase(torch.optim.Optimizer):
    """Writes the update, but inherits param_groups and zero_grad from torch.optim.Optimizer."""

    def __init__(self, parameters, lr=0.1, weight_decay=0.0):
        super().__init__(parameters, {"lr": lr, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p -= group["lr"] * (p.grad + group["weight_decay"] * p)


@pytest.mark.parametrize(
    ("check", "answer", "message"),
    [
        (check_gradient_descent, gd_with_sgd, f"gradient_descent uses torch.optim.SGD: {OPTIM}"),
        (check_gradient_descent, gd_with_built_name,
         f"gradient_descent uses torch.optim.SGD: {OPTIM}"),
        (check_gradient_descent, dlnn_helpers.optimisers.descend_with_torch_sgd,
         f"gradient_descent uses torch.optim.SGD: {OPTIM}"),
        (check_simple_gradient_descent, SGDWrapper, f"SimpleGradientDescent uses torch.optim.SGD: {OPTIM}"),
        (check_simple_gradient_descent, SGDSubclass, f"SimpleGradientDescent uses torch.optim.SGD: {OPTIM}"),
        (check_simple_gradient_descent, torch.optim.SGD,
         f"SimpleGradientDescent uses torch.optim.SGD: {OPTIM}"),
        (check_simple_gradient_descent, SGDOnOptimizerBase,
         f"SimpleGradientDescent uses torch.optim.Optimizer: {OPTIM}"),
        (check_adam_optimizer, AdamByBuiltName, f"ADAMOptimizer uses torch.optim.Adam: {OPTIM}"),
        (check_adam_optimizer, AdamSubclass, f"ADAMOptimizer uses torch.optim.Adam: {OPTIM}"),
        (check_adam_optimizer, torch.optim.Adam, f"ADAMOptimizer uses torch.optim.Adam: {OPTIM}"),
        (check_adam_optimizer, AdamSubclassBadSignature, f"ADAMOptimizer uses torch.optim.Adam: {OPTIM}"),
        (check_adam_optimizer, AdamCreatedLazily, f"ADAMOptimizer uses torch.optim.Adam: {OPTIM}"),
    ],
    ids=lambda v: getattr(v, "__name__", None) if callable(v) else None,
)
def test_torch_optim_is_refused_however_it_is_reached(check, answer, message):
    with pytest.raises(ShortcutUsed) as info:
        check(answer)
    assert str(info.value) == message


def test_the_functional_api_of_torch_optim_is_refused():
    with pytest.raises(ShortcutUsed) as info:
        check_adam_optimizer(AdamFunctional)
    assert str(info.value).startswith("ADAMOptimizer uses torch.optim")


def test_torch_optim_is_refused_on_the_hidden_settings_too():
    with pytest.raises(ShortcutUsed, match="ADAMOptimizer uses torch.optim.Adam"):
        check_adam_optimizer(AdamByBuiltName, seed=12, shapes=((7,), (1, 3)), lr=0.1, weight_decay=0.5)


def test_the_exercises_without_a_refusal_may_use_torch_optim_elsewhere():
    """gradient_mean_rms and ema_update refuse nothing: a stray torch.optim object is no shortcut."""

    def mean_rms_with_an_optimiser_around(grads):
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        return ref.gradient_mean_rms(grads)

    assert "is correct" in check_gradient_mean_rms(mean_rms_with_an_optimiser_around)


# =========================================================================== the course's answers


def mean_rms_from_the_shipped_file(grads):
    table = json.loads(SHIPPED.read_text(encoding="utf-8"))
    for key, value in table.items():
        if "check_gradient_mean_rms" in key:
            mean, rms = _expected.decode(value)["correct"]
            return torch.tensor(mean, dtype=torch.float32), torch.tensor(rms, dtype=torch.float32)
    raise KeyError("not found")


def mean_rms_from_expected(grads):
    mean, rms = _expected.expected("check_gradient_mean_rms", seed=2021, shape=(50, 2))["correct"]
    return torch.tensor(mean, dtype=torch.float32), torch.tensor(rms, dtype=torch.float32)


def ema_from_the_shipped_file(x_t, beta, t, ema_star_old):
    with open(SHIPPED, "rb") as stream:  # only reads: the values are then computed correctly
        stream.read(10)
    return ref.ema_update(x_t, beta, t, ema_star_old)


def gd_from_expected(loss_fn, x, learning_rate, n_steps):
    loss_fn(x)
    final = _expected.expected("check_gradient_descent", start=(-1.5, 1.2), learning_rate=0.1,
                               n_steps=21, bowl=None)["correct"]
    with torch.no_grad():
        x.copy_(torch.tensor(final))


class AdamReadsTheFile(ref.ADAMOptimizer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        SHIPPED.read_bytes()


@pytest.mark.parametrize(
    ("check", "answer", "exercise"),
    [
        (check_gradient_mean_rms, mean_rms_from_the_shipped_file, "gradient_mean_rms"),
        (check_gradient_mean_rms, mean_rms_from_expected, "gradient_mean_rms"),
        (check_ema_update, ema_from_the_shipped_file, "ema_update"),
        (check_gradient_descent, gd_from_expected, "gradient_descent"),
        (check_adam_optimizer, AdamReadsTheFile, "ADAMOptimizer"),
    ],
    ids=lambda v: getattr(v, "__name__", None) if callable(v) else None,
)
def test_the_course_answers_are_refused(check, answer, exercise):
    with pytest.raises(ShortcutUsed) as info:
        check(answer)
    assert str(info.value) == f"{exercise} {ANSWERS}"


# ========================================================= nothing in the student package answers


MOVED = ["gradient_descent", "SimpleGradientDescent", "gradient_mean_rms", "ema_update",
         "ADAMOptimizer", "ema_history"]


def test_the_reference_answers_are_not_in_the_student_package():
    optimisers = importlib.import_module("dlnn_helpers.optimisers")
    for name in MOVED:
        assert not hasattr(optimisers, name) and not hasattr(dlnn_helpers, name), name
    with pytest.raises(ImportError):
        exec("from dlnn_helpers.optimisers import ADAMOptimizer", {})  # noqa: S102
    source = inspect.getsource(optimisers)
    assert "dlnn_reference" not in source


def test_the_stand_ins_fail_with_a_plain_message():
    from dlnn_helpers.optimisers import precomputed_ema, precomputed_gradient_mean_rms

    with pytest.raises(Exception, match="raised ValueError: precomputed_gradient_mean_rms holds the values"):
        check_gradient_mean_rms(precomputed_gradient_mean_rms)
    with pytest.raises(Exception, match="raised TypeError"):
        check_ema_update(precomputed_ema)


# ============================================================ shipped values, live values, the grader


def test_a_wrong_answer_on_the_hidden_settings_is_still_diagnosed_live():
    class NoBias(ref.ADAMOptimizer):
        @torch.no_grad()
        def step(self):
            self.t += 1
            for x, m_star, v_star in zip(self.parameters, self.m_star, self.v_star, strict=True):
                if x.grad is None:
                    continue
                g = x.grad + self.weight_decay * x
                m_star.mul_(self.beta_1).add_((1 - self.beta_1) * g)
                v_star.mul_(self.beta_2).add_((1 - self.beta_2) * g * g)
                x -= self.lr * m_star / (v_star.sqrt() + self.eps)

    with _expected.live_only(), pytest.raises(Exception, match="EMA without bias correction"):
        check_adam_optimizer(NoBias, seed=4, shapes=((5, 2), (3,), (2, 2, 2)), lr=0.02,
                             betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01)


def test_the_refusals_are_declared_next_to_the_checks():
    from dlnn_helpers.checks._shortcuts import DECLARED

    assert DECLARED["check_gradient_descent"] == ("gradient_descent", ("torch.optim",))
    assert DECLARED["check_simple_gradient_descent"] == ("SimpleGradientDescent", ("torch.optim",))
    assert DECLARED["check_adam_optimizer"] == ("ADAMOptimizer", ("torch.optim",))
    assert DECLARED["check_gradient_mean_rms"] == ("gradient_mean_rms", ())
    assert DECLARED["check_ema_update"] == ("ema_update", ())
