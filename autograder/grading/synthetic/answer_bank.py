"""The synthetic class's answers, every tutorial's, in one place.

* :func:`reference` — the reference answers: the solution cells of ``solutions/<ID>/<ID>.ipynb``
  (markers removed), read from the source rather than copied (the registry's reference answers,
  ``dlnn_reference``, are the same solutions as functions);
* :data:`ALTERNATIVE` — for every tutorial, a correct answer to every exercise written apart from
  the reference: each takes another route (other torch calls, analytic gradients instead of
  ``torch.func``, another base class), so that a grader that only recognises the reference's own
  code, or a check that only accepts it, fails the grading tests;
* :data:`WRONG` — common mistakes (every exercise of tutorial 1; the optimisers and classes of the
  others); :data:`LIBRARY` — optimisers that hand the work to ``torch.optim``.

``ALTERNATIVE[tutorial]`` and ``WRONG[tutorial]`` map a solution cell's grade id to the code put in
it.  The demo class (:func:`autograder.grading.synthetic.write_demo_class`), the benchmark and the
grading tests are all written from here; a test holds every graded solution cell of every tutorial
to having an alternative answer.
"""

from __future__ import annotations

import nbformat

from courselayout import course_layout

T1 = "T1_DeepLinearNetworks"
T2 = "T2_Optimisation"
T3 = "T3_TrainingDeepNetworks"
T4 = "T4_WeightInitialisation"
T5 = "T5_MultilayerPerceptrons"
T6 = "T6_ReLUFeatures"

