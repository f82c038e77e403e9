"""Tutorial 6: linearised features of small ReLU networks on a 1-D regression problem.

The module holds

* the data: a piecewise-linear target on [0, 1] with noisy training points and a noiseless test set
  (:func:`make_relu_data`);
* the networks: one or two hidden ReLU layers whose first-layer "elbows" ``-b / w`` start uniformly
  in [0, 1] (:func:`make_relu_net`);
* fast training: :func:`train_relu_nets` trains several networks (different widths, all layers or the
  output layer only) *at once*, as one wide network whose weight matrices are block-diagonal, with a
  hand-written forward/backward pass, pre-generated minibatches and snapshots copied into
  pre-allocated tensors; :func:`train_one_net` is the plain one-model-at-a-time loop (``nn.Module``
  + ``torch.optim.SGD`` + autograd) that it replaces and is checked against;
* the figures of the linearised (gradient) features — the derivative of the output with respect to
  every parameter at every input — computed by the student's own exercises (passed in as
  ``source``) or, until those pass their self-checks, taken from the features precomputed by the
  course for the tutorial's own networks (:data:`PRECOMPUTED`); this module computes no gradient
  feature itself;
* figures and the snapshot slider (a static figure when the site is built).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from .utils import torch_threads
from .widgets import LiveFigure, interactive_figure

TARGET_FREQUENCY = 12345
"""The constant inside the sines that set the target's value at each multiple of 0.1."""


# ----------------------------------------------------------------------------------------- data


