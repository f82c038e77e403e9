"""The T2 checks accept every correct answer and reject realistic wrong ones with a precise message.

T3's MomentumSGD is checked with the other optimisers (its check lives in the optimisation module).

For each graded exercise: the reference, at least two alternative correct answers, and at least four
wrong answers seen in practice (among them every mistake the curriculum lists), each with the
message it must produce.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import dlnn_helpers
from autograder.grading.synthetic import solution_sources
from dlnn_helpers.checks import ShortcutUsed, _expected
from dlnn_helpers.checks._core import CheckFailure, NotImplementedYet, self_check
from dlnn_helpers.checks.optimisation import (
    check_adam_optimizer,
    check_ema_update,
    check_gradient_descent,
    check_gradient_mean_rms,
    check_momentum_sgd,
    check_simple_gradient_descent,
)
from dlnn_helpers.optimisation_demos import make_jump_series
from dlnn_helpers.optimisation_surface import START, LossFunctionWithPlot
from dlnn_reference import optimisation as ref

# ================================================================================ gradient descent


def gd_sub_(loss_fn, x, learning_rate, n_steps):
    for _ in range(n_steps):
        x.grad = None
        loss_fn(x).backward()
        with torch.no_grad():
            x.sub_(learning_rate * x.grad)


def gd_data_zero_(loss_fn, x, learning_rate, n_steps):
    for step in range(n_steps):
        loss = loss_fn(x)
        if step % 7 == 0:
            print(f"step {step}: loss {loss.item():.3f}")
        loss.backward()
        x.data -= learning_rate * x.grad.data
        x.grad.zero_()


def gd_grad_api(loss_fn, x, learning_rate, n_steps):
    for _ in range(n_steps):
        (g,) = torch.autograd.grad(loss_fn(x), [x])
        with torch.no_grad():
            x -= learning_rate * g


def gd_never_cleared(loss_fn, x, learning_rate, n_steps):
    for _ in range(n_steps):
        loss_fn(x).backward()
        with torch.no_grad():
            x -= learning_rate * x.grad


def gd_ascent(loss_fn, x, learning_rate, n_steps):
    for _ in range(n_steps):
        loss_fn(x).backward()
        with torch.no_grad():
            x += learning_rate * x.grad
        x.grad = None


def gd_rebinds_x(loss_fn, x, learning_rate, n_steps):
    for _ in range(n_steps):
        loss_fn(x).backward()
        with torch.no_grad():
            x = x - learning_rate * x.grad


def gd_without_no_grad(loss_fn, x, learning_rate, n_steps):
    for _ in range(n_steps):
        loss_fn(x).backward()
        x -= learning_rate * x.grad
        x.grad = None


def gd_one_step_too_many(loss_fn, x, learning_rate, n_steps):
    ref.gradient_descent(loss_fn, x, learning_rate, n_steps + 1)


def gd_no_learning_rate(loss_fn, x, learning_rate, n_steps):
    ref.gradient_descent(loss_fn, x, 1.0, n_steps)


def gd_loss_not_used(loss_fn, x, learning_rate, n_steps):
    with torch.no_grad():
        x -= learning_rate


GD_CORRECT = [ref.gradient_descent, gd_sub_, gd_data_zero_, gd_grad_api]


@pytest.mark.parametrize("answer", GD_CORRECT, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    "settings",
    [{}, {"learning_rate": (0.1, 0.55), "n_steps": 50}, {"start": (1.0, -2.0), "n_steps": 35,
     "bowl": ((1.5, 0.4), (0.2, -0.3)), "learning_rate": 0.05}],
)
def test_gradient_descent_accepts_correct_answers(answer, settings):
    assert "is correct" in check_gradient_descent(answer, **settings)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (gd_never_cleared, "the gradient is never cleared"),
        (gd_ascent, "gradient ascent"),
        (gd_rebinds_x, "x must stay the leaf tensor that requires grad"),
        (gd_without_no_grad, "wrap the update in `with torch.no_grad():`"),
        (gd_one_step_too_many, "one step too many"),
        (gd_no_learning_rate, "the learning rate is missing"),
        (gd_loss_not_used, "never evaluated loss_fn"),
        (lambda loss_fn, x, lr, n: None, "never evaluated loss_fn"),
    ],
)
def test_gradient_descent_rejects_wrong_answers(answer, message):
    with pytest.raises(CheckFailure, match=None) as info:
        check_gradient_descent(answer)
    assert message in str(info.value)


def test_gradient_descent_reports_unchanged_x():
    def evaluates_only(loss_fn, x, learning_rate, n_steps):
        for _ in range(n_steps):
            loss_fn(x)

    with pytest.raises(CheckFailure, match="x did not change"):
        check_gradient_descent(evaluates_only)


# ===================================================================================== mean / RMS


def stats_norm(grads):
    return grads.sum(dim=0) / grads.shape[0], grads.norm(dim=0) / math.sqrt(grads.shape[0])


def stats_numpy(grads):
    g = grads.numpy()
    return np.mean(g, axis=0), np.sqrt(np.mean(g**2, axis=0))


def stats_numpy_float64(grads):
    g = grads.double().numpy()
    return torch.from_numpy(g.mean(axis=0)), torch.from_numpy(np.sqrt((g**2).mean(axis=0)))


def stats_numpy_float64_arrays(grads):
    g = grads.double().numpy()
    return g.mean(axis=0), np.sqrt((g**2).mean(axis=0))


def stats_keepdim(grads):
    return grads.mean(dim=0, keepdim=True), grads.pow(2).mean(dim=0, keepdim=True).sqrt()


def stats_loop(grads):
    means, rmss = [], []
    for column in grads.T:
        means.append(column.mean())
        rmss.append(torch.sqrt(torch.mean(column**2)))
    return torch.stack(means), torch.stack(rmss)


def stats_std(grads):
    return grads.mean(dim=0), grads.std(dim=0)


def stats_no_sqrt(grads):
    return grads.mean(dim=0), grads.pow(2).mean(dim=0)


def stats_wrong_dim(grads):
    return grads.mean(dim=1), grads.pow(2).mean(dim=1).sqrt()


def stats_abs_mean(grads):
    return grads.abs().mean(dim=0), grads.pow(2).mean(dim=0).sqrt()


def stats_in_place(grads):
    mean = grads.mean(dim=0)
    return mean, grads.pow_(2).mean(dim=0).sqrt()


def stats_swapped(grads):
    return grads.pow(2).mean(dim=0).sqrt(), grads.mean(dim=0)


def stats_norm_only(grads):
    return grads.mean(dim=0), grads.norm(dim=0)


@pytest.mark.parametrize("answer", [ref.gradient_mean_rms, stats_norm, stats_loop])
@pytest.mark.parametrize("settings", [{}, {"seed": 3, "shape": (30, 5)}, {"shape": (7, 1)}])
def test_gradient_mean_rms_accepts_correct_answers(answer, settings):
    assert "is correct" in check_gradient_mean_rms(answer, **settings)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (stats_std, "rms is wrong: it is the sample standard deviation"),
        (stats_no_sqrt, "rms is wrong: it is the mean square"),
        (stats_wrong_dim, "mean has shape (50,); it should have shape (2,) = (n_coordinates,), one "
                          "value per coordinate: one value per step"),
        (stats_abs_mean, "mean is wrong: it is the mean of |g|"),
        (stats_numpy, "mean is a np.ndarray of dtype float32 and shape (2,); it should be a "
                      "torch.Tensor of dtype torch.float32 and shape (2,)"),
        (stats_numpy_float64, "mean has dtype torch.float64; it should be torch.float32"),
        (stats_numpy_float64_arrays, "mean is a np.ndarray of dtype float64 and shape (2,); it "
                                     "should be a torch.Tensor of dtype torch.float32 and shape (2,)"),
        (stats_keepdim, "mean has shape (1, 2); it should have shape (2,) = (n_coordinates,), one "
                        "value per coordinate: it has an extra axis of size 1"),
        (stats_in_place, "modified grads in place"),
        (stats_swapped, "returned (rms, mean)"),
        (stats_norm_only, "rms is wrong: it is the norm of each column"),
        (lambda g: g.mean(dim=0), "should return the tuple (mean, rms)"),
    ],
)
def test_gradient_mean_rms_rejects_wrong_answers(answer, message):
    with pytest.raises(CheckFailure) as info:
        check_gradient_mean_rms(answer)
    assert message in str(info.value)


# ====================================================================== SimpleGradientDescent


class SGDAddAlpha:
    """Keeps the parameters in a tuple; fused update; zero_grad zeroes in place."""

    def __init__(self, parameters, lr=0.1, weight_decay=0.0):
        self.params = tuple(parameters)
        self.lr, self.wd = lr, weight_decay

    def step(self):
        with torch.no_grad():
            for p in self.params:
                if p.grad is not None:
                    p.add_(p.grad + self.wd * p, alpha=-self.lr)

    def zero_grad(self):
        for p in self.params:
            if p.grad is not None:
                p.grad.zero_()


class SGDShrinkFirst:
    """Shrinks the weights by (1 − lr·λ), then takes the gradient step: the same update."""

    def __init__(self, parameters, lr=0.1, weight_decay=0.0):
        self.parameters = list(parameters)
        self.lr, self.weight_decay = lr, weight_decay

    def step(self):
        for x in self.parameters:
            if x.grad is None:
                continue
            x.data.mul_(1 - self.lr * self.weight_decay)
            x.data.sub_(self.lr * x.grad)

    def zero_grad(self):
        for x in self.parameters:
            x.grad = None


class SGDSubclass(torch.optim.Optimizer):
    """A subclass of torch.optim.Optimizer, with param_groups and the inherited zero_grad.

    It writes the update itself, but the exercise refuses torch.optim (its base class included:
    zero_grad is part of the exercise): see test_a_subclass_of_the_optimizer_base_is_refused.
    """

    def __init__(self, parameters, lr=0.1, weight_decay=0.0):
        super().__init__(parameters, {"lr": lr, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p -= group["lr"] * (p.grad + group["weight_decay"] * p)


class SGDSourceMistake(ref.SimpleGradientDescent):
    """Weight decay not multiplied by the learning rate: x -= lr*g + wd*x."""

    @torch.no_grad()
    def step(self):
        for x in self.parameters:
            if x.grad is not None:
                x -= self.lr * x.grad + self.weight_decay * x


class SGDZeroGradDoesNothing(ref.SimpleGradientDescent):
    def zero_grad(self):
        for x in self.parameters:
            x.grad * 0  # computes a new tensor and throws it away


class SGDZeroGradCallsList(ref.SimpleGradientDescent):
    def zero_grad(self):
        for x in self.parameters():
            x.grad = None


class SGDKeepsGenerator(ref.SimpleGradientDescent):
    def __init__(self, parameters, lr=0.1, weight_decay=0.0):
        self.parameters = parameters
        self.lr, self.weight_decay = lr, weight_decay


class SGDRebinds(ref.SimpleGradientDescent):
    @torch.no_grad()
    def step(self):
        for x in self.parameters:
            if x.grad is not None:
                x = x - self.lr * (x.grad + self.weight_decay * x)


class SGDNoNoGrad(ref.SimpleGradientDescent):
    def step(self):
        for x in self.parameters:
            if x.grad is not None:
                x -= self.lr * (x.grad + self.weight_decay * x)


class SGDNoneGradCrashes(ref.SimpleGradientDescent):
    @torch.no_grad()
    def step(self):
        for x in self.parameters:
            x -= self.lr * (x.grad + self.weight_decay * x)


class SGDDecaysUnusedToo(ref.SimpleGradientDescent):
    @torch.no_grad()
    def step(self):
        for x in self.parameters:
            g = x.grad if x.grad is not None else torch.zeros_like(x)
            x -= self.lr * (g + self.weight_decay * x)


class SGDClearsInStep(ref.SimpleGradientDescent):
    @torch.no_grad()
    def step(self):
        super().step()
        self.zero_grad()


class SGDIgnoresDecay(ref.SimpleGradientDescent):
    @torch.no_grad()
    def step(self):
        for x in self.parameters:
            if x.grad is not None:
                x -= self.lr * x.grad


class SGDHalfDecay(ref.SimpleGradientDescent):
    @torch.no_grad()
    def step(self):
        for x in self.parameters:
            if x.grad is not None:
                x -= self.lr * (x.grad + 0.5 * self.weight_decay * x)


SGD_SETTINGS = [{}, {"seed": 5, "shapes": ((6,), (2, 5), (3, 1, 2)), "lr": 0.03,
                     "weight_decay": 0.3}]


@pytest.mark.parametrize(
    "answer", [ref.SimpleGradientDescent, SGDAddAlpha, SGDShrinkFirst],
    ids=lambda c: c.__name__,
)
@pytest.mark.parametrize("settings", SGD_SETTINGS)
def test_simple_gradient_descent_accepts_correct_answers(answer, settings):
    assert "matches torch.optim.SGD" in check_simple_gradient_descent(answer, **settings)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (SGDSourceMistake, "weight decay is not multiplied by the learning rate"),
        (SGDZeroGradDoesNothing, "zero_grad() does not clear the gradients"),
        (SGDZeroGradCallsList, "self.parameters is a list here, not a method"),
        (SGDKeepsGenerator, "store the parameters in a list in __init__"),
        (SGDRebinds, "did not change the parameters"),
        (SGDNoNoGrad, "wrap the update in `with torch.no_grad():`"),
        (SGDNoneGradCrashes, "skip it (`if x.grad is None"),
        (SGDDecaysUnusedToo, "changed a parameter whose .grad is None"),
        (SGDIgnoresDecay, "weight_decay is ignored"),
        (SGDClearsInStep, "step() removed the gradients"),
        (SGDHalfDecay, "the weight-decay term is halved"),
    ],
)
def test_simple_gradient_descent_rejects_wrong_answers(answer, message):
    with pytest.raises(CheckFailure) as info:
        check_simple_gradient_descent(answer)
    assert message in str(info.value)


def test_a_subclass_of_the_optimizer_base_is_refused():
    """Correct updates, but on torch.optim.Optimizer: the exercise refuses torch.optim."""
    with pytest.raises(CheckFailure) as info:
        check_simple_gradient_descent(SGDSubclass)
    assert str(info.value) == ("SimpleGradientDescent uses torch.optim.Optimizer: the exercise is to "
                               "write the update yourself")


# ===================================================================================== ema_update


def ema_torch_pow(x_t, beta, t, ema_star_old):
    ema_star = ema_star_old * beta + x_t - beta * x_t
    return ema_star / (1 - math.pow(beta, t)), ema_star


def ema_lerp(x_t, beta, t, ema_star_old):
    """0-d float64 tensors for float inputs: still a single number, within the contract."""
    if isinstance(x_t, torch.Tensor):
        ema_star = torch.lerp(x_t, ema_star_old, beta)
    else:
        ema_star = torch.lerp(torch.tensor(float(x_t), dtype=torch.float64),
                              torch.tensor(float(ema_star_old), dtype=torch.float64), beta)
    return ema_star / (1 - beta**t), ema_star


def ema_float64(x_t, beta, t, ema_star_old):
    x = torch.as_tensor(x_t, dtype=torch.float64)
    old = torch.as_tensor(ema_star_old, dtype=torch.float64)
    ema_star = torch.lerp(x, old, beta)
    return ema_star / (1 - beta**t), ema_star


def ema_numpy_arrays(x_t, beta, t, ema_star_old):
    ema_star = beta * np.asarray(ema_star_old) + (1 - beta) * np.asarray(x_t)
    return ema_star / (1 - beta**t), ema_star


def ema_numpy(x_t, beta, t, ema_star_old):
    ema_star = np.add(np.multiply(beta, ema_star_old), np.multiply(1 - beta, x_t))
    return np.divide(ema_star, 1 - np.power(beta, t)), ema_star


def ema_no_correction(x_t, beta, t, ema_star_old):
    ema_star = beta * ema_star_old + (1 - beta) * x_t
    return ema_star, ema_star


def ema_swapped_output(x_t, beta, t, ema_star_old):
    ema, ema_star = ref.ema_update(x_t, beta, t, ema_star_old)
    return ema_star, ema


def ema_swapped_beta(x_t, beta, t, ema_star_old):
    ema_star = (1 - beta) * ema_star_old + beta * x_t
    return ema_star / (1 - beta**t), ema_star


def ema_t_minus_one(x_t, beta, t, ema_star_old):
    ema_star = beta * ema_star_old + (1 - beta) * x_t
    return ema_star / (1 - beta ** (t - 1)), ema_star


def ema_in_place(x_t, beta, t, ema_star_old):
    if isinstance(ema_star_old, torch.Tensor):
        ema_star_old.mul_(beta).add_((1 - beta) * x_t)
        return ema_star_old / (1 - beta**t), ema_star_old
    return ref.ema_update(x_t, beta, t, ema_star_old)


def ema_corrects_old(x_t, beta, t, ema_star_old):
    return ema_star_old / (1 - beta**t), beta * ema_star_old + (1 - beta) * x_t


def ema_python_list(x_t, beta, t, ema_star_old):
    ema, ema_star = ref.ema_update(x_t, beta, t, ema_star_old)
    return [ema, ema_star], None


@pytest.mark.parametrize(
    "answer", [ref.ema_update, ema_torch_pow, ema_lerp], ids=lambda f: f.__name__
)
@pytest.mark.parametrize(
    "settings", [{}, {"seed": 9, "beta": 0.99, "shape": (5,), "large_t": 3000}]
)
def test_ema_update_accepts_correct_answers(answer, settings):
    assert "is correct" in check_ema_update(answer, **settings)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (ema_no_correction, "EMA without bias correction"),
        (ema_swapped_output, "return (ema, ema_star)"),
        (ema_swapped_beta, "β and 1 − β are swapped"),
        (ema_t_minus_one, "use beta**t (not beta**(t − 1))"),
        (ema_in_place, "modified x_t or ema_star_old in place"),
        (ema_corrects_old, "divides ema_star_old instead of the new ema_star"),
        (ema_python_list, "ema (floats, t = 1) is a list of 2 items; it should be a single number "
                          "(a float or a 0-d torch.Tensor)"),
        (ema_float64, "ema (0-d tensors, t = 3) has dtype torch.float64; it should be "
                      "torch.float32"),
        (ema_numpy_arrays, "ema (0-d tensors, t = 3) is a numpy.float32; it should be a "
                           "torch.Tensor of dtype torch.float32 and shape ()"),
    ],
)
def test_ema_update_rejects_wrong_answers(answer, message):
    with pytest.raises(CheckFailure) as info:
        check_ema_update(answer)
    assert message in str(info.value)


def test_ema_update_off_by_one_power_is_named_when_it_does_not_crash():
    def ema_t_plus_one(x_t, beta, t, ema_star_old):
        ema_star = beta * ema_star_old + (1 - beta) * x_t
        return ema_star / (1 - beta ** (t + 1)), ema_star

    with pytest.raises(CheckFailure, match=r"uses 1 − β\^\(t\+1\)"):
        check_ema_update(ema_t_plus_one)


# ================================================================================== ADAMOptimizer


class AdamFused:
    """Without ema_update: in-place lerp / addcmul on the state, state kept in a dict."""

    def __init__(self, parameters, lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.params = list(parameters)
        self.lr, self.betas, self.eps, self.wd = lr, betas, eps, weight_decay
        self.t = 0
        self.state = {id(p): (torch.zeros_like(p), torch.zeros_like(p)) for p in self.params}

    @torch.no_grad()
    def step(self):
        self.t += 1
        b1, b2 = self.betas
        for p in self.params:
            if p.grad is None:
                continue
            m, v = self.state[id(p)]
            g = p.grad.add(p, alpha=self.wd)
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v / (1 - b2**self.t)).sqrt().add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / (1 - b1**self.t))

    def zero_grad(self):
        for p in self.params:
            p.grad = None


class AdamListElements(ref.ADAMOptimizer):
    """Replaces the list entries (self.m_star[i] = ...): not in place, but the state survives."""

    @torch.no_grad()
    def step(self):
        self.t += 1
        for i, x in enumerate(self.parameters):
            if x.grad is None:
                continue
            g = x.grad + self.weight_decay * x
            m, self.m_star[i] = ref.ema_update(g, self.beta_1, self.t, self.m_star[i])
            v, self.v_star[i] = ref.ema_update(g**2, self.beta_2, self.t, self.v_star[i])
            x -= self.lr * m / (torch.sqrt(v) + self.eps)


class AdamFloat64Moments(ref.ADAMOptimizer):
    """Keeps the moments in float64 (a different rounding, the same algorithm)."""

    def __init__(self, parameters, lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(parameters, lr, betas, eps, weight_decay)
        self.m_star = [m.double() for m in self.m_star]
        self.v_star = [v.double() for v in self.v_star]

    @torch.no_grad()
    def step(self):
        self.t += 1
        for x, m_star, v_star in zip(self.parameters, self.m_star, self.v_star, strict=True):
            if x.grad is None:
                continue
            g = x.grad.double() + self.weight_decay * x.double()
            m, m_star[...] = ref.ema_update(g, self.beta_1, self.t, m_star)
            v, v_star[...] = ref.ema_update(g * g, self.beta_2, self.t, v_star)
            x -= (self.lr * m / (v.sqrt() + self.eps)).float()


class AdamTPerParameter(ref.ADAMOptimizer):
    @torch.no_grad()
    def step(self):
        for x, m_star, v_star in zip(self.parameters, self.m_star, self.v_star, strict=True):
            self.t += 1
            if x.grad is None:
                continue
            g = x.grad + self.weight_decay * x
            m, m_star[...] = ref.ema_update(g, self.beta_1, self.t, m_star)
            v, v_star[...] = ref.ema_update(g * g, self.beta_2, self.t, v_star)
            x -= self.lr * m / (v.sqrt() + self.eps)


class AdamRebindsMoments(ref.ADAMOptimizer):
    @torch.no_grad()
    def step(self):
        self.t += 1
        for x, m_star, v_star in zip(self.parameters, self.m_star, self.v_star, strict=True):
            if x.grad is None:
                continue
            g = x.grad + self.weight_decay * x
            m, m_star = ref.ema_update(g, self.beta_1, self.t, m_star)
            v, v_star = ref.ema_update(g * g, self.beta_2, self.t, v_star)
            x -= self.lr * m / (v.sqrt() + self.eps)


class AdamNoBiasCorrection(ref.ADAMOptimizer):
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


class AdamWeightDecayUnscaled(ref.ADAMOptimizer):
    @torch.no_grad()
    def step(self):
        self.t += 1
        for x, m_star, v_star in zip(self.parameters, self.m_star, self.v_star, strict=True):
            if x.grad is None:
                continue
            m, m_star[...] = ref.ema_update(x.grad, self.beta_1, self.t, m_star)
            v, v_star[...] = ref.ema_update(x.grad**2, self.beta_2, self.t, v_star)
            x -= self.lr * m / (v.sqrt() + self.eps) + self.weight_decay * x


class AdamW(ref.ADAMOptimizer):
    @torch.no_grad()
    def step(self):
        self.t += 1
        for x, m_star, v_star in zip(self.parameters, self.m_star, self.v_star, strict=True):
            if x.grad is None:
                continue
            m, m_star[...] = ref.ema_update(x.grad, self.beta_1, self.t, m_star)
            v, v_star[...] = ref.ema_update(x.grad**2, self.beta_2, self.t, v_star)
            x -= self.lr * (m / (v.sqrt() + self.eps) + self.weight_decay * x)


class AdamZeroGradDoesNothing(ref.ADAMOptimizer):
    def zero_grad(self):
        pass


class AdamNoneGradCrashes(ref.ADAMOptimizer):
    @torch.no_grad()
    def step(self):
        self.t += 1
        for x, m_star, v_star in zip(self.parameters, self.m_star, self.v_star, strict=True):
            g = x.grad + self.weight_decay * x
            m, m_star[...] = ref.ema_update(g, self.beta_1, self.t, m_star)
            v, v_star[...] = ref.ema_update(g * g, self.beta_2, self.t, v_star)
            x -= self.lr * m / (v.sqrt() + self.eps)


class AdamSwappedBetas(ref.ADAMOptimizer):
    def __init__(self, parameters, lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(parameters, lr, betas[::-1], eps, weight_decay)


class AdamTStartsAtZero(ref.ADAMOptimizer):
    @torch.no_grad()
    def step(self):
        for x, m_star, v_star in zip(self.parameters, self.m_star, self.v_star, strict=True):
            if x.grad is None:
                continue
            g = x.grad + self.weight_decay * x
            m, m_star[...] = ref.ema_update(g, self.beta_1, self.t, m_star)
            v, v_star[...] = ref.ema_update(g * g, self.beta_2, self.t, v_star)
            x -= self.lr * m / (v.sqrt() + self.eps)
        self.t += 1


ADAM_SETTINGS = [
    {},
    {"seed": 4, "shapes": ((5, 2), (3,), (2, 2, 2)), "lr": 0.02, "betas": (0.8, 0.99),
     "eps": 1e-6, "weight_decay": 0.01},
]


@pytest.mark.parametrize(
    "answer", [ref.ADAMOptimizer, AdamFused, AdamListElements, AdamFloat64Moments],
    ids=lambda c: c.__name__,
)
@pytest.mark.parametrize("settings", ADAM_SETTINGS)
def test_adam_accepts_correct_answers(answer, settings):
    assert "matches torch.optim.Adam" in check_adam_optimizer(answer, **settings)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (AdamTPerParameter, "t is advanced once per parameter instead of once per step"),
        (AdamRebindsMoments, "the moment buffers are rebound instead of updated in place"),
        (AdamNoBiasCorrection, "EMA without bias correction"),
        (AdamWeightDecayUnscaled, "weight decay is not multiplied by the learning rate"),
        (AdamW, "weight decay is decoupled (AdamW"),
        (AdamZeroGradDoesNothing, "zero_grad() does not clear the gradients"),
        (AdamNoneGradCrashes, "skip it (`if x.grad is None"),
        (AdamSwappedBetas, "β₁ and β₂ are swapped"),
        (AdamTStartsAtZero, "NaN or infinite"),
    ],
)
def test_adam_rejects_wrong_answers(answer, message):
    with pytest.raises(CheckFailure) as info:
        check_adam_optimizer(answer)
    assert message in str(info.value)


def test_adam_mistakes_are_also_caught_without_weight_decay():
    with pytest.raises(CheckFailure, match="weight_decay=0.0.*t is advanced once per parameter"):
        check_adam_optimizer(AdamTPerParameter)


# ============================================================================ MomentumSGD (T3)


class MomentumLrInVelocity:
    """The other common form: v ← μ v + η g, x ← x − v (the same steps while η is constant)."""

    def __init__(self, parameters, lr=0.01, momentum=0.9, weight_decay=0.0):
        self.params = [p for p in parameters]
        self.settings = (lr, momentum, weight_decay)
        self.state = {}

    def step(self):
        lr, mu, wd = self.settings
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad.detach() + wd * p.detach()
            self.state[i] = mu * self.state[i] + lr * g if i in self.state else lr * g
            p.data.sub_(self.state[i])

    def zero_grad(self):
        for p in self.params:
            p.grad = None


class MomentumNegativeVelocity(ref.MomentumSGD):
    """v holds the step itself, with its sign: v ← μ v − g, x ← x + η v."""

    @torch.no_grad()
    def step(self):
        for x, v in zip(self.parameters, self.velocities, strict=True):
            if x.grad is not None:
                v.mul_(self.momentum).sub_(x.grad + self.weight_decay * x)
                x.add_(self.lr * v)


class MomentumRebinds(ref.MomentumSGD):
    @torch.no_grad()
    def step(self):
        for x, v in zip(self.parameters, self.velocities, strict=True):
            if x.grad is not None:
                v = self.momentum * v + x.grad + self.weight_decay * x
                x -= self.lr * v


class MomentumDampened(ref.MomentumSGD):
    @torch.no_grad()
    def step(self):
        for x, v in zip(self.parameters, self.velocities, strict=True):
            if x.grad is not None:
                v[...] = self.momentum * v + (1 - self.momentum) * (x.grad + self.weight_decay * x)
                x -= self.lr * v


class MomentumNesterov(ref.MomentumSGD):
    @torch.no_grad()
    def step(self):
        for x, v in zip(self.parameters, self.velocities, strict=True):
            if x.grad is not None:
                g = x.grad + self.weight_decay * x
                v[...] = self.momentum * v + g
                x -= self.lr * (g + self.momentum * v)


class MomentumDecayAfter(ref.MomentumSGD):
    @torch.no_grad()
    def step(self):
        for x, v in zip(self.parameters, self.velocities, strict=True):
            if x.grad is not None:
                v[...] = self.momentum * v + x.grad
                x -= self.lr * (v + self.weight_decay * x)


class MomentumIgnoresDecay(ref.MomentumSGD):
    @torch.no_grad()
    def step(self):
        for x, v in zip(self.parameters, self.velocities, strict=True):
            if x.grad is not None:
                v[...] = self.momentum * v + x.grad
                x -= self.lr * v


class MomentumUphill(ref.MomentumSGD):
    @torch.no_grad()
    def step(self):
        for x, v in zip(self.parameters, self.velocities, strict=True):
            if x.grad is not None:
                v[...] = self.momentum * v + x.grad + self.weight_decay * x
                x += self.lr * v


class MomentumSharedVelocityShape(ref.MomentumSGD):
    """One velocity for all parameters: a crash on the first parameter of another shape."""

    def __init__(self, parameters, lr=0.01, momentum=0.9, weight_decay=0.0):
        super().__init__(parameters, lr, momentum, weight_decay)
        self.velocity = torch.zeros_like(self.parameters[0])

    @torch.no_grad()
    def step(self):
        for x in self.parameters:
            if x.grad is not None:
                self.velocity = self.momentum * self.velocity + x.grad + self.weight_decay * x
                x -= self.lr * self.velocity


class MomentumSubclassOfSGD(torch.optim.SGD):
    pass


MOMENTUM_SETTINGS = [{}, {"seed": 3, "shapes": ((4, 3), (5,)), "lr": 0.02, "momentum": 0.5,
                          "weight_decay": 0.2}]


@pytest.mark.parametrize("answer", [ref.MomentumSGD, MomentumLrInVelocity, MomentumNegativeVelocity],
                         ids=lambda c: c.__name__)
@pytest.mark.parametrize("settings", MOMENTUM_SETTINGS)
def test_momentum_accepts_correct_answers(answer, settings):
    assert "matches torch.optim.SGD with momentum" in check_momentum_sgd(answer, **settings)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (MomentumRebinds, "the steps are those of plain gradient descent, without momentum"),
        (MomentumDampened, "the velocity is an average"),
        (MomentumNesterov, "this is Nesterov's momentum"),
        (MomentumDecayAfter, "weight decay is added after the velocity"),
        (MomentumIgnoresDecay, "weight_decay is ignored"),
        (MomentumUphill, "the parameters move up the gradient"),
        (MomentumSharedVelocityShape, "MomentumSGD.step() raised RuntimeError"),
    ],
)
def test_momentum_rejects_wrong_answers(answer, message):
    with pytest.raises(CheckFailure) as info:
        check_momentum_sgd(answer)
    assert message in str(info.value)


def test_momentum_mistakes_are_named_without_weight_decay_too():
    with pytest.raises(CheckFailure, match="weight_decay=0.0.*without momentum"):
        check_momentum_sgd(MomentumRebinds)


def test_momentum_refuses_torch_optim():
    with pytest.raises(CheckFailure, match="MomentumSGD uses torch.optim.SGD: the exercise is to "
                                           "write the update yourself"):
        check_momentum_sgd(MomentumSubclassOfSGD)

    def wraps_sgd(parameters, **settings):
        return torch.optim.SGD(parameters, **settings)

    with pytest.raises(CheckFailure, match="uses torch.optim.SGD"):
        check_momentum_sgd(wraps_sgd)


# ========================================================================= shared check behaviour


class NotDone:
    def __init__(self, parameters, **kwargs):
        raise NotImplementedError()


def not_done(*args):
    raise NotImplementedError()


@pytest.mark.parametrize(
    ("check", "answer"),
    [
        (check_gradient_descent, not_done),
        (check_gradient_mean_rms, not_done),
        (check_simple_gradient_descent, NotDone),
        (check_ema_update, not_done),
        (check_adam_optimizer, NotDone),
        (check_momentum_sgd, NotDone),
    ],
)
def test_not_implemented_is_reported_as_such(check, answer, capsys):
    with pytest.raises(NotImplementedYet):
        check(answer)
    assert not self_check(check, answer)
    assert "not implemented yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("check", "answer"),
    [
        (check_gradient_descent, ref.gradient_descent),
        (check_gradient_mean_rms, ref.gradient_mean_rms),
        (check_simple_gradient_descent, ref.SimpleGradientDescent),
        (check_ema_update, ref.ema_update),
        (check_adam_optimizer, ref.ADAMOptimizer),
        (check_momentum_sgd, ref.MomentumSGD),
    ],
)
def test_correct_answers_pass_silently_on_stderr(check, answer, capsys):
    assert self_check(check, answer)
    captured = capsys.readouterr()
    assert captured.out.startswith("✅")
    assert captured.err == ""


def test_the_students_error_stays_visible(capsys):
    def broken(grads):
        return grads.mean(dim=0), undefined_name  # noqa: F821

    assert not self_check(check_gradient_mean_rms, broken)
    out = capsys.readouterr().out
    assert "NameError" in out and "undefined_name" in out and "Traceback" in out


def test_checks_leave_the_global_generator_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_simple_gradient_descent(ref.SimpleGradientDescent)
    check_ema_update(ref.ema_update)
    check_gradient_mean_rms(ref.gradient_mean_rms)
    assert torch.equal(torch.rand(3), expected)


def test_a_subclass_of_tensor_is_not_trusted():
    class Liar(torch.Tensor):
        pass

    def lying(grads):
        mean, rms = ref.gradient_mean_rms(grads)
        return mean.as_subclass(Liar), rms

    with pytest.raises(CheckFailure, match=r"Liar \(a subclass of torch.Tensor\); it should be a "
                       "torch.Tensor"):
        check_gradient_mean_rms(lying)


# ============================================================== dependencies: ADAMOptimizer → ema_update

# The solution notebook's ADAMOptimizer cell: it calls whatever ``ema_update`` the notebook defines.
ADAM_CELL = solution_sources("T2_Optimisation")["adam_optimizer"].replace("ema_update(", "{ema}(")


def notebook_adam(ema_function, name="ema_update"):
    """ADAMOptimizer defined in a notebook-like namespace whose global ``name`` is ema_function."""
    namespace = {"__name__": "__main__", "torch": torch, name: ema_function}
    exec(ADAM_CELL.replace("{ema}", name), namespace)  # noqa: S102 - the test's own source
    return namespace["ADAMOptimizer"]


def ema_unimplemented(x_t, beta, t, ema_star_old):
    raise NotImplementedError()


def test_adam_with_a_correct_ema_update_passes_and_says_so():
    summary = check_adam_optimizer(notebook_adam(ref.ema_update))
    assert "matches torch.optim.Adam" in summary and "your ema_update is correct too" in summary


def test_adam_names_a_wrong_ema_update_first():
    with pytest.raises(CheckFailure) as info:
        check_adam_optimizer(notebook_adam(ema_swapped_output))
    message = str(info.value)
    assert message.startswith("ADAMOptimizer calls your ema_update, which is not correct yet, so "
                              "ADAMOptimizer cannot be right: fix ema_update first")
    assert "Wrong EMA (floats, t = 1): the tuple is in the wrong order: return (ema, ema_star)" in message
    assert "generator" not in message and "list" not in message  # the old, wrong blame


def test_adam_waits_for_an_unimplemented_ema_update(capsys):
    with pytest.raises(NotImplementedYet, match="ADAMOptimizer calls ema_update, which is not "
                       "implemented yet: complete ema_update"):
        check_adam_optimizer(notebook_adam(ema_unimplemented))
    assert not self_check(check_adam_optimizer, notebook_adam(ema_unimplemented))
    assert capsys.readouterr().out.startswith("⏳")


def test_adam_with_a_wrong_helper_of_another_name_is_not_blamed_on_the_generator():
    """No dependency is declared for an unknown helper: the trajectory diagnosis speaks."""
    with pytest.raises(CheckFailure) as info:
        check_adam_optimizer(notebook_adam(ema_swapped_output, name="my_ema"), n_steps=10)
    message = str(info.value)
    assert "generator" not in message
    assert "does not follow the same trajectory as torch.optim" in message


# ================================================================================================
# Cheating answers (were test_cheating_optimisation.py):
# T2 and T3's MomentumSGD: answers that take a shortcut are refused by the self-check, with the
# message asserted.
# ================================================================================================

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


class MomentumByBuiltName:
    """torch.optim.SGD with momentum, found through getattr and a string built at run time."""

    def __init__(self, parameters, lr=0.01, momentum=0.9, weight_decay=0.0):
        self.inner = getattr(torch.optim, "S" + "GD")(parameters, lr=lr, momentum=momentum,
                                                     weight_decay=weight_decay)

    def step(self):
        self.inner.step()

    def zero_grad(self):
        self.inner.zero_grad()


class MomentumFunctional(ref.MomentumSGD):
    """The velocities kept by hand, the update done by torch.optim's functional sgd."""

    @torch.no_grad()
    def step(self):
        from torch.optim._functional import sgd

        with_grad = [i for i, x in enumerate(self.parameters) if x.grad is not None]
        sgd([self.parameters[i] for i in with_grad], [self.parameters[i].grad for i in with_grad],
            [None for _ in with_grad], foreach=False, weight_decay=self.weight_decay,
            momentum=self.momentum, lr=self.lr, dampening=0.0, nesterov=False, maximize=False)