ALTERNATIVE: dict[str, dict[str, str]] = {
    T1: {
        "ex_initializer": '''def ex_initializer_(model, gamma=1e-12):
    for weight in model.parameters():
        n_out, n_in = weight.shape
        with torch.no_grad():
            weight.normal_(0.0, gamma / (n_in + n_out) ** 0.5)''',
        "ex_net_svd": '''def ex_net_svd(model, in_dim):
    W_tot = torch.eye(in_dim)
    for weight in model.parameters():
        W_tot = weight.detach() @ W_tot
    U, S, V = torch.svd(W_tot)
    return -U, S, -V''',
        "ex_net_rsm": '''def ex_net_rsm(h):
    return torch.einsum("ik,jk->ij", h, h)''',
        "linear_regression": '''def linear_regression(X, Y):
    return np.linalg.solve(X @ X.T, X @ Y.T).T''',
    },
    T2: {
        "gradient_descent": '''def gradient_descent(loss_fn, x, learning_rate, n_steps):
    step = 0
    while step < n_steps:
        (slope,) = torch.autograd.grad(loss_fn(x), [x])
        x.data.sub_(learning_rate * slope)
        step += 1''',
        "simple_gradient_descent": '''class SimpleGradientDescent:
    def __init__(self, parameters, lr=0.1, weight_decay=0.0):
        self.params = [p for p in parameters]
        self.hyper = (lr, weight_decay)

    def step(self):
        lr, decay = self.hyper
        for p in self.params:
            if p.grad is not None:
                p.data = p.data * (1.0 - lr * decay) - lr * p.grad

    def zero_grad(self):
        for p in self.params:
            if p.grad is not None:
                p.grad.zero_()''',
        "gradient_mean_rms": '''def gradient_mean_rms(grads):
    n = grads.shape[0]
    return grads.sum(dim=0) / n, torch.sqrt((grads * grads).sum(dim=0) / n)''',
        "ema_update": '''def ema_update(x_t, beta, t, ema_star_old):
    new_star = ema_star_old * beta + x_t * (1.0 - beta)
    return new_star / (1.0 - beta ** t), new_star''',
        "adam_optimizer": '''class ADAMOptimizer:
    def __init__(self, parameters, lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.group = list(parameters)
        self.lr, self.betas, self.eps, self.decay = lr, betas, eps, weight_decay
        self.count = 0
        self.moments = {}

    def step(self):
        self.count += 1
        b1, b2 = self.betas
        for i, p in enumerate(self.group):
            if p.grad is None:
                continue
            g = p.grad.detach() + self.decay * p.detach()
            m, v = self.moments.get(i, (torch.zeros_like(g), torch.zeros_like(g)))
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            self.moments[i] = (m, v)
            m_hat = m / (1 - b1 ** self.count)
            v_hat = v / (1 - b2 ** self.count)
            p.data = p.data - self.lr * m_hat / (torch.sqrt(v_hat) + self.eps)

    def zero_grad(self):
        for p in self.group:
            p.grad = None''',
    },
    T3: {
        "ex_mlp": '''def ex_mlp(input_size, hidden_dims, n_layers=3, activation=nn.ReLU):
    net = nn.Sequential()
    sizes = [input_size] + [hidden_dims] * (n_layers - 1)
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        net.append(nn.Linear(n_in, n_out))
        net.append(activation())
    net.append(nn.Linear(sizes[-1], 1))
    net.append(nn.Sigmoid())
    return net''',
        "ex_batchnorm_mlp": '''def ex_batchnorm_mlp(input_size, hidden_dims, n_layers=6):
    layers, width = [], input_size
    for i in range(n_layers - 1):
        layers += [nn.Linear(width, hidden_dims), nn.ReLU()]
        if i in (0, n_layers - 2):
            layers.append(nn.BatchNorm1d(hidden_dims))
        width = hidden_dims
    return nn.Sequential(*layers, nn.Linear(width, 1), nn.Sigmoid())''',
        "ResidualSequence": '''class ResidualSequence(nn.Module):
    def __init__(self, *layers):
        super().__init__()
        for position, layer in enumerate(layers):
            self.add_module(str(position), layer)

    def forward(self, x):
        h = x
        for layer in self._modules.values():
            h = layer(h)
        return h + x''',
        "ex_residual_net": '''def ex_residual_net(input_size, hidden_dims, fan_out_dims, n_blocks,
                    batchnorm=False):
    def block():
        head = nn.BatchNorm1d(hidden_dims) if batchnorm else nn.ReLU()
        return ResidualSequence(head, nn.Linear(hidden_dims, fan_out_dims), nn.ReLU(),
                                nn.Linear(fan_out_dims, hidden_dims))
    tail = [nn.BatchNorm1d(hidden_dims)] if batchnorm else []
    return nn.Sequential(nn.Linear(input_size, hidden_dims), *[block() for _ in range(n_blocks)],
                         *tail, nn.Linear(hidden_dims, 1), nn.Sigmoid())''',
        "ex_tiny_rule": '''def ex_tiny_rule(grids):
    bits = grids.to(torch.int64)
    centre = bits[:, 2:4, 2:4].reshape(len(bits), -1).sum(dim=1)
    corners = torch.stack([bits[:, 0, 0], bits[:, 0, 5], bits[:, 5, 5]], dim=1).prod(dim=1)
    return ((centre + corners) % 2).to(torch.float32)''',
        "momentum_sgd": '''class MomentumSGD:
    def __init__(self, parameters, lr=0.01, momentum=0.9, weight_decay=0.0):
        self.params = [p for p in parameters]
        self.lr, self.mu, self.decay = lr, momentum, weight_decay
        self.steps = {}

    def step(self):
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad.detach() + self.decay * p.detach()
            self.steps[i] = self.mu * self.steps[i] - self.lr * g if i in self.steps else -self.lr * g
            p.data.add_(self.steps[i])

    def zero_grad(self):
        for p in self.params:
            if p.grad is not None:
                p.grad.zero_()''',
    },
    T4: {
        "ex_zero_weights": '''def ex_zero_weights(n_in, n_out):
    return torch.full((n_in, n_out), 0.0)''',
        "ex_random_weights": '''def ex_random_weights(n_in, n_out, scale=0.01):
    return scale * torch.normal(0.0, 1.0, size=(n_in, n_out))''',
        "ex_lecun_weights": '''def ex_lecun_weights(n_in, n_out):
    return torch.empty(n_in, n_out).normal_(0.0, (1.0 / n_in) ** 0.5)''',
        "ex_he_weights": '''def ex_he_weights(n_in, n_out):
    return torch.empty(n_in, n_out).normal_(mean=0.0, std=(2.0 / n_in) ** 0.5)''',
        "Supervise_random_weights": '''class Supervise_random_weights(nn.Module):
    def __init__(self, criterion, net):
        super().__init__()
        self.criterion = criterion
        self.net = net
        with torch.no_grad():
            for layer in net:
                if isinstance(layer, nn.Linear):
                    layer.weight.copy_(torch.randn_like(layer.weight) * 0.01)

    def forward(self, x, y):
        return self.criterion(self.net(x).view(-1), y)''',
        "Supervise_Kaiming_weights": '''class Supervise_Kaiming_weights(nn.Module):
    def __init__(self, criterion, net):
        super().__init__()
        self.criterion = criterion
        self.net = net
        with torch.no_grad():
            for layer in net:
                if isinstance(layer, nn.Linear):
                    layer.weight.normal_(0.0, (2.0 / layer.in_features) ** 0.5)

    def forward(self, x, y):
        return self.criterion(self.net(x).view(-1), y)''',
    },
    T5: {
        "ex_linear_layer": '''def ex_linear_forward(x, weight, bias):
    return torch.addmm(bias, x, weight.t())


def ex_linear_backward(grad_out, x, weight):
    return (torch.mm(grad_out, weight), torch.einsum("bo,bi->oi", grad_out, x),
            grad_out.sum(0))''',
        "ex_relu_mse": '''def ex_relu_forward(x):
    return torch.where(x > 0, x, torch.zeros_like(x))


def ex_relu_backward(grad_out, x):
    return torch.where(x > 0, grad_out, torch.zeros_like(grad_out))


def ex_mse_forward(pred, target):
    return torch.mean(torch.square(pred - target))


def ex_mse_backward(pred, target):
    return (pred - target) * (2.0 / pred.numel())''',
    },
    T6: {
        "ex_first_layer_gradients": '''def ex_first_layer_gradients(model, x):
    first, _, last = list(model)
    with torch.no_grad():
        grad_b = (first(x) > 0).to(x.dtype) * last.weight[0]
        return grad_b * x, grad_b''',
        "ex_feature_matrix": '''def ex_feature_matrix(model, x):
    params = list(model.parameters())
    rows = []
    for point in x:
        out = model(point.reshape(1, -1)).sum()
        rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(out, params)]))
    return torch.stack(rows)''',
        "ex_principal_features": '''def ex_principal_features(features):
    U, S, V = torch.svd(features)
    return S, U * S''',
        "ex_second_layer_gradients": '''def ex_second_layer_gradients(model, x):
    l1, _, l2, _, l3 = list(model)
    with torch.no_grad():
        a1 = torch.relu(l1(x))
        gate = (l2(a1) > 0).to(x.dtype) * l3.weight[0]
        return gate[:, :, None] * a1[:, None, :], gate''',
    },
}