def target_function(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """The piecewise-linear target: straight segments between the points ``k / 10``.

    At ``x = k / 10`` the value is ``sin(12345 k)`` (successive values step by 12345 mod 2π ≈ 4.82
    radians along a sine wave); between two such points the function interpolates linearly.

    Parameters
    ----------
    x : array of shape (n,) or (n, 1)
        Inputs in [0, 1].

    Returns
    -------
    np.ndarray of shape (n,)
    """
    t = 10.0 * np.asarray(x, dtype=np.float64).reshape(-1)
    lower = np.floor(t)
    frac = t - lower  # written with floor and floor + 1 (not ceil) so that it is exact at k / 10
    return (1.0 - frac) * np.sin(TARGET_FREQUENCY * lower) + frac * np.sin(
        TARGET_FREQUENCY * (lower + 1.0)
    )


@dataclass
class ReluData:
    """Training and test data of tutorial 6 (float32 tensors, inputs sorted).

    Attributes
    ----------
    x_train : torch.Tensor of shape (n_train, 1)
    y_train : torch.Tensor of shape (n_train,)
        Target plus Gaussian noise.
    x_test : torch.Tensor of shape (n_train + n_grid, 1)
        The training inputs together with an even grid on [0, 1].
    y_test : torch.Tensor of shape (n_train + n_grid,)
        The noiseless target.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def make_relu_data(
    n_samples: int = 200, sigma: float = 0.1, n_grid: int = 1000, random_state: int = 1
) -> ReluData:
    """Draw the noisy training set and the noiseless test set of tutorial 6.

    Parameters
    ----------
    n_samples : int
        Number of training points, uniform on [0, 1].
    sigma : float
        Standard deviation of the label noise.
    n_grid : int
        Number of evenly spaced test points added to the training inputs.
    random_state : int
        Seed of the NumPy generator (``np.random.RandomState``); the global RNG is not touched.

    Returns
    -------
    ReluData
    """
    rng = np.random.RandomState(random_state)
    x = np.sort(rng.rand(n_samples, 1), axis=0)
    y = target_function(x) + sigma * rng.randn(n_samples)
    x_test = np.sort(np.concatenate([x, np.linspace(0.0, 1.0, n_grid)[:, None]]), axis=0)
    y_test = target_function(x_test)

    def f32(a: np.ndarray) -> torch.Tensor:
        return torch.tensor(a, dtype=torch.float32)

    return ReluData(f32(x), f32(y), f32(x_test), f32(y_test))


# -------------------------------------------------------------------------------------- networks


def make_relu_net(
    width: int, depth: int = 1, *, generator: torch.Generator | None = None
) -> nn.Sequential:
    """A ReLU network with ``depth`` hidden layers of ``width`` units, 1 input and 1 output.

    The layers start with PyTorch's default initialisation (drawn from ``generator``), then the
    first-layer biases are reset so that the elbows ``-b_i / w_i`` of the first-layer units are
    sorted and uniform in [0, 1]: every unit bends inside the interval where the data lie.

    Parameters
    ----------
    width : int
    depth : int
        Number of hidden layers (1 or more).
    generator : torch.Generator, optional
        Source of all random numbers (the global generator when None).

    Returns
    -------
    nn.Sequential
        ``Linear(1, width), ReLU, [Linear(width, width), ReLU,] ..., Linear(width, 1)``.
    """
    sizes = [1] + [width] * depth + [1]
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layer = nn.Linear(n_in, n_out)
        bound = 1.0 / math.sqrt(n_in)
        with torch.no_grad():
            layer.weight.uniform_(-bound, bound, generator=generator)
            layer.bias.uniform_(-bound, bound, generator=generator)
        layers.append(layer)
        if i < depth:
            layers.append(nn.ReLU())
    first = layers[0]
    elbows = torch.sort(torch.rand(width, generator=generator)).values
    with torch.no_grad():
        first.bias.copy_(-elbows * first.weight[:, 0])
    return nn.Sequential(*layers)


def elbows(net: nn.Sequential) -> torch.Tensor:
    """Positions ``-b_i / w_i`` where the first-layer units of ``net`` bend, shape (width,)."""
    first = net[0]
    return (-first.bias / first.weight[:, 0]).detach()


def share_near_kinks(net: nn.Sequential, tolerance: float = 0.02) -> float:
    """The share of first-layer elbows within ``tolerance`` of a kink of the target (0.1, …, 0.9)."""
    kinks = torch.arange(1, 10, dtype=torch.float32) / 10
    distance = (elbows(net)[:, None] - kinks[None, :]).abs().min(dim=1).values
    return float((distance <= tolerance).float().mean())


def _linears(net: nn.Sequential) -> list[nn.Linear]:
    layers = [m for m in net if isinstance(m, nn.Linear)]
    if len(layers) < 2 or layers[0].in_features != 1 or layers[-1].out_features != 1:
        raise ValueError("expected a ReLU network with 1 input, hidden layers and 1 output")
    return layers


# ----------------------------------------------------------------------------------- minibatches


def minibatch_indices(
    n_samples: int, batch_size: int, n_steps: int, generator: torch.Generator
) -> torch.Tensor:
    """Indices of ``n_steps`` minibatches, each a random subset (no repeats) of the training set.

    Each row has the distribution of ``torch.randperm(n_samples)[:batch_size]`` (the indices of the
    ``batch_size`` largest of ``n_samples`` uniform numbers), drawn for many steps at once.

    Returns
    -------
    torch.Tensor of shape (n_steps, batch_size), int64
    """
    keys = torch.rand(n_steps, n_samples, generator=generator)
    return torch.topk(keys, batch_size, dim=1, sorted=False).indices


# ---------------------------------------------------------------------------------------- history


@dataclass
class History:
    """Snapshots of one network during training.

    Attributes
    ----------
    steps : np.ndarray of shape (n_snapshots,)
        SGD step after which each snapshot was taken (0 is the initial network).
    params : list of torch.Tensor
        One tensor per parameter of the network (in ``net.parameters()`` order), of shape
        ``(n_snapshots, *parameter.shape)``.
    train_error, test_error : np.ndarray of shape (n_snapshots,)
        Mean squared error on the whole training set and on the noiseless test set.
    width, depth : int
    lr : float
    output_only : bool
        True when only the output layer was trained.
    seconds : float
        Wall-clock time of the training run that produced it (shared by a batched run).
    """

    steps: np.ndarray
    params: list[torch.Tensor]
    train_error: np.ndarray
    test_error: np.ndarray
    width: int
    depth: int
    lr: float
    output_only: bool
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def net_at(self, index: int = -1) -> nn.Sequential:
        """A new network holding the parameters of snapshot ``index`` (the last one by default)."""
        net = make_relu_net(self.width, self.depth, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            for p, saved in zip(net.parameters(), self.params, strict=True):
                p.copy_(saved[index])
        return net

    @property
    def label(self) -> str:
        what = "output layer only" if self.output_only else "all layers"
        return f"width {self.width}, {what}"


def _errors(
    params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor
) -> np.ndarray:
    """MSE of every snapshot at once: ``params[k]`` has shape (n_snapshots, *shape)."""
    with torch.no_grad():
        h = x.reshape(1, -1, 1)  # (1, n, 1)
        n_layers = len(params) // 2
        for i in range(n_layers):
            w, b = params[2 * i], params[2 * i + 1]
            h = torch.baddbmm(b.unsqueeze(1), h.expand(w.shape[0], -1, -1), w.transpose(1, 2))
            if i < n_layers - 1:
                h = torch.relu(h)
        return ((h[..., 0] - y.reshape(1, -1)) ** 2).mean(dim=1).double().numpy()


# --------------------------------------------------------------------------- batched training


class _WideNet:
    """Several ReLU networks of the same depth packed into one wide network.

    Each hidden layer of the wide network concatenates the hidden units of all networks, plus one
    *constant unit* per network (incoming weights 0, bias 1, so that it always outputs
    ``relu(1) = 1``); the constant unit carries the next layer's biases, which removes every bias
    add from the training step. The input is augmented with a column of ones for the first layer's
    biases. A weight matrix ``W`` of shape (fan_in, fan_out) is block-diagonal over networks; the
    matrix ``rate`` of the same shape holds ``-lr * 2 / batch_size`` on the entries that network
    trains and 0 elsewhere, so that ``W += rate * grad`` is one SGD step of every network at once and
    the off-block entries stay exactly 0. (Networks trained on the output layer only go to
    :class:`_FrozenFeatures` instead.)
    """

    def __init__(
        self,
        nets: Sequence[nn.Sequential],
        lrs: Sequence[float],
        batch_size: int,
        dtype: torch.dtype,
    ) -> None:
        layer_lists = [_linears(net) for net in nets]
        depths = {len(layers) for layers in layer_lists}
        if len(depths) != 1:
            raise ValueError("all networks trained together must have the same depth")
        self.n_nets = len(nets)
        self.n_layers = depths.pop()
        self.widths = [layers[0].out_features for layers in layer_lists]
        # offsets[l][m]: first column of network m in the output of layer l (constant unit last)
        sizes = [[w + 1 for w in self.widths]] * (self.n_layers - 1) + [[1] * self.n_nets]
        in_sizes = [[2] * self.n_nets] + sizes[:-1]  # the input [x, 1] is shared by all networks
        self.weights: list[torch.Tensor] = []
        self.rates: list[torch.Tensor] = []
        self.blocks: list[list[tuple[slice, slice]]] = []
        for li in range(self.n_layers):
            rows = 2 if li == 0 else sum(in_sizes[li])
            cols = sum(sizes[li])
            weight = torch.zeros(rows, cols, dtype=dtype)
            rate = torch.zeros(rows, cols, dtype=dtype)
            blocks = []
            r0 = c0 = 0
            for m, layers in enumerate(layer_lists):
                n_in, n_out = in_sizes[li][m], sizes[li][m]
                rs = slice(r0, r0 + n_in)
                lin = layers[li]
                last = li == self.n_layers - 1
                real = slice(c0, c0 + (n_out if last else n_out - 1))
                with torch.no_grad():
                    # rows: the previous layer's units, then its constant unit (the bias row)
                    weight[r0 : r0 + n_in - 1, real] = lin.weight.detach().T.to(dtype)
                    weight[r0 + n_in - 1, real] = lin.bias.detach().to(dtype)
                    if not last:
                        weight[r0 + n_in - 1, c0 + n_out - 1] = 1.0  # the constant unit
                rate[r0 : r0 + n_in, real] = -float(lrs[m]) * 2.0 / batch_size
                blocks.append((rs, real))
                r0, c0 = (0 if li == 0 else r0 + n_in), c0 + n_out
            self.weights.append(weight)
            self.rates.append(rate)
            self.blocks.append(blocks)

    def unpack(self, weights: Sequence[torch.Tensor], m: int) -> list[torch.Tensor]:
        """Network ``m``'s parameters (``nn.Linear`` layout) from wide weights of shape
        (..., rows, cols)."""
        out = []
        for li, w in enumerate(weights):
            rs, cs = self.blocks[li][m]
            block = w[..., rs, cs]
            out.append(block[..., :-1, :].transpose(-1, -2).contiguous())
            out.append(block[..., -1, :].contiguous())
        return out

    def step_function(
        self, batch_size: int
    ) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None]:
        """One SGD step, in place, on a minibatch given as ``(xa, xa.T, y)`` of shapes (B, 2),
        (2, B) and (B, n_nets) (the targets repeated in one column per network).

        At this size a step is bound by the cost of each tensor operation, not by arithmetic, so
        the step does as few as it can: the products are written into buffers allocated once (and
        their transposed views taken once), the error goes back through a transposed view of each
        weight matrix taken once, the targets come already repeated for every network (a
        subtraction without broadcasting), and one ``torch._foreach_addcmul_`` updates every
        layer. The numbers are those of the plain forward pass, backward pass and SGD step (fresh
        tensors, ``F.linear``, one ``addcmul_`` per layer), bit for bit.
        """
        mm, relu_, tb = torch.mm, torch.relu_, torch.ops.aten.threshold_backward
        update = torch._foreach_addcmul_
        weights, rates = self.weights, self.rates
        dtype = weights[0].dtype
        hidden = [torch.empty(batch_size, w.shape[1], dtype=dtype) for w in weights[:-1]]
        hidden_t = [h.t() for h in hidden]
        residual = torch.empty(batch_size, weights[-1].shape[1], dtype=dtype)
        weights_t = [w.t() for w in weights]
        grads = [torch.empty_like(w) for w in weights]
        if self.n_layers == 2:
            w1, w2 = weights
            w2t = weights_t[1]
            (h,), (ht,), r = hidden, hidden_t, residual
            g1, g2 = grads

            def step(xa: torch.Tensor, xat: torch.Tensor, y: torch.Tensor) -> None:
                relu_(mm(xa, w1, out=h))
                mm(h, w2, out=r).sub_(y)
                mm(ht, r, out=g2)
                mm(xat, tb(mm(r, w2t), h, 0), out=g1)
                update(weights, grads, rates)

            return step
        if self.n_layers == 3:
            w1, w2, w3 = weights
            _, w2t, w3t = weights_t
            (h1, h2), (h1t, h2t), r = hidden, hidden_t, residual
            g1, g2, g3 = grads

            def step(xa: torch.Tensor, xat: torch.Tensor, y: torch.Tensor) -> None:
                relu_(mm(xa, w1, out=h1))
                relu_(mm(h1, w2, out=h2))
                mm(h2, w3, out=r).sub_(y)
                mm(h2t, r, out=g3)
                d2 = tb(mm(r, w3t), h2, 0)
                mm(h1t, d2, out=g2)
                mm(xat, tb(mm(d2, w2t), h1, 0), out=g1)
                update(weights, grads, rates)

            return step

        def step(xa: torch.Tensor, xat: torch.Tensor, y: torch.Tensor) -> None:  # any depth
            inputs = [xa]
            for w, h in zip(weights[:-1], hidden, strict=True):
                inputs.append(relu_(mm(inputs[-1], w, out=h)))
            d = mm(inputs[-1], weights[-1], out=residual).sub_(y)
            for li in range(len(weights) - 1, -1, -1):
                mm(xat if li == 0 else hidden_t[li - 1], d, out=grads[li])
                if li > 0:
                    d = tb(mm(d, weights_t[li]), hidden[li - 1], 0)
            update(weights, grads, rates)

        return step


class _FrozenFeatures:
    """Networks trained on their output layer only: linear regression on fixed hidden features.

    The hidden layers of these networks never change, so their last hidden activations at the
    training points are computed once; a training step is then three matrix operations for all of
    them together (block-diagonal output weights, a column of ones per network for the biases).
    """

    def __init__(
        self, nets: Sequence[nn.Sequential], lrs: Sequence[float], x: torch.Tensor,
        batch_size: int, dtype: torch.dtype,
    ) -> None:
        self.nets = list(nets)
        feats, self.blocks = [], []
        rows = sum(_linears(net)[-1].in_features + 1 for net in nets)
        self.weight = torch.zeros(rows, len(nets), dtype=dtype)
        self.rate = torch.zeros(rows, len(nets), dtype=dtype)
        r0 = 0
        with torch.no_grad():
            for m, net in enumerate(nets):
                out = _linears(net)[-1]
                feats.append(net[:-1](x))
                feats.append(torch.ones(x.shape[0], 1))
                rs = slice(r0, r0 + out.in_features + 1)
                self.weight[r0 : r0 + out.in_features, m] = out.weight.detach()[0].to(dtype)
                self.weight[r0 + out.in_features, m] = out.bias.detach()[0].to(dtype)
                self.rate[rs, m] = -float(lrs[m]) * 2.0 / batch_size
                self.blocks.append(rs)
                r0 += out.in_features + 1
        self.features = torch.cat(feats, dim=1).to(dtype)  # (n, rows)

    def step_function(self, batch_size: int) -> Callable[[torch.Tensor, torch.Tensor], None]:
        """One SGD step, in place, on minibatch features ``(f, y)`` of shapes (B, rows) and
        (B, n_nets) (the targets repeated in one column per network).

        The gradient multiplies by the transposed *view* ``f.t()``: the same numbers as a
        contiguous transposed copy, without copying the gathered features a second time (for
        fifteen networks of one hidden layer that copy cost more than the steps themselves). The
        products go into buffers allocated once.
        """
        mm, w, rate = torch.mm, self.weight, self.rate
        residual = torch.empty(batch_size, w.shape[1], dtype=w.dtype)
        grad = torch.empty_like(w)

        def step(f: torch.Tensor, y: torch.Tensor) -> None:
            w.addcmul_(mm(f.t(), mm(f, w, out=residual).sub_(y), out=grad), rate)

        return step

    def unpack(self, weight: torch.Tensor, m: int) -> list[torch.Tensor]:
        """Network ``m``'s parameters, shape (n_snapshots, *shape), from output-weight snapshots."""
        n_snap = weight.shape[0]
        net = self.nets[m]
        params = [
            p.detach().to(weight.dtype).expand(n_snap, *p.shape).clone()
            for p in list(net.parameters())[:-2]
        ]
        block = weight[:, self.blocks[m], m]
        return params + [block[:, None, :-1].contiguous(), block[:, -1:].contiguous()]


class _Minibatches:
    """The minibatches of one schedule, drawn once, chunk by chunk, for all the groups that train on
    it (from two threads: whichever group first needs a chunk draws it).

    Chunk ``c`` holds the indices of steps ``c * snapshot_every`` onwards, of shape
    (min(snapshot_every, steps left), batch_size): the draws of :func:`minibatch_indices` from one
    generator seeded with ``seed``, in order.
    """

    def __init__(self, n: int, batch_size: int, n_steps: int, snapshot_every: int, seed: int) -> None:
        import threading

        self.n, self.batch_size, self.n_steps, self.every = n, batch_size, n_steps, snapshot_every
        self.generator = torch.Generator().manual_seed(seed)
        self.chunks: list[torch.Tensor] = []
        self.lock = threading.Lock()

    def chunk(self, c: int) -> torch.Tensor:
        """The indices of chunk ``c``, shape (steps, batch_size), int64."""
        with self.lock:
            while len(self.chunks) <= c:
                size = min(self.every, self.n_steps - len(self.chunks) * self.every)
                self.chunks.append(minibatch_indices(self.n, self.batch_size, size, self.generator))
            return self.chunks[c]


GATHER_STEPS = 50
"""Steps whose minibatches :func:`train_relu_nets` gathers at once."""


def train_relu_nets(
    nets: Sequence[nn.Sequential],
    data: ReluData,
    *,
    lrs: float | Sequence[float] = 0.02,
    output_only: bool | Sequence[bool] = False,
    n_steps: int = 150_000,
    batch_size: int | None = None,
    snapshot_every: int = 1000,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> list[History]:
    """Train several ReLU networks of the same depth with minibatch SGD, all at once.

    Every network sees the same sequence of minibatches. The networks trained on all layers are
    packed into one wide network with block-diagonal weights (see :class:`_WideNet`) and those
    trained on the output layer only into one linear model on their fixed hidden features, so that
    a step costs about a dozen small tensor operations whatever the number of networks. On two
    cores the two groups train side by side, one thread each, bit for bit as on one core. The
    minibatches are drawn ``snapshot_every`` steps at a time and gathered ``GATHER_STEPS`` at a
    time, and a snapshot is a copy into a pre-allocated tensor. The result is the same as training
    each network separately with ``torch.optim.SGD`` on the mean squared error
    (:func:`train_one_net`), up to rounding.

    Parameters
    ----------
    nets : sequence of nn.Sequential
        Networks from :func:`make_relu_net` (not modified), all of the same depth.
    data : ReluData
    lrs : float or sequence of float
        Learning rate of each network.
    output_only : bool or sequence of bool
        Train only the output layer of a network (its hidden layers stay at initialisation).
    n_steps : int
    batch_size : int, optional
        Minibatch size; one fifth of the training set by default.
    snapshot_every : int
        Keep the parameters every this many steps (and at step 0).
    seed : int
        Seed of the minibatch draws.
    dtype : torch.dtype
        float32 (default) or float64.

    Returns
    -------
    list of History
        One per network, in the order of ``nets``; each records the wall-clock ``seconds`` of the
        whole batched run.
    """
    import time

    n_nets = len(nets)
    lrs = [float(lrs)] * n_nets if isinstance(lrs, (int, float)) else [float(v) for v in lrs]
    if isinstance(output_only, bool):
        output_only = [output_only] * n_nets
    output_only = [bool(v) for v in output_only]
    if len(lrs) != n_nets or len(output_only) != n_nets:
        raise ValueError("give one learning rate and one output_only flag per network")
    n = data.x_train.shape[0]
    batch_size = batch_size or n // 5
    start = time.perf_counter()
    with torch_threads(1):
        return _train_packed(nets, data, lrs, output_only, n_steps, batch_size, snapshot_every,
                             seed, dtype, start)


def _train_packed(
    nets: Sequence[nn.Sequential], data: ReluData, lrs: list[float], output_only: list[bool],
    n_steps: int, batch_size: int, snapshot_every: int, seed: int, dtype: torch.dtype,
    start: float,
) -> list[History]:
    """The body of :func:`train_relu_nets` (run with one torch thread)."""
    import time
    from concurrent.futures import Future, ThreadPoolExecutor, as_completed

    n_nets, n = len(nets), data.x_train.shape[0]
    full = [m for m in range(n_nets) if not output_only[m]]
    frozen = [m for m in range(n_nets) if output_only[m]]
    cores = available_cores()
    # a group: (its step function, the rows its minibatches are gathered from, the weights it
    # trains, whether its step takes the transposed minibatch too), the networks it holds, and how
    # to unpack the parameters of its j-th network from its snapshots
    groups: list[tuple[tuple, list[int], Callable[[list[torch.Tensor], int], list[torch.Tensor]]]]
    groups = []
    y_all = data.y_train.reshape(-1, 1).to(dtype)
    inputs = torch.cat([data.x_train, torch.ones(n, 1)], dim=1).to(dtype)
    if full:
        wide = _WideNet([nets[m] for m in full], [lrs[m] for m in full], batch_size, dtype)
        groups.append(((wide.step_function(batch_size), inputs, wide.weights, True), full,
                       wide.unpack))
    if frozen:
        lin = _FrozenFeatures(
            [nets[m] for m in frozen], [lrs[m] for m in frozen], data.x_train, batch_size, dtype
        )
        groups.append(((lin.step_function(batch_size), lin.features, [lin.weight], False), frozen,
                       lambda snaps, j, lin=lin: lin.unpack(snaps[0], j)))
    schedule = (batch_size, n_steps, snapshot_every, _Minibatches(n, batch_size, n_steps,
                                                                  snapshot_every, seed))

    def train(share: list) -> list[tuple[list[torch.Tensor], int]]:
        return [_train_group(*group[0], y_all, schedule) for group in share]

    def unpacked(share: list, trained: list) -> dict[int, list[torch.Tensor]]:
        found = {}
        for (_, members, unpack), (snaps, k) in zip(share, trained, strict=True):
            for j, m in enumerate(members):
                found[m] = [p.float() for p in unpack([s[:k] for s in snaps], j)]
        return found

    def errors(params: list[torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
        return (_errors(params, data.x_train, data.y_train),
                _errors(params, data.x_test, data.y_test))

    params_of: dict[int, list[torch.Tensor]] = {}
    if len(groups) >= 2 and cores >= 2:
        # two cores, one thread each: the first group on one, the others one after the other on
        # the other; the errors of a group's snapshots are computed as soon as it has trained, on
        # whichever core is free (on the same one thread per core: the same bits)
        with ThreadPoolExecutor(max_workers=2) as pool:
            shares = {pool.submit(train, share): share for share in (groups[:1], groups[1:])}
            pending: dict[int, Future] = {}
            for future in as_completed(shares):
                found = unpacked(shares[future], future.result())
                params_of.update(found)
                pending.update({m: pool.submit(errors, p) for m, p in found.items()})
            seconds = time.perf_counter() - start
            errors_of = {m: future.result() for m, future in pending.items()}
    else:
        params_of = unpacked(groups, train(groups))
        seconds = time.perf_counter() - start
        errors_of = {m: errors(params_of[m]) for m in range(n_nets)}
    steps = np.arange(params_of[0][0].shape[0]) * snapshot_every
    return [
        History(
            steps=steps,
            params=params_of[m],
            train_error=errors_of[m][0],
            test_error=errors_of[m][1],
            width=_linears(nets[m])[0].out_features,
            depth=len(_linears(nets[m])) - 1,
            lr=lrs[m],
            output_only=output_only[m],
            seconds=seconds,
        )
        for m in range(n_nets)
    ]


def available_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _train_group(
    step: Callable[..., None], source: torch.Tensor, weights: list[torch.Tensor],
    transposed: bool, y_all: torch.Tensor, schedule: tuple[int, int, int, _Minibatches],
) -> tuple[list[torch.Tensor], int]:
    """Train one packed group (all layers, or output layers only) through the whole schedule.

    ``step`` updates ``weights`` in place from a minibatch of rows of ``source`` (n, k), called as
    ``step(x, x.T, y)`` when ``transposed`` (a contiguous copy of the transpose) and ``step(x, y)``
    otherwise, where ``y`` (B, n_nets) repeats the targets ``y_all`` (n, 1) once per column of the
    last weight matrix; the minibatches come from the schedule's :class:`_Minibatches`, the same
    for every group (drawn once). Runs in inference mode (no autograd bookkeeping on any tensor).
    Returns the snapshots of ``weights``, each of shape (n_snapshots, *shape), and their number.
    """
    batch_size, n_steps, snapshot_every, minibatches = schedule
    n_snap = n_steps // snapshot_every + 1
    snaps = [torch.empty((n_snap, *w.shape), dtype=w.dtype) for w in weights]
    for s, w in zip(snaps, weights, strict=True):
        s[0].copy_(w)
    targets = y_all.expand(-1, weights[-1].shape[1]).contiguous()
    done, k = 0, 1
    with torch.inference_mode(), torch_threads(1):
        while done < n_steps:
            chunk = min(snapshot_every, n_steps - done)
            idx = minibatches.chunk(done // snapshot_every)
            # gathered GATHER_STEPS steps at a time: a block that stays in the cache (a whole chunk
            # of wide features is tens of MB, and gathering it costs more than the steps)
            for first in range(0, chunk, GATHER_STEPS):
                rows = idx[first : first + GATHER_STEPS].reshape(-1)
                steps = rows.shape[0] // batch_size
                inputs = source.index_select(0, rows).view(steps, batch_size, -1)
                parts = [inputs.unbind(0), targets.index_select(0, rows).view(steps, batch_size, -1)
                         .unbind(0)]
                if transposed:
                    parts.insert(1, inputs.transpose(1, 2).contiguous().unbind(0))
                for args in zip(*parts, strict=True):
                    step(*args)
            done += chunk
            if chunk == snapshot_every:
                for s, w in zip(snaps, weights, strict=True):
                    s[k].copy_(w)
                k += 1
    return snaps, k


def final_parameters(
    nets: Sequence[nn.Sequential],
    data: ReluData,
    **settings,
) -> list[list[torch.Tensor]]:
    """Parameters of each network after :func:`train_relu_nets` (same keyword arguments)."""
    return [[p[-1] for p in h.params] for h in train_relu_nets(nets, data, **settings)]


def train_one_net(
    net: nn.Sequential,
    data: ReluData,
    *,
    lr: float = 0.02,
    output_only: bool = False,
    n_steps: int = 150_000,
    batch_size: int | None = None,
    snapshot_every: int = 1000,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> list[torch.Tensor]:
    """The straightforward loop: one network, autograd, a plain SGD step, one step at a time.

    Uses exactly the minibatches of :func:`train_relu_nets` with the same ``seed``; kept as the
    reference that the batched trainer is tested and benchmarked against. Snapshots are deep copies
    of the state every ``snapshot_every`` steps, as a plain training loop would take them.  Each
    step moves every trained parameter by ``lr`` times its gradient, downhill, in place: what
    ``torch.optim.SGD`` does (without momentum or weight decay) to the last bit; it is written out
    because the first ``torch.optim`` optimiser of a session imports torch's compiler, which takes
    seconds (longer than the few hundred steps the tutorial times, and the timing would count it).

    Returns
    -------
    list of torch.Tensor
        The trained parameters (``net`` itself is trained in place).
    """
    import copy

    net.to(dtype)
    n = data.x_train.shape[0]
    batch_size = batch_size or n // 5
    x_all = data.x_train.to(dtype)
    y_all = data.y_train.reshape(-1, 1).to(dtype)
    layers = _linears(net)
    params = list(layers[-1].parameters()) if output_only else list(net.parameters())
    loss_fn = nn.MSELoss()
    generator = torch.Generator().manual_seed(seed)
    snapshots = [copy.deepcopy(net.state_dict())]
    done = 0
    while done < n_steps:
        chunk = min(snapshot_every, n_steps - done)
        idx = minibatch_indices(n, batch_size, chunk, generator)
        for t in range(chunk):
            batch = idx[t]
            loss = loss_fn(net(x_all[batch]), y_all[batch])
            for p in net.parameters():
                p.grad = None
            loss.backward()
            with torch.no_grad():
                for p in params:
                    p.add_(p.grad, alpha=-lr)
        done += chunk
        snapshots.append(copy.deepcopy(net.state_dict()))
    return [p.detach().clone() for p in net.parameters()]


# ---------------------------------------------------------------------------- gradient features

STAGES = {"initial": 0, "trained": -1}
"""The snapshots whose features the tutorial shows: at initialisation and after training."""

SVD_GRID = torch.linspace(0.0, 1.0, 400)[:, None]
"""The grid on which the principal features are drawn as functions of x."""

N_PRINCIPAL = 6
"""How many leading principal features the figures draw."""

PRECOMPUTED_PATH = Path(__file__).parent / "data" / "relu_features.npz"
"""The features of the tutorial's own networks, precomputed by the course (the solution notebook's
full run) for the figures, until a student's own exercises pass their self-checks."""


@dataclass
class Spectrum:
    """The singular values of a feature matrix and its leading principal features on a grid.

    Attributes
    ----------
    s : torch.Tensor of shape (r,)
        Singular values of the feature matrix at the training points, largest first.
    curves : torch.Tensor of shape (len(grid), N_PRINCIPAL)
        The leading principal features as functions of x: the features on the grid times the
        right singular vectors ``V`` (``U diag(s) = Φ V`` at the training points).
    grid : torch.Tensor of shape (len(grid), 1)
    """

    s: torch.Tensor
    curves: torch.Tensor
    grid: torch.Tensor


class Precomputed:
    """Features of the tutorial's own networks, precomputed by the course and shipped as data.

    They stand in for a student's exercises in the figures until those pass their self-checks, for
    the networks of the tutorial's full run only (looked up by depth, width and stage; there is no
    network to compute anything from).
    """

    def __init__(self, path: Path = PRECOMPUTED_PATH) -> None:
        self.path = Path(path)

    @staticmethod
    def key(kind: str, run: History, stage: str) -> str:
        """The name of an array: ``first`` (∂y/∂b₁ at the training points), ``second`` (∂y/∂b₂),
        ``s`` or ``curves`` (a :class:`Spectrum`), for ``run``'s depth and width at ``stage``."""
        return f"{kind}-depth{run.depth}-width{run.width}-{stage}"

    def array(self, kind: str, run: History, stage: str) -> torch.Tensor:
        """The precomputed array (float32)."""
        name = self.key(kind, run, stage)
        with np.load(self.path, allow_pickle=False) as arrays:
            if name not in arrays.files:
                raise KeyError(f"no precomputed {kind} features for {run.label}, depth {run.depth}, "
                               f"{stage} (only the tutorial's own networks have them)")
            return torch.tensor(arrays[name].astype(np.float32))

    def __repr__(self) -> str:
        return "the features precomputed by the course for the tutorial's networks"


PRECOMPUTED = Precomputed()
"""The stand-in for the gradient exercises in the figures (see :class:`Precomputed`)."""

FeatureSource = Callable[[nn.Module, torch.Tensor], object] | Precomputed


def first_layer_features(
    run: History, stage: str, x: torch.Tensor, source: FeatureSource
) -> tuple[torch.Tensor, torch.Tensor]:
    """∂y/∂w₁ and ∂y/∂b₁ of ``run``'s network at ``stage`` and the points ``x``, each (n, width).

    Parameters
    ----------
    run : History
    stage : str
        ``"initial"`` or ``"trained"`` (:data:`STAGES`).
    x : torch.Tensor of shape (n, 1)
        The training inputs.
    source : callable or Precomputed
        Your ``ex_first_layer_gradients`` (returns ``(grad_w, grad_b)``) or your
        ``ex_feature_matrix`` (returns the feature matrix, whose first columns are the first
        layer's), or :data:`PRECOMPUTED`.
    """
    if isinstance(source, Precomputed):
        grad_b = source.array("first", run, stage)
        return grad_b * x, grad_b  # the first layer's input is x: ∂y/∂w₁ = ∂y/∂b₁ · x
    result = source(run.net_at(STAGES[stage]), x)
    if isinstance(result, torch.Tensor):
        return result[:, : run.width].detach(), result[:, run.width : 2 * run.width].detach()
    grad_w, grad_b = result
    return grad_w.detach().reshape(x.shape[0], -1), grad_b.detach()


def second_layer_bias_features(
    run: History, stage: str, x: torch.Tensor, source: FeatureSource
) -> torch.Tensor:
    """∂y/∂b₂ (n, width) of a two-hidden-layer ``run`` at ``stage``, from your
    ``ex_second_layer_gradients`` or :data:`PRECOMPUTED`."""
    if isinstance(source, Precomputed):
        return source.array("second", run, stage)
    return source(run.net_at(STAGES[stage]), x)[1].detach()


def spectrum(run: History, stage: str, x: torch.Tensor, source: FeatureSource) -> Spectrum:
    """The singular values of ``run``'s feature matrix at ``stage`` and the points ``x``, and its
    :data:`N_PRINCIPAL` leading principal features on :data:`SVD_GRID`.

    Parameters
    ----------
    run : History
    stage : str
        ``"initial"`` or ``"trained"``.
    x : torch.Tensor of shape (n, 1)
        The training inputs.
    source : callable or Precomputed
        Your ``ex_feature_matrix``, or :data:`PRECOMPUTED`.
    """
    if isinstance(source, Precomputed):
        return Spectrum(source.array("s", run, stage), source.array("curves", run, stage), SVD_GRID)
    net = run.net_at(STAGES[stage])
    _, s, vh = torch.linalg.svd(source(net, x).detach(), full_matrices=False)
    curves = source(net, SVD_GRID).detach() @ vh[:N_PRINCIPAL].T
    return Spectrum(s, curves, SVD_GRID)


# ---------------------------------------------------------------------------------------- figures


def plot_relu_data(data: ReluData, ax: plt.Axes | None = None, *, legend: bool = True) -> plt.Axes:
    """Training points and the noiseless target (with a legend unless ``legend`` is false: for a
    caller that draws more and then its own legend)."""
    ax = ax or plt.subplots(figsize=(7, 4))[1]
    ax.scatter(data.x_train[:, 0], data.y_train, s=14, c="darkorange", label="training data")
    ax.plot(data.x_test[:, 0], data.y_test, "--", c="royalblue", label="target")
    ax.set(xlim=(0, 1), ylim=(-2.5, 2.5), xlabel="x", ylabel="y")
    if legend:
        ax.legend(loc="upper right")
    return ax


def plot_network_function(
    net: nn.Sequential, data: ReluData, ax: plt.Axes | None = None, title: str = ""
) -> plt.Axes:
    """The data, the network's function and the positions of its first-layer elbows."""
    ax = plot_relu_data(data, ax, legend=False)
    with torch.no_grad():
        pred = net(data.x_test)[:, 0]
    ax.plot(data.x_test[:, 0], pred, c="forestgreen", lw=2, label="network")
    e = elbows(net).numpy()
    inside = (e >= 0) & (e <= 1)
    ax.scatter(e[inside], np.zeros(inside.sum()), marker="|", s=120, c="grey", label="elbows")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title)
    return ax


def plot_errors(histories: Sequence[History], title: str = "") -> None:
    """Training and test MSE against SGD steps for several runs (log scale)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for h in histories:
        (line,) = ax.plot(h.steps / 1e3, h.test_error, label=f"{h.label}: test")
        ax.plot(h.steps / 1e3, h.train_error, ":", c=line.get_color(), label=f"{h.label}: train")
    ax.set(yscale="log", xlabel="SGD steps (thousands)", ylabel="MSE", title=title)
    ax.legend(fontsize=7, ncol=2)
    plt.show()


def final_test_errors(histories: Sequence[History]) -> dict[int, np.ndarray]:
    """The final test MSE of each run, grouped by width (widths in order of first appearance).

    Returns
    -------
    dict mapping int to np.ndarray of shape (n_runs_of_that_width,)
    """
    errors: dict[int, list[float]] = {}
    for h in histories:
        errors.setdefault(h.width, []).append(float(h.test_error[-1]))
    return {width: np.array(values) for width, values in errors.items()}


def plot_width_comparison(all_layers: Sequence[History], output_only: Sequence[History]) -> None:
    """Final test MSE against width: one dot per run, a line through the medians of each width."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for runs, label, color, shift in [(all_layers, "all layers", "tab:green", -0.03),
                                      (output_only, "output layer only", "tab:purple", 0.03)]:
        errors = final_test_errors(runs)
        widths = np.array(list(errors))
        for width, values in errors.items():
            ax.scatter(np.full(len(values), width * (1 + shift)), values, s=18, c=color, alpha=0.6)
        ax.plot(widths, [np.median(v) for v in errors.values()], "o-", c=color, lw=2,
                label=f"{label} (median)")
    ax.set(xscale="log", yscale="log", xlabel="width (hidden units)", ylabel="final test MSE",
           title="Each initialisation (dots) and the median (line)")
    ax.set_xticks(widths, [str(w) for w in widths])
    ax.minorticks_off()
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.show()


def plot_final_fits(
    all_layers: Sequence[History], output_only: Sequence[History], data: ReluData
) -> None:
    """The final function and elbows of each run: all layers trained (top row) against output layer
    only (bottom row), one column per run (e.g. per width)."""
    n = len(all_layers)
    fig, axes = plt.subplots(2, n, figsize=(4.2 * n, 6.6), sharex=True, sharey=True, squeeze=False)
    for row, runs in enumerate([all_layers, output_only]):
        for ax, h in zip(axes[row], runs, strict=True):
            plot_network_function(h.net_at(-1), data, ax,
                                  f"{h.label}\ntest MSE {h.test_error[-1]:.4f}")
            ax.title.set_fontsize(9)
            ax.get_legend().remove()
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    plt.show()


def plot_gradient_features(
    x: torch.Tensor, grads: torch.Tensor, ax: plt.Axes | None = None, title: str = ""
) -> plt.Axes:
    """Each column of ``grads`` (shape (n, k)) as a function of ``x`` (shape (n, 1))."""
    ax = ax or plt.subplots(figsize=(5, 3.5))[1]
    ax.plot(x[:, 0].numpy(), grads.detach().reshape(x.shape[0], -1).numpy(), lw=1)
    ax.set(xlabel="x", title=title)
    return ax


def plot_first_layer_features(x: torch.Tensor, run: History, source: FeatureSource) -> None:
    """∂y/∂w and ∂y/∂b of the first layer of ``run``'s network at initialisation and after training
    (2 × 2 panels), from ``source`` (see :func:`first_layer_features`)."""
    fig, axes = plt.subplots(2, 2, figsize=(10, 6), sharex=True)
    for col, stage in enumerate(STAGES):
        when = "at initialisation" if stage == "initial" else "after training"
        gw, gb = first_layer_features(run, stage, x, source)
        plot_gradient_features(x, gw, axes[0, col], f"∂y/∂w₁ ({when})")
        plot_gradient_features(x, gb, axes[1, col], f"∂y/∂b₁ ({when})")
    fig.suptitle(f"First-layer gradient features, width {run.width}")
    fig.tight_layout()
    plt.show()


def plot_second_layer_features(x: torch.Tensor, run: History, source: FeatureSource) -> None:
    """∂y/∂b of the second hidden layer of ``run``'s network at initialisation and after training
    (1 × 2 panels), from ``source`` (see :func:`second_layer_bias_features`)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.3), sharex=True)
    for ax, stage in zip(axes, STAGES, strict=True):
        when = "at initialisation" if stage == "initial" else "after training"
        plot_gradient_features(x, second_layer_bias_features(run, stage, x, source), ax,
                               f"∂y/∂b₂ ({when})")
    fig.suptitle(f"Second-layer bias features, width {run.width}")
    fig.tight_layout()
    plt.show()


def plot_svd(spectra: dict[str, Spectrum]) -> None:
    """Singular values (log scale) and the leading principal features of each :class:`Spectrum`.

    The principal features ``U diag(s) = Φ V`` are drawn as functions of x: the features on the
    grid multiplied by the same ``V`` (see :func:`spectrum`).
    """
    if not isinstance(spectra, Mapping) or not 1 <= len(spectra) <= 12:
        raise ValueError("plot_svd draws one panel per spectrum: give a dict of 1 to 12 "
                         "{label: Spectrum} (as spectrum returns)")
    fig, axes = plt.subplots(1 + len(spectra), 1, figsize=(8, 2.4 * (1 + len(spectra))))
    for i, (label, found) in enumerate(spectra.items()):
        axes[0].semilogy(np.arange(1, len(found.s) + 1), found.s.numpy(), "o-", ms=3, label=label)
        axes[i + 1].plot(found.grid[:, 0].numpy(), found.curves.numpy())
        axes[i + 1].set(title=f"{label}: first {found.curves.shape[1]} principal features",
                        xlabel="x")
    axes[0].set(xlabel="index k", ylabel="singular value", title="Singular values")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    plt.show()


def _snapshot_figure(histories: Sequence[History], data: ReluData, index: int) -> plt.Figure:
    """One panel per run: its function, elbows and errors at snapshot ``index``."""
    steps = histories[0].steps
    fig, axes = plt.subplots(1, len(histories), figsize=(4.2 * len(histories), 3.6))
    for ax, h in zip(np.atleast_1d(axes), histories, strict=True):
        title = (
            f"{h.label}\nstep {steps[index]:,}: train {h.train_error[index]:.3f}, "
            f"test {h.test_error[index]:.3f}"
        )
        plot_network_function(h.net_at(index), data, ax, title)
        ax.title.set_fontsize(9)
    fig.tight_layout()
    return fig


def snapshot_slider(
    histories: Sequence[History], data: ReluData, default: int = -1, *, display: bool = True
) -> LiveFigure | None:
    """A slider over the snapshots: each run's function, elbows and errors at that step.

    Drawn through the course's one widget mechanism, :func:`dlnn_helpers.widgets.interactive_figure`:
    the slider redraws a PNG in an ``ipywidgets.Image`` (no ``Output`` capture, which can stall
    headless execution). When :func:`dlnn_helpers.course.static_figures` is true (the site, the
    notebook tests, autograding) it draws the snapshot ``default`` (the last one) as an ordinary
    figure instead.

    Parameters
    ----------
    histories : sequence of History
        Runs with the same snapshot steps, one panel each.
    data : ReluData
    default : int
        Index of the snapshot shown first (negative counts from the end).
    display : bool
        Display the widget (default) or return it undisplayed, for tests.

    Returns
    -------
    dlnn_helpers.widgets.LiveFigure or None
    """
    steps = histories[0].steps

    def draw(step: int) -> plt.Figure:
        return _snapshot_figure(histories, data, int(np.searchsorted(steps, step)))

    def controls() -> dict:
        import ipywidgets as widgets

        slider = widgets.SelectionSlider(
            options=[int(s) for s in steps], value=int(steps[int(default % len(steps))]),
            description="SGD step", continuous_update=False, layout=widgets.Layout(width="90%"),
        )
        return {"step": slider}

    return interactive_figure(draw, {"step": int(steps[int(default % len(steps))])}, controls,
                              display=display)