class SGDWrapper:
    """Holds a torch.optim.SGD and forwards to it."""

    def __init__(self, parameters, lr=0.1, weight_decay=0.0):
        self.sgd = torch.optim.SGD(parameters, lr=lr, weight_decay=weight_decay)

    def step(self):
        self.sgd.step()

    def zero_grad(self):
        self.sgd.zero_grad()


class SGDLibrarySubclass(torch.optim.SGD):
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
        (check_gradient_descent, dlnn_helpers.optimisation_demos.descend_with_torch_sgd,
         f"gradient_descent uses torch.optim.SGD: {OPTIM}"),
        (check_simple_gradient_descent, SGDWrapper, f"SimpleGradientDescent uses torch.optim.SGD: {OPTIM}"),
        (check_simple_gradient_descent, SGDLibrarySubclass,
         f"SimpleGradientDescent uses torch.optim.SGD: {OPTIM}"),
        (check_simple_gradient_descent, torch.optim.SGD,
         f"SimpleGradientDescent uses torch.optim.SGD: {OPTIM}"),
        (check_simple_gradient_descent, SGDOnOptimizerBase,
         f"SimpleGradientDescent uses torch.optim.Optimizer: {OPTIM}"),
        (check_adam_optimizer, AdamByBuiltName, f"ADAMOptimizer uses torch.optim.Adam: {OPTIM}"),
        (check_adam_optimizer, AdamSubclass, f"ADAMOptimizer uses torch.optim.Adam: {OPTIM}"),
        (check_adam_optimizer, torch.optim.Adam, f"ADAMOptimizer uses torch.optim.Adam: {OPTIM}"),
        (check_adam_optimizer, AdamSubclassBadSignature, f"ADAMOptimizer uses torch.optim.Adam: {OPTIM}"),
        (check_adam_optimizer, AdamCreatedLazily, f"ADAMOptimizer uses torch.optim.Adam: {OPTIM}"),
        (check_momentum_sgd, MomentumByBuiltName, f"MomentumSGD uses torch.optim.SGD: {OPTIM}"),
        (check_momentum_sgd, torch.optim.SGD, f"MomentumSGD uses torch.optim.SGD: {OPTIM}"),
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


