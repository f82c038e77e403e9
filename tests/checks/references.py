"""Reference answers of the graded exercises, for the tests of the checks only.

The tests keep their own copies (the answers of the solution notebooks), so that they do not depend
on where, or whether, the course package ships reference implementations.
"""

from __future__ import annotations

import torch

# ------------------------------------------------------------------------------------------- T2


def gradient_descent(loss_fn, x, learning_rate, n_steps):
    for _ in range(n_steps):
        loss = loss_fn(x)
        loss.backward()
        with torch.no_grad():
            x -= learning_rate * x.grad
        x.grad = None


class SimpleGradientDescent:
    def __init__(self, parameters, lr=0.1, weight_decay=0.0):
        self.lr = lr
        self.weight_decay = weight_decay
        self.parameters = list(parameters)

    def step(self):
        with torch.no_grad():
            for x in self.parameters:
                if x.grad is None:
                    continue
                x -= self.lr * (x.grad + self.weight_decay * x)

    def zero_grad(self):
        for x in self.parameters:
            x.grad = None


def gradient_mean_rms(grads):
    return grads.mean(dim=0), grads.pow(2).mean(dim=0).sqrt()


def ema_update(x_t, beta, t, ema_star_old):
    ema_star = beta * ema_star_old + (1 - beta) * x_t
    return ema_star / (1 - beta**t), ema_star


class ADAMOptimizer:
    def __init__(self, parameters, lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.lr = lr
        self.beta_1, self.beta_2 = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.t = 0
        self.parameters = list(parameters)
        self.m_star = [torch.zeros_like(x) for x in self.parameters]
        self.v_star = [torch.zeros_like(x) for x in self.parameters]

    def step(self):
        self.t += 1
        with torch.no_grad():
            for x, m_star, v_star in zip(self.parameters, self.m_star, self.v_star, strict=True):
                if x.grad is None:
                    continue
                g = x.grad + self.weight_decay * x
                m, m_star[...] = ema_update(g, self.beta_1, self.t, m_star)
                v, v_star[...] = ema_update(g**2, self.beta_2, self.t, v_star)
                x -= self.lr * m / (v.sqrt() + self.eps)

    def zero_grad(self):
        for x in self.parameters:
            x.grad = None


# ------------------------------------------------------------------------------------------- T6


def gradient_features(model, x):
    """``{name: ∂y(x_k)/∂θ}`` with a leading axis over the points (torch.func)."""
    params = {name: p.detach() for name, p in model.named_parameters()}

    def output(p, point):
        return torch.func.functional_call(model, p, (point.unsqueeze(0),)).squeeze()

    return torch.func.vmap(torch.func.grad(output), in_dims=(None, 0))(params, x)


def first_layer_gradients(model, x):
    grads = gradient_features(model, x)
    return grads["0.weight"].reshape(len(x), -1), grads["0.bias"]


def feature_matrix(model, x):
    return torch.cat([g.reshape(len(x), -1) for g in gradient_features(model, x).values()], dim=1)


def principal_features(features):
    u, s, _ = torch.linalg.svd(features, full_matrices=False)
    return s, u * s


# ------------------------------------------------------------------------------------------- T5


def linear_forward(x, weight, bias):
    return x @ weight.T + bias


def linear_backward(grad_out, x, weight):
    return grad_out @ weight, grad_out.T @ x, grad_out.sum(dim=0)


def relu_forward(x):
    return torch.clamp(x, min=0.0)


def relu_backward(grad_out, x):
    return grad_out * (x > 0)


def mse_forward(pred, target):
    return ((pred - target) ** 2).mean()


def mse_backward(pred, target):
    return 2 * (pred - target) / pred.numel()
