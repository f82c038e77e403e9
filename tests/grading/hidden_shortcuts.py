"""Shortcuts that hide from the run-time watch, written for the tests (not a test module).

For each refused family (optimisers: T2, initialisers: T4, autograd in backward passes: T5) and each
way of hiding (a name built at run time, another thread, another process, the interpreter's
profiling switched off, a private entry point of torch bound to a name at import), one answer that
would otherwise be correct.  :data:`HIDDEN` lists them; :func:`submissions` packs them into as few
submissions as possible (one case per exercise cell of a submission, the other cells honest), so
that the grading test grades few files.  Each case says what the grader must do with it: ``refused``
(the test scores 0 and the report lists it under "Shortcuts refused") or ``flagged`` (the score
stands and the report lists it under "Flagged for review", with the line).  Every case is flagged by
the static look (:mod:`autograder.grading.judge.static_look`) at the ``lines`` given.
"""

from __future__ import annotations

from dataclasses import dataclass

from autograder.grading.synthetic.answer_bank import ALTERNATIVE, T2, T4, T5

WAYS = {"computed names": "built at run time", "a thread": "threads", "a process": "process",
        "tracing switched off": "profiling", "private entry point bound at import": "private"}
"""Each way of hiding, and words of the static look's reason for it."""
FAMILIES = {"optimisers": T2, "initialisers": T4, "autograd": T5}
REFUSED = {T2: ("torch.optim",), T4: ("torch.nn.init",), T5: ("autograd",)}


@dataclass(frozen=True)
class Hidden:
    """One hidden shortcut: the code of one exercise cell, and what the grader must do with it."""

    family: str
    way: str
    cell: str
    """The solution cell's grade id (its test is ``test_<cell>``)."""
    source: str
    lines: tuple[int, ...]
    """Lines the static look must flag (1-based, in ``source``)."""
    outcome: str
    """``refused`` (scored 0) or ``flagged`` (score stands, a person looks)."""

    @property
    def tutorial(self) -> str:
        return FAMILIES[self.family]

    @property
    def refused(self) -> tuple[str, ...]:
        return REFUSED[self.tutorial]

    @property
    def test(self) -> str:
        return f"test_{self.cell}"

    @property
    def name(self) -> str:
        return f"{self.family}: {self.way}"


# -- a process: the work is done in a forked child and sent back through a pipe ------------------

_FORK = '''import os
import json


def _in_child(work):
    """Run work() in a forked child; return what it sent back (JSON)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.write(write, json.dumps(work()).encode())
        os._exit(0)
    os.close(write)
    data = b""
    while True:
        chunk = os.read(read, 1 << 16)
        if not chunk:
            break
        data += chunk
    os.close(read)
    os.waitpid(pid, 0)
    return json.loads(data)

'''

# -- optimisers (T2: gradient_descent, SimpleGradientDescent, ADAMOptimizer) ---------------------

_ADAM_IN_A_THREAD = '''import importlib
import sys
import threading

_adam = getattr(importlib.import_module("torch.op" + "tim.ad" + "am"), "ad" + "am")


class ADAMOptimizer:
    def __init__(self, parameters, lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.params = list(parameters)
        self.settings = dict(lr=lr * (1 + 1e-12), beta1=betas[0], beta2=betas[1], eps=eps,
                             weight_decay=weight_decay)
        self.avg = [torch.zeros_like(p) for p in self.params]
        self.avg_sq = [torch.zeros_like(p) for p in self.params]
        self.steps = [torch.tensor(0.0) for _ in self.params]

    def step(self):
        OFF
        def work():
            with torch.no_grad():
                live = [i for i, p in enumerate(self.params) if p.grad is not None]
                _adam([self.params[i] for i in live], [self.params[i].grad for i in live],
                      [self.avg[i] for i in live], [self.avg_sq[i] for i in live], [],
                      [self.steps[i] for i in live], foreach=False, amsgrad=False,
                      maximize=False, **self.settings)

        thread = threading.Thread(target=work)
        thread.start()
        thread.join()

    def zero_grad(self):
        for p in self.params:
            p.grad = None'''