def test_the_functional_api_of_torch_optim_is_refused_for_momentum_too():
    with pytest.raises(ShortcutUsed) as info:
        check_momentum_sgd(MomentumFunctional)
    assert str(info.value).startswith("MomentumSGD uses torch.optim")


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


class MomentumReadsTheFile(ref.MomentumSGD):
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
        (check_momentum_sgd, MomentumReadsTheFile, "MomentumSGD"),
    ],
    ids=lambda v: getattr(v, "__name__", None) if callable(v) else None,
)
def test_the_course_answers_are_refused(check, answer, exercise):
    with pytest.raises(ShortcutUsed) as info:
        check(answer)
    assert str(info.value) == f"{exercise} {ANSWERS}"


# ========================================================= nothing in the student package answers


MOVED = ["gradient_descent", "SimpleGradientDescent", "gradient_mean_rms", "ema_update",
         "ADAMOptimizer", "ema_history", "MomentumSGD"]


def test_the_reference_answers_are_not_in_the_student_package():
    demos = importlib.import_module("dlnn_helpers.optimisation_demos")
    for name in MOVED:
        assert not hasattr(demos, name) and not hasattr(dlnn_helpers, name), name
    with pytest.raises(ImportError):
        exec("from dlnn_helpers.optimisation_demos import ADAMOptimizer", {})  # noqa: S102
    source = inspect.getsource(demos)
    assert "dlnn_reference" not in source