WRONG: dict[str, dict[str, str]] = {
    T1: {
        "ex_initializer": '''def ex_initializer_(model, gamma=1e-12):
    for weight in model.parameters():
        n_out, n_in = weight.shape
        nn.init.normal_(weight, mean=0.0, std=gamma / math.sqrt(n_in))''',
        "ex_net_svd": '''def ex_net_svd(model, in_dim):
    W_tot = torch.eye(in_dim)
    for weight in model.parameters():
        W_tot = weight.detach() @ W_tot
    U, S, Vh = torch.linalg.svd(W_tot, full_matrices=False)
    return U, S, Vh''',
        "ex_net_rsm": '''def ex_net_rsm(h):
    return h.T @ h''',
        "linear_regression": '''def linear_regression(X, Y):
    return Y @ X.T''',
    },
    T2: {
        "simple_gradient_descent": '''class SimpleGradientDescent:
    def __init__(self, parameters, lr=0.1, weight_decay=0.0):
        self.params, self.lr, self.weight_decay = list(parameters), lr, weight_decay

    def step(self):
        with torch.no_grad():
            for p in self.params:
                if p.grad is not None:
                    p -= self.lr * p.grad + self.weight_decay * p

    def zero_grad(self):
        for p in self.params:
            p.grad = None''',
        "adam_optimizer": '''class ADAMOptimizer:
    def __init__(self, parameters, lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.params, self.lr = list(parameters), lr

    def step(self):
        with torch.no_grad():
            for p in self.params:
                if p.grad is not None:
                    p -= self.lr * p.grad

    def zero_grad(self):
        for p in self.params:
            p.grad = None''',
        "gradient_descent": '''def gradient_descent(loss_fn, x, learning_rate, n_steps):
    for _ in range(n_steps):
        loss_fn(x).backward()
        with torch.no_grad():
            x -= learning_rate * x.grad''',
    },
    T3: {
        "ResidualSequence": '''class ResidualSequence(nn.Sequential):
    def forward(self, x):
        return super().forward(x)''',
    },
    T4: {
        "Supervise_Kaiming_weights": '''class Supervise_Kaiming_weights(nn.Module):
    def __init__(self, criterion, net):
        super().__init__()
        self.criterion = criterion
        self.net = net
        for layer in net:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_normal_(layer.weight)

    def forward(self, x, y):
        return self.criterion(self.net(x).view(-1), y)''',
    },
}