OPTIMISERS = [
    Hidden("optimisers", "computed names", "gradient_descent",
           '''def gradient_descent(loss_fn, x, learning_rate, n_steps):
    library = getattr(torch, "op" + "tim")
    optimiser = getattr(library, "S" + "GD")([x], lr=learning_rate)
    for _ in range(n_steps):
        optimiser.zero_grad()
        loss_fn(x).backward()
        optimiser.step()''', (2, 3), "refused"),
    Hidden("optimisers", "a process", "simple_gradient_descent", _FORK + '''
class SimpleGradientDescent:
    def __init__(self, parameters, lr=0.1, weight_decay=0.0):
        self.params, self.lr, self.weight_decay = list(parameters), lr, weight_decay

    def step(self):
        live = [p for p in self.params if p.grad is not None]

        def work():
            copies = [p.detach().clone().requires_grad_(True) for p in live]
            for copy, p in zip(copies, live):
                copy.grad = p.grad.detach().clone()
            library = getattr(torch, "op" + "tim")
            library.SGD(copies, lr=self.lr, weight_decay=self.weight_decay).step()
            return [copy.detach().tolist() for copy in copies]

        with torch.no_grad():
            for p, new in zip(live, _in_child(work)):
                p.copy_(torch.tensor(new, dtype=p.dtype))

    def zero_grad(self):
        for p in self.params:
            p.grad = None''', (8, 36), "refused"),
    Hidden("optimisers", "a thread", "adam_optimizer",
           _ADAM_IN_A_THREAD.replace("        OFF\n", ""), (3, 5, 26), "refused"),
    Hidden("optimisers", "tracing switched off", "adam_optimizer",
           _ADAM_IN_A_THREAD.replace("OFF", "sys.setprofile(None)\n        threading.setprofile(None)"),
           (5, 18, 19), "refused"),
    Hidden("optimisers", "private entry point bound at import", "simple_gradient_descent",
           '''_update = torch._fused_sgd_


class SimpleGradientDescent:
    def __init__(self, parameters, lr=0.1, weight_decay=0.0):
        self.params, self.lr, self.weight_decay = list(parameters), lr, weight_decay

    def step(self):
        live = [p for p in self.params if p.grad is not None]
        with torch.no_grad():
            _update(live, [p.grad for p in live], [], weight_decay=self.weight_decay,
                    momentum=0.0, lr=self.lr, dampening=0.0, nesterov=False, maximize=False,
                    is_first_step=True)

    def zero_grad(self):
        for p in self.params:
            p.grad = None''', (1,), "flagged"),
]

# -- initialisers (T4: ex_zero_weights, ex_random_weights, ex_lecun_weights, ex_he_weights) -----

_KAIMING = '''import importlib
import sys
import threading

_kaiming = getattr(importlib.import_module("torch.nn.in" + "it"), "kaiming_normal_")

'''

INITIALISERS = [
    Hidden("initialisers", "computed names", "ex_lecun_weights",
           '''def ex_lecun_weights(n_in, n_out):
    initialisers = getattr(torch.nn, "in" + "it")
    return getattr(initialisers, "nor" + "mal_")(torch.empty(n_in, n_out), 0.0,
                                                  (1.0 / n_in) ** 0.5)''', (2, 3), "refused"),
    Hidden("initialisers", "a thread", "ex_he_weights", _KAIMING + '''
def ex_he_weights(n_in, n_out):
    drawn = {}

    def work():
        weights = torch.empty(n_out, n_in)
        _kaiming(weights, nonlinearity="relu")
        drawn["weights"] = weights.T.contiguous()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return drawn["weights"]''', (3, 5, 16), "refused"),
    Hidden("initialisers", "a process", "ex_random_weights", _FORK + '''
def ex_random_weights(n_in, n_out, scale=0.01):
    def work():
        initialisers = getattr(torch.nn, "in" + "it")
        return initialisers.normal_(torch.empty(n_in, n_out), 0.0, scale).tolist()

    return torch.tensor(_in_child(work))''', (8, 27), "refused"),
    Hidden("initialisers", "tracing switched off", "ex_he_weights", _KAIMING + '''
def ex_he_weights(n_in, n_out):
    sys.setprofile(None)
    weights = torch.empty(n_out, n_in)
    _kaiming(weights, nonlinearity="relu")
    return weights.T.contiguous()''', (5, 9), "refused"),
    Hidden("initialisers", "private entry point bound at import", "ex_lecun_weights",
           '''from torch.nn import init as _init

_draw = _init._no_grad_normal_


def ex_lecun_weights(n_in, n_out):
    return _draw(torch.empty(n_in, n_out), 0.0, (1.0 / n_in) ** 0.5)''', (3,), "refused"),
]

# -- autograd in the backward passes (T5: ex_linear_layer, ex_relu_mse) -------------------------

_GRAD = '''import importlib
import sys
import threading

_grad = getattr(importlib.import_module("torch.auto" + "grad"), "gr" + "ad")

'''

