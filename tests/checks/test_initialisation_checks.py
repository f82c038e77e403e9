"""The T4 checks accept every correct initialisation and name the common mistakes.

The checks judge random draws by statistics with tolerances from the sample size; the correct
answers are therefore tried with several seeds, and each wrong answer must fail for every seed.
The initialisers refuse ``torch.nn.init`` (the exercise is to draw the weights by hand); the
``Supervise`` classes use it on purpose.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.init import kaiming_normal_

import dlnn_helpers
from dlnn_helpers.checks import CheckFailure, NotImplementedYet, ShortcutUsed, _expected, self_check
from dlnn_helpers.checks.initialisation import check_init_weights, check_supervise_init
from dlnn_helpers.deep_training import Supervise, precomputed
from dlnn_helpers.mlp_regression import xavier_init_
from dlnn_reference import initialisation as ini
from dlnn_reference import initialisation as reference

SEEDS = (0, 1, 2048, 99)

# ---------------------------------------------------------------------------- weight matrices


def zero_reference(n_in, n_out):
    return torch.zeros(n_in, n_out)


def zero_full(n_in, n_out):
    return torch.full((n_in, n_out), 0.0)


def zero_numpy(n_in, n_out):
    return np.zeros((n_in, n_out))


def zero_float64(n_in, n_out):
    return torch.zeros(n_in, n_out, dtype=torch.float64)


def zero_like_randn(n_in, n_out):
    return torch.randn(n_in, n_out) * 0.0


def zero_ones(n_in, n_out):
    return torch.ones(n_in, n_out)


def zero_transposed(n_in, n_out):
    return torch.zeros(n_out, n_in)


def zero_int(n_in, n_out):
    return torch.zeros(n_in, n_out, dtype=torch.int64)


def zero_empty_garbage(n_in, n_out):
    return torch.arange(n_in * n_out, dtype=torch.float32).reshape(n_in, n_out)


@pytest.mark.parametrize("func", [zero_reference, zero_full, zero_like_randn])
def test_zero_accepts_correct_answers(func):
    assert "is correct" in check_init_weights(func, "zero")
    assert "is correct" in check_init_weights(func, "zero", shape=(3, 70))


@pytest.mark.parametrize(
    ("func", "message"),
    [
        (zero_ones, "should return only zeros"),
        (zero_transposed, "that is \\(n_out, n_in\\), nn.Linear's layout"),
        (zero_int, r"ex_zero_weights\(400, 150\) has dtype torch.int64; it should be torch.float32"),
        (zero_float64, "has dtype torch.float64; it should be torch.float32"),
        (zero_numpy, r"ex_zero_weights\(400, 150\) is a np.ndarray of dtype float64 and shape "
                     r"\(400, 150\); it should be a torch.Tensor of dtype torch.float32"),
        (zero_empty_garbage, "torch.empty does not clear memory"),
    ],
)
def test_zero_rejects_wrong_answers(func, message):
    with pytest.raises(CheckFailure, match=message):
        check_init_weights(func, "zero")


CORRECT = {
    "random": [
        lambda n_in, n_out, scale=0.01: torch.randn(n_in, n_out) * scale,
        lambda n_in, n_out, scale=0.01: torch.empty(n_in, n_out).normal_(0.0, scale),
        lambda n_in, n_out, scale=0.01: torch.randn(n_out, n_in).T.contiguous().mul(scale),
    ],
    "lecun": [
        lambda n_in, n_out: torch.randn(n_in, n_out) / math.sqrt(n_in),
        lambda n_in, n_out: torch.normal(0.0, (1.0 / n_in) ** 0.5, size=(n_in, n_out)),
        lambda n_in, n_out: torch.from_numpy(
            np.random.default_rng(int(torch.randint(0, 2**31, ()))).standard_normal((n_in, n_out))
            / np.sqrt(n_in)).float(),
    ],
    "he": [
        lambda n_in, n_out: torch.randn(n_in, n_out) * math.sqrt(2.0 / n_in),
        lambda n_in, n_out: torch.randn(n_in, n_out) * torch.tensor(2.0 / n_in).sqrt(),
        lambda n_in, n_out: torch.empty(n_in, n_out).normal_(std=(2.0 / n_in) ** 0.5),
    ],
}

REFUSED = {  # the right distribution drawn by torch.nn.init: the exercise is to draw it by hand
    "random": (lambda n_in, n_out, scale=0.01: nn.init.normal_(torch.empty(n_in, n_out), 0.0, scale),
               "torch.nn.init.normal_"),
    "lecun": (lambda n_in, n_out: nn.init.kaiming_normal_(torch.empty(n_out, n_in),
                                                           nonlinearity="linear").T.contiguous(),
               "torch.nn.init.kaiming_normal_"),
    "he": (lambda n_in, n_out: nn.init.kaiming_normal_(torch.empty(n_out, n_in)).T,
           "torch.nn.init.kaiming_normal_"),
    "zero": (lambda n_in, n_out: nn.init.zeros_(torch.empty(n_in, n_out)), "torch.nn.init.zeros_"),
}


@pytest.mark.parametrize("method", sorted(REFUSED))
def test_inits_refuse_torch_nn_init_with_a_plain_message(method):
    func, routine = REFUSED[method]
    with pytest.raises(ShortcutUsed, match=(f"^ex_{method}_weights uses {routine}: the exercise is to "
                                            "draw the weights from the distribution yourself$")):
        check_init_weights(func, method)


@pytest.mark.parametrize("method", ["random", "lecun", "he"])
@pytest.mark.parametrize("index", [0, 1, 2])
def test_random_inits_accept_correct_answers_for_every_seed(method, index):
    func = CORRECT[method][index]
    for seed in SEEDS:
        assert "is correct" in check_init_weights(func, method, seed=seed)
        assert "is correct" in check_init_weights(func, method, seed=seed, shape=(90, 800),
                                                  scale=0.05)


WRONG = [
    ("random", lambda n_in, n_out, scale=0.01: torch.randn(n_in, n_out) * scale**2,
     "multiplied by scale twice"),
    ("random", lambda n_in, n_out, scale=0.01: torch.randn(n_in, n_out),
     "the scale is missing"),
    ("random", lambda n_in, n_out, scale=0.01: (torch.rand(n_in, n_out) - 0.5) * scale * 12**0.5,
     "that is a uniform distribution"),
    ("random", lambda n_in, n_out, scale=0.01: torch.randn(1, n_out).expand(n_in, n_out) * scale,
     "All rows .* are equal"),
    ("random", lambda n_in, n_out, scale=0.01: torch.manual_seed(0) and torch.randn(n_in, n_out)
     * scale, "exactly the same weights on two calls"),
    ("lecun", lambda n_in, n_out: torch.randn(n_in, n_out) / math.sqrt(n_out),
     "you used n_out"),
    ("lecun", lambda n_in, n_out: torch.randn(n_in, n_out) / n_in,
     "variance as the standard deviation"),
    ("lecun", lambda n_in, n_out: torch.randn(n_in, n_out) * math.sqrt(2.0 / (n_in + n_out)),
     "Glorot's \\(Xavier's\\) average fan"),
    ("lecun", lambda n_in, n_out: torch.randn(n_in, n_out) * math.sqrt(2.0 / n_in),
     "He's variance 2 / n_in"),
    ("he", lambda n_in, n_out: torch.randn(n_in, n_out) / math.sqrt(n_in),
     "LeCun's variance 1 / n_in"),
    ("he", lambda n_in, n_out: torch.randn(n_in, n_out) * 2.0 / n_in,
     "variance as the standard deviation"),
    ("he", lambda n_in, n_out: (torch.rand(n_in, n_out) * 2 - 1) * math.sqrt(6.0 / n_in),
     "that is a uniform distribution"),
    ("he", lambda n_in, n_out: nn.init.kaiming_uniform_(torch.empty(n_out, n_in)).T,
     "uses torch.nn.init.kaiming_uniform_: the exercise is to draw the weights"),
    ("he", lambda n_in, n_out: torch.randn(n_out, n_in) * math.sqrt(2.0 / n_in),
     "nn.Linear's layout"),
    ("he", lambda n_in, n_out: np.random.randn(n_in, n_out) * np.sqrt(2.0 / n_in),  # noqa: NPY002
     "is a np.ndarray of dtype float64 and shape \\(400, 150\\); it should be a torch.Tensor"),
    ("he", lambda n_in, n_out: torch.randn(n_in, n_out, dtype=torch.float64) * (2.0 / n_in) ** 0.5,
     "has dtype torch.float64; it should be torch.float32 \\(torch's default"),
]


@pytest.mark.parametrize(("method", "func", "message"), WRONG)
def test_random_inits_reject_wrong_answers_for_every_seed(method, func, message):
    for seed in SEEDS:
        with pytest.raises(CheckFailure, match=message):
            check_init_weights(func, method, seed=seed)


def test_init_check_leaves_the_global_generators_alone():
    torch.manual_seed(1)
    np.random.seed(1)  # noqa: NPY002
    expected_torch, expected_np = torch.rand(3), np.random.rand(3)  # noqa: NPY002
    torch.manual_seed(1)
    np.random.seed(1)  # noqa: NPY002
    check_init_weights(CORRECT["he"][0], "he")
    with pytest.raises(CheckFailure, match="np.ndarray"):  # draws with NumPy's generator
        check_init_weights(WRONG[-2][1], "he")
    assert torch.equal(torch.rand(3), expected_torch)
    assert np.array_equal(np.random.rand(3), expected_np)  # noqa: NPY002


# --------------------------------------------------------------- Supervise_*_weights classes


class RandomApply(ini.Supervise):
    def __init__(self, criterion, net):
        super().__init__(criterion, net)

        def init(module):
            if isinstance(module, nn.Linear):
                with torch.no_grad():
                    module.weight.normal_(0.0, 0.01)
                    module.bias.zero_()

        self.net.apply(init)


class RandomPlainModule(nn.Module):
    def __init__(self, criterion, net):
        super().__init__()
        self.net, self.criterion = net, criterion
        for module in net.modules():
            if type(module) is nn.Linear:
                module.weight.data = torch.randn_like(module.weight) * 0.01

    def forward(self, x, y):
        return self.criterion(self.net(x).squeeze(), y)


class KaimingExplicit(ini.Supervise):
    def __init__(self, criterion, net):
        super().__init__(criterion, net)
        for module in self.net.modules():
            if isinstance(module, nn.Linear):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")


class KaimingByHand(ini.Supervise):
    def __init__(self, criterion, net):
        super().__init__(criterion, net)
        for module in self.net.modules():
            if isinstance(module, nn.Linear):
                with torch.no_grad():
                    module.weight.copy_(torch.randn_like(module.weight)
                                        * math.sqrt(2.0 / module.in_features))


def _variant(init_weight, *, first_only=False, squeeze=True, copy_net=False):
    class Variant(nn.Module):
        def __init__(self, criterion, net):
            super().__init__()
            self.net = __import__("copy").deepcopy(net) if copy_net else net
            self.criterion = criterion
            for module in self.net.modules():
                if isinstance(module, nn.Linear):
                    init_weight(module.weight)
                    if first_only:
                        break

        def forward(self, x, y):
            out = self.net(x)
            return self.criterion(out.squeeze(-1) if squeeze else out, y)

    return Variant


@pytest.mark.parametrize("cls", [ini.SuperviseRandomWeights, RandomApply, RandomPlainModule])
def test_supervise_random_accepts_correct_answers(cls):
    for seed in SEEDS:
        assert "is correct" in check_supervise_init(cls, "random", seed=seed)
    assert "is correct" in check_supervise_init(cls, "random", sizes=(40, 300, 3))


@pytest.mark.parametrize("cls", [ini.SuperviseKaimingWeights, KaimingExplicit, KaimingByHand])
def test_supervise_kaiming_accepts_correct_answers(cls):
    for seed in SEEDS:
        assert "is correct" in check_supervise_init(cls, "kaiming", seed=seed)
    assert "is correct" in check_supervise_init(cls, "kaiming", sizes=(40, 300, 3))


@pytest.mark.parametrize(
    ("method", "cls", "message"),
    [
        ("random", _variant(lambda w: nn.init.normal_(w, 0.0, 0.1)), "0.01 as the variance"),
        ("random", _variant(lambda w: nn.init.normal_(w)), "nn.init.normal_ without std"),
        ("random", _variant(lambda w: nn.init.normal_(w, 0.0, 0.01), first_only=True),
         "Linear layer 1 .* was not re-initialised"),
        ("random", _variant(lambda w: nn.init.normal_(w, 0.0, 0.01), copy_net=True),
         "none of the Linear layers"),
        ("random", _variant(lambda w: nn.init.normal_(w, 0.0, 0.01), squeeze=False),
         "raised ValueError"),
        ("kaiming", _variant(nn.init.kaiming_uniform_), "uniform distribution"),
        ("kaiming", _variant(nn.init.xavier_normal_),
         "this is Glorot's \\(Xavier's\\) initialisation"),
        ("kaiming", _variant(lambda w: nn.init.kaiming_normal_(w, mode="fan_out")),
         "mode='fan_out'"),
        ("kaiming", _variant(lambda w: nn.init.normal_(w, 0.0, 0.01)),
         "the random initialisation"),
    ],
)
def test_supervise_init_rejects_wrong_answers(method, cls, message):
    for seed in SEEDS[:2]:
        with pytest.raises(CheckFailure, match=message):
            check_supervise_init(cls, method, seed=seed)


def test_supervise_init_not_implemented_and_self_check():
    class Todo(ini.Supervise):
        def __init__(self, criterion, net):
            super().__init__(criterion, net)
            raise NotImplementedError()

    with pytest.raises(NotImplementedYet):
        check_supervise_init(Todo, "random")
    with pytest.raises(NotImplementedYet):
        check_init_weights(lambda n_in, n_out: (_ for _ in ()).throw(NotImplementedError()), "he")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert self_check(check_supervise_init, ini.SuperviseKaimingWeights, method="kaiming")
        assert not self_check(check_supervise_init, Todo, method="kaiming")
    assert err.getvalue() == ""
    assert "✅" in out.getvalue() and "⏳" in out.getvalue()


# ================================================================================================
# Cheating answers (were test_cheating_initialisation.py):
# Cheating answers of tutorial 4's exercises, each refused by its self-check with a plain
# message.
# ================================================================================================

TASK = "the exercise is to draw the weights from the distribution yourself"
READS = ("reads the course's expected answers (the data the self-check compares with): the exercise "
         "is to compute them yourself")
EXPECTED_FOLDER = Path(dlnn_helpers.__file__).parent / "checks" / "expected"


def he_by_getattr(n_in, n_out):
    init = getattr(torch.nn, "in" + "it")
    return getattr(init, "kaiming" + "_normal_")(torch.empty(n_out, n_in)).T


def he_by_import_module(n_in, n_out):
    init = importlib.import_module("torch.nn.init")
    return vars(init)["kaiming_normal_"](torch.empty(n_out, n_in)).T


def he_imported_before(n_in, n_out):
    return kaiming_normal_(torch.empty(n_out, n_in)).T  # bound when this module was imported


def _my_kaiming(weight):
    return nn.init.kaiming_normal_(weight)


def he_by_wrapper(n_in, n_out):
    return _my_kaiming(torch.empty(n_out, n_in)).T


_PARTIAL = functools.partial(kaiming_normal_, mode="fan_in")


def he_by_partial(n_in, n_out):
    return _PARTIAL(torch.empty(n_out, n_in)).T


def he_by_package_helper(n_in, n_out):
    """xavier_init_ (tutorial 5's helper) calls nn.init.xavier_normal_; rescaled to He's variance."""
    layer = nn.Linear(n_in, n_out)
    xavier_init_(nn.Sequential(layer), gain=math.sqrt(1.0 + n_out / n_in))
    return layer.weight.detach().T.contiguous()


def lecun_by_normal(n_in, n_out):
    return nn.init.normal_(torch.empty(n_in, n_out), std=1.0 / math.sqrt(n_in))


def random_by_trunc_normal(n_in, n_out, scale=0.01):
    return nn.init.trunc_normal_(torch.empty(n_in, n_out), std=scale, a=-10 * scale, b=10 * scale)


def zero_by_constant(n_in, n_out):
    return nn.init.constant_(torch.empty(n_in, n_out), 0.0)


@pytest.mark.parametrize(
    ("method", "answer", "routine"),
    [
        ("he", he_by_getattr, "torch.nn.init.kaiming_normal_"),
        ("he", he_by_import_module, "torch.nn.init.kaiming_normal_"),
        ("he", he_imported_before, "torch.nn.init.kaiming_normal_"),
        ("he", he_by_wrapper, "torch.nn.init.kaiming_normal_"),
        ("he", he_by_partial, "torch.nn.init.kaiming_normal_"),
        ("he", he_by_package_helper, "torch.nn.init.xavier_normal_"),
        ("lecun", lecun_by_normal, "torch.nn.init.normal_"),
        ("random", random_by_trunc_normal, "torch.nn.init.trunc_normal_"),
        ("zero", zero_by_constant, "torch.nn.init.constant_"),
    ],
    ids=["getattr", "import_module", "imported-before", "wrapper", "partial", "package-helper",
         "lecun-normal_", "random-trunc_normal_", "zero-constant_"],
)
def test_torch_nn_init_is_refused_however_it_is_reached(method, answer, routine):
    with pytest.raises(ShortcutUsed, match=f"^ex_{method}_weights uses {re.escape(routine)}: {TASK}$"):
        check_init_weights(answer, method)


def he_from_the_shipped_folder(n_in, n_out):
    for path in EXPECTED_FOLDER.glob("*.json"):
        path.read_text(encoding="utf-8")
    return torch.randn(n_in, n_out) * math.sqrt(2.0 / n_in)


def he_asking_expected(n_in, n_out):
    try:
        _expected.expected("check_init_weights", n_in=n_in, n_out=n_out)
    except Exception:  # noqa: BLE001 - whatever comes back, asking is the shortcut
        pass
    return torch.randn(n_in, n_out) * math.sqrt(2.0 / n_in)


class KaimingAskingExpected(reference.SuperviseKaimingWeights):
    def __init__(self, criterion, net):
        super().__init__(criterion, net)
        try:
            _expected.expected("check_supervise_init", method="kaiming")
        except Exception:  # noqa: BLE001
            pass


class RandomReadingShipped(reference.SuperviseRandomWeights):
    def forward(self, x, y):
        for path in EXPECTED_FOLDER.glob("*.json"):
            path.read_bytes()
        return super().forward(x, y)


@pytest.mark.parametrize(
    ("run", "answer", "exercise"),
    [
        (lambda a: check_init_weights(a, "he"), he_from_the_shipped_folder, "ex_he_weights"),
        (lambda a: check_init_weights(a, "he"), he_asking_expected, "ex_he_weights"),
        (lambda a: check_supervise_init(a, "kaiming"), KaimingAskingExpected, "Supervise_Kaiming_weights"),
        (lambda a: check_supervise_init(a, "random"), RandomReadingShipped, "Supervise_random_weights"),
    ],
    ids=["file", "expected", "supervise-expected", "supervise-file-in-forward"],
)
def test_the_course_data_is_refused(run, answer, exercise):
    assert any(EXPECTED_FOLDER.glob("*.json"))  # there is something to read
    with pytest.raises(ShortcutUsed, match=f"^{re.escape(exercise + ' ' + READS)}$"):
        run(answer)


def _pytorch_default_rescaled(n_in, n_out):
    """nn.Linear's own initialisation (kaiming_uniform_ run inside torch), rescaled to He's std."""
    return nn.Linear(n_in, n_out).weight.detach().T.contiguous() * math.sqrt(6.0)


@pytest.mark.parametrize(
    ("run", "answer", "message"),
    [
        (lambda a: check_init_weights(a, "he"), _pytorch_default_rescaled,
         "that is a uniform distribution"),
        (lambda a: check_supervise_init(a, "kaiming"), Supervise, "was not re-initialised"),
        (lambda a: check_supervise_init(a, "random"), precomputed("Supervise_random_weights"),
         "was not re-initialised"),
        (lambda a: check_supervise_init(a, "kaiming"), precomputed("Supervise_Kaiming_weights"),
         "was not re-initialised"),
        (lambda a: check_init_weights(a, "he"), precomputed("ex_mlp"),
         "is a dlnn_helpers.deep_training.PrecomputedNetwork; it should be a torch.Tensor"),
    ],
    ids=["linear-default", "supervise", "precomputed-random", "precomputed-kaiming", "precomputed-net"],
)
def test_package_routines_that_come_close_fail(run, answer, message):
    with pytest.raises(CheckFailure, match=message):
        run(answer)


def test_the_supervise_classes_may_use_torch_nn_init():
    assert "is correct" in check_supervise_init(reference.SuperviseKaimingWeights, "kaiming")
    assert "is correct" in check_supervise_init(reference.SuperviseRandomWeights, "random")


@pytest.mark.parametrize("mode", ["shipped_only", "live_only"])
def test_the_checks_need_no_expected_values(mode):
    """Hidden settings pass without any expected value (the self-check calls: test_expected)."""
    with getattr(_expected, mode)():
        assert "is correct" in check_init_weights(reference.he_weights, "he", seed=10, shape=(1000, 40))
        assert "is correct" in check_supervise_init(reference.SuperviseKaimingWeights, "kaiming", seed=8,
                                                    sizes=(40, 300, 3))