LIBRARY = {
    "simple_gradient_descent": '''class SimpleGradientDescent:
    def __init__(self, parameters, lr=0.1, weight_decay=0.0):
        self.inner = torch.optim.SGD(list(parameters), lr=lr, weight_decay=weight_decay,
                                     foreach=False)

    def step(self):
        self.inner.step()

    def zero_grad(self):
        self.inner.zero_grad()''',
    "adam_optimizer": '''class ADAMOptimizer:
    def __init__(self, parameters, lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.inner = torch.optim.Adam(list(parameters), lr=lr, betas=betas, eps=eps,
                                      weight_decay=weight_decay, foreach=False)

    def step(self):
        self.inner.step()

    def zero_grad(self):
        self.inner.zero_grad()''',
}
"""Optimisers that hand the work to torch.optim: correct, and flagged for review."""


def alternative(tutorial: str) -> dict[str, str]:
    """Grade id -> a correct answer written apart from the solution, for every tutorial."""
    return dict(ALTERNATIVE[tutorial])


def reference(tutorial: str = T1) -> dict[str, str]:
    """The reference answer of every solution cell (markers removed), by grade id."""
    layout = course_layout()
    nb = nbformat.read(layout.solution_path(tutorial), as_version=4)
    sources = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            lines = [line for line in cell.source.splitlines()
                     if not layout.markers.is_solution_marker(line)]
            sources[meta["grade_id"]] = "\n".join(lines)
    return sources


solution_sources = reference
"""The reference answers of a tutorial (the name the tests and the benchmark use)."""


def _graded_cells(tutorial: str) -> list[tuple[str, dict]]:
    """``(grade id, nbgrader metadata)`` of the solution notebook's graded and solution code cells,
    in notebook order."""
    nb = nbformat.read(course_layout().solution_path(tutorial), as_version=4)
    return [(cell.metadata["nbgrader"]["grade_id"], cell.metadata["nbgrader"]) for cell in nb.cells
            if cell.cell_type == "code" and (cell.metadata.get("nbgrader", {}).get("grade")
                                             or cell.metadata.get("nbgrader", {}).get("solution"))]


def autograded_tests(tutorial: str = T1) -> dict[str, float]:
    """Test cell grade id -> its points: the autograded tests of ``tutorial``, from its solution
    notebook (what a fully correct submission scores)."""
    return {grade_id: meta.get("points", 0) for grade_id, meta in _graded_cells(tutorial)
            if meta.get("grade") and not meta.get("solution")}


def exercises(tutorial: str = T1) -> dict[str, str]:
    """Solution cell grade id -> the grade id of the test cell that checks it (the next one)."""
    found, waiting = {}, []
    for grade_id, meta in _graded_cells(tutorial):
        if meta.get("solution") and not meta.get("grade"):
            waiting.append(grade_id)
        elif meta.get("grade") and not meta.get("solution"):
            found.update(dict.fromkeys(waiting, grade_id))
            waiting = []
    return found