_RELU_MSE_FORWARD = '''

def ex_relu_forward(x):
    return torch.clamp(x, min=0.0)


def ex_mse_forward(pred, target):
    return ((pred - target) ** 2).mean()


def ex_mse_backward(pred, target):
    return 2.0 * (pred - target) / pred.numel()'''

AUTOGRAD = [
    Hidden("autograd", "computed names", "ex_linear_layer",
           '''def ex_linear_forward(x, weight, bias):
    return x @ weight.T + bias


def ex_linear_backward(grad_out, x, weight):
    engine = getattr(torch, "auto" + "grad")
    x_ = x.detach().requires_grad_(True)
    w_ = weight.detach().requires_grad_(True)
    b_ = torch.zeros(weight.shape[0], dtype=x.dtype, requires_grad=True)
    return engine.grad(x_ @ w_.T + b_, (x_, w_, b_), grad_outputs=grad_out)''', (6,), "refused"),
    Hidden("autograd", "a thread", "ex_relu_mse", _GRAD + '''
def ex_relu_backward(grad_out, x):
    found = {}

    def work():
        x_ = x.detach().requires_grad_(True)
        (found["grad"],) = _grad(torch.clamp(x_, min=0.0), (x_,), grad_outputs=grad_out)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return found["grad"]''' + _RELU_MSE_FORWARD, (3, 5, 15), "refused"),
    Hidden("autograd", "a process", "ex_linear_layer", _GRAD + _FORK + '''
def ex_linear_forward(x, weight, bias):
    return x @ weight.T + bias


def ex_linear_backward(grad_out, x, weight):
    def work():
        x_ = x.detach().requires_grad_(True)
        w_ = weight.detach().requires_grad_(True)
        b_ = torch.zeros(weight.shape[0], dtype=x.dtype, requires_grad=True)
        grads = _grad(x_ @ w_.T + b_, (x_, w_, b_), grad_outputs=grad_out)
        return [g.tolist() for g in grads]

    return tuple(torch.tensor(g, dtype=x.dtype) for g in _in_child(work))''',
           (5, 14), "refused"),
    Hidden("autograd", "tracing switched off", "ex_relu_mse", _GRAD + '''
def ex_relu_backward(grad_out, x):
    sys.setprofile(None)
    x_ = x.detach().requires_grad_(True)
    return _grad(torch.clamp(x_, min=0.0), (x_,), grad_outputs=grad_out)[0]''' + _RELU_MSE_FORWARD,
           (5, 9), "refused"),
    Hidden("autograd", "private entry point bound at import", "ex_linear_layer",
           '''_run = torch._C._ImperativeEngine().run_backward


def ex_linear_forward(x, weight, bias):
    return x @ weight.T + bias


def ex_linear_backward(grad_out, x, weight):
    x_ = x.detach().requires_grad_(True)
    w_ = weight.detach().requires_grad_(True)
    b_ = torch.zeros(weight.shape[0], dtype=x.dtype, requires_grad=True)
    return _run((x_ @ w_.T + b_,), (grad_out,), False, False, (x_, w_, b_), True, False)''',
           (1,), "flagged"),
]

HIDDEN: list[Hidden] = OPTIMISERS + INITIALISERS + AUTOGRAD
"""Every hidden shortcut: one per family and way of hiding."""

THREAD_ONLY = [
    '''from concurrent.futures import ThreadPoolExecutor

def ex_zero_weights(n_in, n_out):
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(torch.zeros, n_in, n_out).result()''',
    '''import _thread

def ex_zero_weights(n_in, n_out):
    _thread.start_new_thread(print, ("hi",))
    return torch.zeros(n_in, n_out)''',
]
"""Threads and executors with nothing refused inside: flagged all the same (a person looks)."""


def submissions() -> list[tuple[str, str, dict[str, str], list[Hidden]]]:
    """``(student, tutorial, answers, cases)``: the cases packed, one per cell, honest elsewhere."""
    packed: list[tuple[str, str, dict[str, str], list[Hidden]]] = []
    for family, tutorial in FAMILIES.items():
        left = [case for case in HIDDEN if case.family == family]
        number = 0
        while left:
            number += 1
            answers, cases = dict(ALTERNATIVE[tutorial]), []
            for case in list(left):
                if all(c.cell != case.cell for c in cases):
                    answers[case.cell] = case.source
                    cases.append(case)
                    left.remove(case)
            packed.append((f"hider-{family}-{number}", tutorial, answers, cases))
    return packed
