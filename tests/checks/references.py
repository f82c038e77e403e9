"""Reference answers of the graded exercises, for the tests of the checks only.

The tests keep their own copies (the answers of the solution notebooks), so that they do not depend
on where, or whether, the course package ships reference implementations.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

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


# ------------------------------------------------------------------------------------------- T1


def initializer_(model, gamma=1e-12):
    for weight in model.parameters():
        n_out, n_in = weight.shape
        nn.init.normal_(weight, mean=0.0, std=gamma / math.sqrt(n_in + n_out))


def net_svd(model, in_dim):
    w_tot = torch.eye(in_dim)
    for weight in model.parameters():
        w_tot = weight.detach() @ w_tot
    u, s, vh = torch.linalg.svd(w_tot, full_matrices=False)
    return u, s, vh.mT


def net_rsm(h):
    return h @ h.T


def linear_regression(X, Y):
    return Y @ X.T @ np.linalg.inv(X @ X.T)


# ------------------------------------------------------------------------------------------- T3


def mlp(input_size, hidden_dims, n_layers=3, activation=nn.ReLU):
    layers, width = [], input_size
    for _ in range(n_layers - 1):
        layers += [nn.Linear(width, hidden_dims), activation()]
        width = hidden_dims
    return nn.Sequential(*layers, nn.Linear(width, 1), nn.Sigmoid())


def batchnorm_mlp(input_size, hidden_dims, n_layers=6):
    layers = [nn.Linear(input_size, hidden_dims), nn.ReLU(), nn.BatchNorm1d(hidden_dims)]
    for _ in range(n_layers - 3):
        layers += [nn.Linear(hidden_dims, hidden_dims), nn.ReLU()]
    layers += [nn.Linear(hidden_dims, hidden_dims), nn.ReLU(), nn.BatchNorm1d(hidden_dims),
               nn.Linear(hidden_dims, 1), nn.Sigmoid()]
    return nn.Sequential(*layers)


class ResidualSequence(nn.Sequential):
    def forward(self, x):
        return super().forward(x) + x


def residual_net(input_size, hidden_dims, fan_out_dims, n_blocks, batchnorm=False):
    layers = [nn.Linear(input_size, hidden_dims)]
    for _ in range(n_blocks):
        first = nn.BatchNorm1d(hidden_dims) if batchnorm else nn.ReLU()
        layers.append(ResidualSequence(first, nn.Linear(hidden_dims, fan_out_dims), nn.ReLU(),
                                       nn.Linear(fan_out_dims, hidden_dims)))
    if batchnorm:
        layers.append(nn.BatchNorm1d(hidden_dims))
    return nn.Sequential(*layers, nn.Linear(hidden_dims, 1), nn.Sigmoid())


def tiny_rule(grids):
    """The tiny task's rule: the parity of the four centre pixels plus the AND of three corners."""
    total = grids[:, 2, 2] + grids[:, 2, 3] + grids[:, 3, 2] + grids[:, 3, 3]
    total = total + grids[:, 0, 0] * grids[:, 0, 5] * grids[:, 5, 5]
    return total % 2


class MomentumSGD:
    def __init__(self, parameters, lr=0.01, momentum=0.9, weight_decay=0.0):
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.parameters = list(parameters)
        self.velocities = [torch.zeros_like(x) for x in self.parameters]

    def step(self):
        with torch.no_grad():
            for x, v in zip(self.parameters, self.velocities, strict=True):
                if x.grad is None:
                    continue
                v[...] = self.momentum * v + x.grad + self.weight_decay * x
                x -= self.lr * v

    def zero_grad(self):
        for x in self.parameters:
            x.grad = None


# ------------------------------------------------------------------------------------------- T4


def zero_weights(n_in, n_out):
    return torch.zeros(n_in, n_out)


def random_weights(n_in, n_out, scale=0.01):
    return torch.randn(n_in, n_out) * scale


def lecun_weights(n_in, n_out):
    return torch.randn(n_in, n_out) / math.sqrt(n_in)


def he_weights(n_in, n_out):
    return torch.randn(n_in, n_out) * math.sqrt(2.0 / n_in)


class Supervise(nn.Module):
    """A network with its loss (course infrastructure, as in the tutorials)."""

    def __init__(self, criterion, net):
        super().__init__()
        self.net = net
        self.criterion = criterion

    def forward(self, x, y):
        return self.criterion(self.net(x).squeeze(-1), y)


class SuperviseRandomWeights(Supervise):
    def __init__(self, criterion, net):
        super().__init__(criterion, net)
        for module in self.net.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=0.01)


class SuperviseKaimingWeights(SuperviseRandomWeights):
    def __init__(self, criterion, net):
        super().__init__(criterion, net)
        for module in self.net.modules():
            if isinstance(module, nn.Linear):
                nn.init.kaiming_normal_(module.weight)
