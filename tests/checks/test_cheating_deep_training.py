"""Cheating answers of tutorial 3's exercises, each refused by its self-check with a plain message.

Tutorial 3 refuses no library routine (its exercises are about which PyTorch layers go where), so
the cheats are the course's own data and routines: the shipped expected structures (read from the
file, or asked of ``expected()``), and what the student package still holds that comes close
(the stand-ins that the notebook uses while an exercise is not done).  Also: the self-checks run on
the shipped values alone (as in the student release), and hidden settings are judged live only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import dlnn_helpers
from dlnn_helpers.checks import CheckFailure, ShortcutUsed, _expected
from dlnn_helpers.checks.deep_training import (
    check_batchnorm_mlp,
    check_mlp,
    check_residual_net,
    check_residual_sequence,
)
from dlnn_helpers.deep_training import PrecomputedNetwork, Supervise, precomputed
from dlnn_reference import deep_training as reference

SHIPPED = Path(dlnn_helpers.__file__).parent / "checks" / "expected" / "deep_training.json"
READS = "reads the course's expected answers (the data the self-check compares with): the exercise is " \
        "to compute them yourself"

_LEAVES = {"Linear": lambda d: nn.Linear(d[1], d[2], bias=d[3]),
           "BatchNorm1d": lambda d: nn.BatchNorm1d(d[1])}


def _build(desc) -> nn.Module:
    """A network built from a structure description (what a cheat does with the expected values)."""
    if desc[0] in _LEAVES:
        return _LEAVES[desc[0]](desc)
    if len(desc) == 1:
        return getattr(nn, desc[0])()
    children = [_build(child) for child in desc[1]]
    kind = reference.ResidualSequence if desc[0] == "ResidualSequence" else nn.Sequential
    return kind(*children)


def _from_file(check: str):
    def answer(*args, **kwargs):
        table = json.loads(SHIPPED.read_text(encoding="utf-8"))
        wanted = [v for k, v in table.items() if json.loads(k)[0] == check]
        return _build(_expected.decode(wanted[0])["correct"])

    return answer


def mlp_from_expected(input_size, hidden_dims, n_layers=3, activation=nn.ReLU):
    exp = _expected.expected("check_mlp", input_size=input_size, hidden_dims=hidden_dims,
                             n_layers=n_layers, activation=activation.__name__)
    return _build(exp["correct"])


def residual_net_from_expected(input_size, hidden_dims, fan_out_dims, n_blocks, batchnorm=False):
    exp = _expected.expected("check_residual_net", input_size=input_size, hidden_dims=hidden_dims,
                             fan_out_dims=fan_out_dims, n_blocks=n_blocks, batchnorm=batchnorm)
    return _build(exp["correct"])


class ResidualAsksExpected(nn.Sequential):
    def forward(self, x):
        _expected.expected("check_mlp", input_size=36, hidden_dims=128, n_layers=3, activation="ReLU")
        return super().forward(x) + x


@pytest.mark.parametrize(
    ("check", "answer", "exercise"),
    [
        (check_mlp, _from_file("check_mlp"), "ex_mlp"),
        (check_batchnorm_mlp, _from_file("check_batchnorm_mlp"), "ex_batchnorm_mlp"),
        (check_residual_net, _from_file("check_residual_net"), "ex_residual_net"),
        (check_mlp, mlp_from_expected, "ex_mlp"),
        (check_residual_net, residual_net_from_expected, "ex_residual_net"),
        (check_residual_sequence, ResidualAsksExpected, "ResidualSequence"),
    ],
    ids=["mlp-file", "batchnorm-file", "residual-net-file", "mlp-expected", "residual-net-expected",
         "residual-sequence-expected"],
)
def test_answers_taken_from_the_course_data_are_refused(check, answer, exercise):
    with pytest.raises(ShortcutUsed, match=f"^{re.escape(exercise + ' ' + READS)}$"):
        check(answer)


@pytest.mark.parametrize(
    ("check", "answer", "message"),
    [
        (check_mlp, precomputed("ex_mlp"), "should return an nn.Sequential, got "
         "dlnn_helpers.deep_training.PrecomputedNetwork"),
        (check_batchnorm_mlp, precomputed("ex_batchnorm_mlp"), "should return an nn.Sequential"),
        (check_residual_net, precomputed("ex_residual_net"), "should return an nn.Sequential"),
        (check_residual_sequence, PrecomputedNetwork, "ResidualSequence\\(\\.\\.\\.\\) raised TypeError: "
         "PrecomputedNetwork stands in for an exercise named by a string"),
        (check_residual_sequence, Supervise, "ResidualSequence\\(\\.\\.\\.\\) raised TypeError"),
        (check_residual_sequence, nn.Sequential, "the skip connection `\\+ x` is missing"),
    ],
    ids=["precomputed-mlp", "precomputed-batchnorm", "precomputed-residual-net", "stand-in-network",
         "supervise", "plain-sequential"],
)
def test_package_routines_that_come_close_fail(check, answer, message):
    with pytest.raises(CheckFailure, match=message):
        check(answer)


def test_a_stand_in_network_computes_nothing():
    net = precomputed("ex_mlp")(36, 128, 3, nn.ReLU)
    assert not list(net.parameters())
    with pytest.raises(RuntimeError, match="stands in for ex_mlp, which does not pass its self-check"):
        net(torch.zeros(2, 36))


# ------------------------------------------------------------------ shipped-only and live-only paths


def test_wrong_answers_are_still_diagnosed_with_the_shipped_values():
    def no_sigmoid(input_size, hidden_dims, n_layers=3, activation=nn.ReLU):
        return nn.Sequential(*list(reference.mlp(input_size, hidden_dims, n_layers, activation))[:-1])

    with _expected.shipped_only(), pytest.raises(CheckFailure, match="missing Sigmoid"):
        check_mlp(no_sigmoid)


def test_the_declared_refusals_of_tutorials_3_and_4():
    from dlnn_helpers.checks._shortcuts import DECLARED

    for check in ("check_mlp", "check_batchnorm_mlp", "check_residual_net", "check_residual_sequence"):
        assert DECLARED[check][1] == ()  # which layers go where: every layer is PyTorch's own
    assert DECLARED["check_init_weights"][1] == ("torch.nn.init",)
    assert DECLARED["check_supervise_init"][1] == ()  # these use torch.nn.init on purpose