def test_the_stand_ins_fail_with_a_plain_message():
    from dlnn_helpers.optimisation_demos import precomputed_ema, precomputed_gradient_mean_rms

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
    assert DECLARED["check_momentum_sgd"] == ("MomentumSGD", ("torch.optim",))
    assert DECLARED["check_gradient_mean_rms"] == ("gradient_mean_rms", ())
    assert DECLARED["check_ema_update"] == ("ema_update", ())


# ===================================================================== the reference answers themselves
# The expected values of every check above come from these references (dlnn_reference.optimisation):
# each is held to torch.optim's or to the formulas of the tutorial here.


def _start():
    return torch.tensor(START, requires_grad=True)


def test_gradient_descent_takes_n_steps_and_clears_the_gradient():
    loss_fn = LossFunctionWithPlot()
    x = _start()
    ref.gradient_descent(loss_fn, x, torch.tensor([0.1, 0.55]), 7)
    assert len(loss_fn.track) == 7 and x.grad is None
    expected = torch.tensor(START)
    b = loss_fn.bowl
    for _ in range(7):
        y = b @ expected
        expected = expected - torch.tensor([0.1, 0.55]) * (b.T @ y / y.norm())
    assert torch.allclose(x.detach(), expected, rtol=1e-5)


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 1))


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda p: ref.SimpleGradientDescent(p, lr=0.2, weight_decay=0.01),
         lambda p: torch.optim.SGD(p, lr=0.2, weight_decay=0.01)),
        (lambda p: ref.ADAMOptimizer(p, lr=0.01, betas=(0.8, 0.99), weight_decay=1e-3),
         lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=1e-3)),
    ],
)
def test_reference_optimisers_train_a_network_like_torch(ours, theirs):
    generator = torch.Generator().manual_seed(1)
    inputs, targets = torch.randn(32, 5, generator=generator), torch.randn(32, 1, generator=generator)
    results = []
    for make in (ours, theirs):
        model = _model()
        optimiser = make(model.parameters())  # a generator, as in a training loop
        for _ in range(60):
            optimiser.zero_grad()
            torch.nn.functional.mse_loss(model(inputs), targets).backward()
            optimiser.step()  # outside torch.no_grad()
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(results[0], results[1], rtol=1e-4, atol=1e-6)


