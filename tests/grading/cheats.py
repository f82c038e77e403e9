"""Cheating submissions for the grading tests: one per tutorial, its other exercises honest.

Each exercise listed in a :class:`Cheat` reaches a shortcut its check refuses, or the instructor's
answers, in its own way: a refused library routine reached through ``getattr`` and string building,
a subclass or a wrapper of the routine, autograd inside a backward pass, ``torch.nn.init`` inside an
initialiser, reading the course's shipped expected values (``dlnn_helpers/checks/expected/*.json``)
from inside the answer, ``lstsq`` in a regression, and importing the instructor-only
``dlnn_reference`` package (absent from the grader's sandbox: the import fails).  The grader must
score each such test 0 with the check's words in the feedback (and, for a refused shortcut, the
flag in ``report.html``), while every other test of the submission keeps full marks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from autograder.grading.synthetic.answer_bank import ALTERNATIVE, T2, T3, T4, T5, T6

T1 = "T1_DeepLinearNetworks"

READ_ANSWERS = '''import glob as _glob
import os as _os
import dlnn_helpers.checks as _checks_package


def _peek_at_the_answers():
    """Read every shipped expected-value file (the self-checks' answers)."""
    for path in _glob.glob(_os.path.join(_checks_package.__path__[0], "expected", "*.json")):
        with open(path, encoding="utf-8") as stream:
            stream.read()

'''


@dataclass
class Cheat:
    """A submission of ``tutorial``: honest answers but for the cheating ones."""

    student: str
    tutorial: str
    answers: dict[str, str]
    """Solution cell grade id -> code (every cell of the tutorial)."""
    refused: dict[str, str]
    """Test grade id -> a fragment of the check's message that the feedback must show."""
    flagged: set[str] = field(default_factory=set)
    """Tests whose refusal is a shortcut (flagged in report.html), not a failed import."""


def _t1(correct: dict[str, str]) -> Cheat:
    answers = dict(correct)
    answers["ex_net_svd"] = "from dlnn_reference.deep_linear import net_svd as ex_net_svd\n"
    answers["linear_regression"] = '''def linear_regression(X, Y):
    solve = getattr(np.linalg, "lst" + "sq")
    return solve(X.T, Y.T, rcond=None)[0].T'''
    return Cheat("cheat", T1, answers,
                 {"test_ex_net_svd": "ex_net_svd is not defined",
                  "test_linear_regression": "linear_regression uses numpy.linalg.lstsq: the "
                                            "exercise is to solve the normal equations yourself"},
                 {"test_linear_regression"})


def _t2() -> Cheat:
    answers = dict(ALTERNATIVE[T2])
    answers["simple_gradient_descent"] = '''class SimpleGradientDescent:
    def __init__(self, parameters, lr=0.1, weight_decay=0.0):
        library = getattr(torch, "op" + "tim")
        self.inner = getattr(library, "S" + "GD")(list(parameters), lr=lr,
                                                   weight_decay=weight_decay)

    def step(self):
        self.inner.step()

    def zero_grad(self):
        self.inner.zero_grad()'''
    answers["adam_optimizer"] = '''class ADAMOptimizer(torch.optim.Adam):
    def __init__(self, parameters, lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(parameters, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         foreach=False)'''
    return Cheat("cheat", T2, answers,
                 {"test_simple_gradient_descent": "SimpleGradientDescent uses torch.optim.SGD: the "
                                                  "exercise is to write the update yourself",
                  "test_adam_optimizer": "ADAMOptimizer uses torch.optim.Adam: the exercise is to "
                                         "write the update yourself"},
                 {"test_simple_gradient_descent", "test_adam_optimizer"})


def _t3() -> Cheat:
    answers = dict(ALTERNATIVE[T3])
    honest = answers["ex_mlp"].replace(
        "    net = nn.Sequential()", "    _peek_at_the_answers()\n    net = nn.Sequential()", 1)
    assert honest != answers["ex_mlp"]
    answers["ex_mlp"] = READ_ANSWERS + honest
    answers["ex_batchnorm_mlp"] = '''def ex_batchnorm_mlp(input_size, hidden_dims, n_layers=6):
    from dlnn_reference import deep_training
    return deep_training.batchnorm_mlp(input_size, hidden_dims, n_layers)'''
    return Cheat("cheat", T3, answers,
                 {"test_ex_mlp": "ex_mlp reads the course's expected answers",
                  "test_ex_batchnorm_mlp": "dlnn_reference"},
                 {"test_ex_mlp"})


def _t4() -> Cheat:
    answers = dict(ALTERNATIVE[T4])
    answers["ex_lecun_weights"] = '''def ex_lecun_weights(n_in, n_out):
    initialisers = getattr(torch.nn, "in" + "it")
    return getattr(initialisers, "normal_")(torch.empty(n_in, n_out), 0.0, (1.0 / n_in) ** 0.5)'''
    answers["ex_he_weights"] = '''def ex_he_weights(n_in, n_out):
    weights = torch.empty(n_out, n_in)
    torch.nn.init.kaiming_normal_(weights, nonlinearity="relu")
    return weights.T.contiguous()'''
    return Cheat("cheat", T4, answers,
                 {"test_ex_lecun_weights": "ex_lecun_weights uses torch.nn.init.normal_",
                  "test_ex_he_weights": "ex_he_weights uses torch.nn.init.kaiming_normal_: the "
                                        "exercise is to draw the weights from the distribution "
                                        "yourself"},
                 {"test_ex_lecun_weights", "test_ex_he_weights"})


def _t5() -> Cheat:
    answers = dict(ALTERNATIVE[T5])
    answers["ex_linear_layer"] = '''def ex_linear_forward(x, weight, bias):
    return x @ weight.T + bias


def ex_linear_backward(grad_out, x, weight):
    engine = getattr(torch, "auto" + "grad")
    x_ = x.detach().requires_grad_(True)
    w_ = weight.detach().requires_grad_(True)
    b_ = torch.zeros(weight.shape[0], dtype=x.dtype, requires_grad=True)
    out = x_ @ w_.T + b_
    return engine.grad(out, (x_, w_, b_), grad_outputs=grad_out)'''
    return Cheat("cheat", T5, answers,
                 {"test_ex_linear_layer": "ex_linear_backward uses autograd"},
                 {"test_ex_linear_layer"})


def _t6() -> Cheat:
    answers = dict(ALTERNATIVE[T6])
    honest = answers["ex_principal_features"].replace(
        "    U, S, V = torch.svd(features)", "    _peek_at_the_answers()\n"
        "    U, S, V = torch.svd(features)", 1)
    assert honest != answers["ex_principal_features"]
    answers["ex_principal_features"] = READ_ANSWERS + honest
    answers["ex_second_layer_gradients"] = (
        "from dlnn_reference.relu_features import second_layer_gradients\n"
        "ex_second_layer_gradients = second_layer_gradients\n")
    return Cheat("cheat", T6, answers,
                 {"test_ex_principal_features": "ex_principal_features reads the course's "
                                                "expected answers",
                  "test_ex_second_layer_gradients": "ex_second_layer_gradients is not defined"},
                 {"test_ex_principal_features"})


def cheats(t1_correct: dict[str, str]) -> dict[str, Cheat]:
    """Tutorial -> its cheating submission (``t1_correct``: tutorial 1's correct answers)."""
    return {T1: _t1(t1_correct), T2: _t2(), T3: _t3(), T4: _t4(), T5: _t5(), T6: _t6()}