def test_optimisers_skip_parameters_without_gradient_and_zero_grad_clears():
    used = torch.ones(3, requires_grad=True)
    unused = torch.full((2,), 5.0, requires_grad=True)
    for optimiser in (ref.SimpleGradientDescent([used, unused], weight_decay=0.5),
                      ref.ADAMOptimizer([used, unused], weight_decay=0.5)):
        (used**2).sum().backward()
        optimiser.step()
        assert torch.equal(unused.detach(), torch.full((2,), 5.0))
        optimiser.zero_grad()
        assert used.grad is None


def test_adam_state_is_updated_in_place():
    x = torch.ones(4, requires_grad=True)
    optimiser = ref.ADAMOptimizer([x])
    buffers = (optimiser.m_star[0], optimiser.v_star[0])
    for _ in range(2):
        (3 * x).sum().backward()
        optimiser.step()
        optimiser.zero_grad()
    assert optimiser.m_star[0] is buffers[0] and optimiser.v_star[0] is buffers[1]
    assert optimiser.t == 2
    assert torch.allclose(buffers[0], torch.full((4,), 3 * (1 - 0.9**2)))


@pytest.mark.parametrize("beta", [0.5, 0.9, 0.999])
def test_ema_of_a_constant_series_is_that_constant_at_every_t(beta):
    star, star_tensor = 0.0, torch.zeros(2, 3)
    for t in range(1, 300):
        ema, star = ref.ema_update(-2.5, beta, t, star)
        assert ema == pytest.approx(-2.5, rel=1e-9)
        assert star == pytest.approx(-2.5 * (1 - beta**t), rel=1e-9)  # EMA* is biased to 0
        ema_tensor, star_tensor = ref.ema_update(torch.full((2, 3), 4.0), beta, t, star_tensor)
        assert torch.allclose(ema_tensor, torch.full((2, 3), 4.0), rtol=1e-4)


def test_ema_at_t_1_is_the_first_value_and_forgets_it_later():
    assert ref.ema_update(7.0, 0.9, 1, 0.0)[0] == pytest.approx(7.0)
    series = make_jump_series(random_state=3)
    ema, ema_star = ref.ema_history(series, 0.9)
    assert ema[0] == pytest.approx(float(series[0]))
    assert ema_star[0] == pytest.approx(0.1 * float(series[0]), rel=1e-5)
    assert abs(float(ema[50]) + 10.0) < 0.3  # tracks the first level
    assert abs(float(ema[-1]) - 0.5) < 1.0  # and the second, long after the jump
    assert abs(float(series.mean()) - (-4.75)) < 0.3  # while the plain mean sits in between
