"""The T3 checks accept every correct answer and reject realistic wrong ones with a precise message.

For each graded exercise: the reference, at least two alternative correct answers, and at least four
wrong answers seen in practice, each with the message it must produce.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

import dlnn_helpers
from dlnn_helpers.checks import CheckFailure, NotImplementedYet, ShortcutUsed, _expected, self_check
from dlnn_helpers.checks.deep_training import (
    check_batchnorm_mlp,
    check_mlp,
    check_residual_net,
    check_residual_sequence,
    check_tiny_rule,
)
from dlnn_helpers.deep_training import PrecomputedNetwork, Supervise, precomputed
from dlnn_reference import deep_training as dt
from dlnn_reference import deep_training as reference

# ------------------------------------------------------------------------------ ResidualSequence


class ResidualModuleList(nn.Module):
    def __init__(self, *layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        out = x
        for layer in self.layers:
            out = layer(out)
        return x + out


class ResidualInPlaceOnOutput(nn.Sequential):
    def forward(self, x):
        out = super().forward(x)
        out += x  # in place on the new tensor: fine
        return out


class ResidualTemplateBug(nn.Sequential):
    def forward(self, x):
        return x


class ResidualNoSkip(nn.Sequential):
    def forward(self, x):
        return super().forward(x)


class ResidualReluAfter(nn.Sequential):
    def forward(self, x):
        return torch.relu(super().forward(x) + x)


class ResidualPythonList(nn.Module):
    def __init__(self, *layers):
        super().__init__()
        self.layers = list(layers)

    def forward(self, x):
        out = x
        for layer in self.layers:
            out = layer(out)
        return out + x


class ResidualModifiesInput(nn.Sequential):
    def forward(self, x):
        x += super().forward(x.clone())
        return x


class ResidualDetached(nn.Sequential):
    def forward(self, x):
        return (super().forward(x) + x).detach()


class ResidualNotImplemented(nn.Sequential):
    def forward(self, x):
        raise NotImplementedError()


@pytest.mark.parametrize("cls", [dt.ResidualSequence, ResidualModuleList, ResidualInPlaceOnOutput])
def test_residual_sequence_accepts_correct_answers(cls):
    assert "is correct" in check_residual_sequence(cls)
    assert "is correct" in check_residual_sequence(cls, seed=3, width=1, fan_out=4, batch=2)


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (ResidualTemplateBug, "returns its input unchanged"),
        (ResidualNoSkip, "skip connection `\\+ x` is missing"),
        (ResidualReluAfter, "applies ReLU after the sum"),
        (ResidualPythonList, "must be registered as sub-modules"),
        (ResidualModifiesInput, "modified its input x in place"),
        (ResidualDetached, "detached from the graph"),
    ],
)
def test_residual_sequence_rejects_wrong_answers(cls, message):
    with pytest.raises(CheckFailure, match=message):
        check_residual_sequence(cls)


def test_residual_sequence_not_a_class_and_not_implemented():
    with pytest.raises(CheckFailure, match="class derived from nn.Module"):
        check_residual_sequence(lambda *layers: None)
    with pytest.raises(NotImplementedYet):
        check_residual_sequence(ResidualNotImplemented)


# ------------------------------------------------------------------------------------------ ex_mlp


def mlp_ordered_dict(input_size, hidden_dims, n_layers=3, activation=nn.ReLU):
    layers = OrderedDict()
    sizes = [input_size] + [hidden_dims] * (n_layers - 1)
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers[f"linear{i}"] = nn.Linear(a, b)
        layers[f"act{i}"] = activation()
    layers["out"] = nn.Linear(hidden_dims, 1)
    layers["sigmoid"] = nn.Sigmoid()
    return nn.Sequential(layers)


def mlp_append(input_size, hidden_dims, n_layers=3, activation=nn.ReLU):
    net = nn.Sequential(nn.Linear(input_size, hidden_dims), activation())
    for _ in range(n_layers - 2):
        net.append(nn.Linear(hidden_dims, hidden_dims))
        net.append(activation())
    net.append(nn.Linear(hidden_dims, 1))
    net.append(nn.Sigmoid())
    return net


def mlp_hidden_count(input_size, hidden_dims, n_layers=3, activation=nn.ReLU):
    return dt.mlp(input_size, hidden_dims, n_layers + 1, activation)  # n_layers read as hidden


def mlp_no_sigmoid(input_size, hidden_dims, n_layers=3, activation=nn.ReLU):
    return nn.Sequential(*list(dt.mlp(input_size, hidden_dims, n_layers, activation))[:-1])


def mlp_shared_layer(input_size, hidden_dims, n_layers=3, activation=nn.ReLU):
    block = [nn.Linear(hidden_dims, hidden_dims), activation()]
    return nn.Sequential(nn.Linear(input_size, hidden_dims), activation(),
                         *(block * (n_layers - 2)), nn.Linear(hidden_dims, 1), nn.Sigmoid())


def mlp_list(input_size, hidden_dims, n_layers=3, activation=nn.ReLU):
    return list(dt.mlp(input_size, hidden_dims, n_layers, activation))


def mlp_fixed_relu(input_size, hidden_dims, n_layers=3, activation=nn.ReLU):
    return dt.mlp(input_size, hidden_dims, n_layers, nn.ReLU)


def mlp_wrong_input(input_size, hidden_dims, n_layers=3, activation=nn.ReLU):
    return dt.mlp(36, hidden_dims, n_layers, activation)


@pytest.mark.parametrize("func", [dt.mlp, mlp_ordered_dict, mlp_append])
def test_mlp_accepts_correct_answers(func):
    assert "is correct" in check_mlp(func)
    assert "is correct" in check_mlp(func, settings=((10, 7, 2, nn.Tanh), (50, 20, 5, nn.Sigmoid)))


@pytest.mark.parametrize(
    ("func", "message"),
    [
        (mlp_hidden_count, "n_layers counts every Linear layer"),
        (mlp_no_sigmoid, "ends too early \\(missing Sigmoid\\(\\)\\)"),
        (mlp_shared_layer, "the same layer object appears more than once"),
        (mlp_list, "wrap them in a network: return nn.Sequential"),
        (mlp_fixed_relu, "layer 1 should be Sigmoid\\(\\), got ReLU\\(\\)"),
    ],
)
def test_mlp_rejects_wrong_answers(func, message):
    with pytest.raises(CheckFailure, match=message):
        check_mlp(func)


def test_mlp_wrong_input_size_names_the_layer():
    with pytest.raises(CheckFailure, match="layer 0 should map 10 → 7 features, got 36 → 7"):
        check_mlp(mlp_wrong_input, settings=((10, 7, 2, nn.Tanh),))


def test_mlp_one_layer_short_is_explained():
    def short(input_size, hidden_dims, n_layers=3, activation=nn.ReLU):
        return dt.mlp(input_size, hidden_dims, n_layers - 1, activation)

    with pytest.raises(CheckFailure, match="a 3-layer network has two hidden layers"):
        check_mlp(short)


# -------------------------------------------------------------------------------- ex_batchnorm_mlp


def bn_mlp_loop(input_size, hidden_dims, n_layers=6):
    layers = []
    width = input_size
    for i in range(n_layers - 1):
        layers += [nn.Linear(width, hidden_dims), nn.ReLU()]
        if i in (0, n_layers - 2):
            layers.append(nn.BatchNorm1d(hidden_dims))
        width = hidden_dims
    return nn.Sequential(*layers, nn.Linear(hidden_dims, 1), nn.Sigmoid())


def bn_mlp_insert(input_size, hidden_dims, n_layers=6):
    layers = list(dt.mlp(input_size, hidden_dims, n_layers, nn.ReLU))
    layers.insert(len(layers) - 2, nn.BatchNorm1d(hidden_dims))
    layers.insert(2, nn.BatchNorm1d(hidden_dims))
    return nn.Sequential(*layers)


def bn_mlp_before_relu(input_size, hidden_dims, n_layers=6):
    layers = list(dt.batchnorm_mlp(input_size, hidden_dims, n_layers))
    layers[1], layers[2] = layers[2], layers[1]
    return nn.Sequential(*layers)


def bn_mlp_everywhere(input_size, hidden_dims, n_layers=6):
    layers = []
    width = input_size
    for _ in range(n_layers - 1):
        layers += [nn.Linear(width, hidden_dims), nn.ReLU(), nn.BatchNorm1d(hidden_dims)]
        width = hidden_dims
    return nn.Sequential(*layers, nn.Linear(hidden_dims, 1), nn.Sigmoid())


def bn_mlp_first_only(input_size, hidden_dims, n_layers=6):
    layers = list(dt.mlp(input_size, hidden_dims, n_layers, nn.ReLU))
    layers.insert(2, nn.BatchNorm1d(hidden_dims))
    return nn.Sequential(*layers)


def bn_mlp_wrong_features(input_size, hidden_dims, n_layers=6):
    layers = list(dt.batchnorm_mlp(input_size, hidden_dims, n_layers))
    layers[2] = nn.BatchNorm1d(input_size)
    return nn.Sequential(*layers)


@pytest.mark.parametrize("func", [dt.batchnorm_mlp, bn_mlp_loop, bn_mlp_insert])
def test_batchnorm_mlp_accepts_correct_answers(func):
    assert "is correct" in check_batchnorm_mlp(func)
    assert "is correct" in check_batchnorm_mlp(func, settings=((12, 5, 3), (36, 16, 8)))


@pytest.mark.parametrize(
    ("func", "message"),
    [
        (bn_mlp_before_relu, "BatchNorm comes after the ReLU"),
        (bn_mlp_everywhere, "exactly two BatchNorm1d layers .* found 5"),
        (bn_mlp_first_only, "exactly two BatchNorm1d layers .* found 1"),
        (bn_mlp_wrong_features, "layer 2 should be BatchNorm1d\\(32\\), got BatchNorm1d\\(36\\)"),
    ],
)
def test_batchnorm_mlp_rejects_wrong_answers(func, message):
    with pytest.raises(CheckFailure, match=message):
        check_batchnorm_mlp(func)


# -------------------------------------------------------------------------------- ex_residual_net


class ResidualSequence(nn.Sequential):  # a student's own class: same name, defined elsewhere
    def forward(self, x):
        return super().forward(x) + x


def res_student_class(input_size, hidden_dims, fan_out_dims, n_blocks, batchnorm=False):
    layers = [nn.Linear(input_size, hidden_dims)]
    for _ in range(n_blocks):
        layers.append(ResidualSequence(
            nn.BatchNorm1d(hidden_dims) if batchnorm else nn.ReLU(),
            nn.Linear(hidden_dims, fan_out_dims), nn.ReLU(), nn.Linear(fan_out_dims, hidden_dims)))
    if batchnorm:
        layers.append(nn.BatchNorm1d(hidden_dims))
    return nn.Sequential(*layers, nn.Linear(hidden_dims, 1), nn.Sigmoid())


def res_add_module(input_size, hidden_dims, fan_out_dims, n_blocks, batchnorm=False):
    net = nn.Sequential()
    net.add_module("stem", nn.Linear(input_size, hidden_dims))
    for i in range(n_blocks):
        block = ResidualSequence()
        block.add_module("first", nn.BatchNorm1d(hidden_dims) if batchnorm else nn.ReLU())
        block.add_module("up", nn.Linear(hidden_dims, fan_out_dims))
        block.add_module("act", nn.ReLU())
        block.add_module("down", nn.Linear(fan_out_dims, hidden_dims))
        net.add_module(f"block{i}", block)
    if batchnorm:
        net.add_module("norm", nn.BatchNorm1d(hidden_dims))
    net.add_module("head", nn.Linear(hidden_dims, 1))
    net.add_module("out", nn.Sigmoid())
    return net


def res_plain_sequential_blocks(input_size, hidden_dims, fan_out_dims, n_blocks, batchnorm=False):
    net = dt.residual_net(input_size, hidden_dims, fan_out_dims, n_blocks, batchnorm)
    return nn.Sequential(*[nn.Sequential(*m) if isinstance(m, dt.ResidualSequence) else m
                           for m in net])


def res_missing_final_bn(input_size, hidden_dims, fan_out_dims, n_blocks, batchnorm=False):
    net = dt.residual_net(input_size, hidden_dims, fan_out_dims, n_blocks, False)
    if batchnorm:
        net = nn.Sequential(*[
            ResidualSequence(nn.BatchNorm1d(hidden_dims), *list(m)[1:])
            if isinstance(m, dt.ResidualSequence) else m for m in net])
    return net


def res_swapped_sizes(input_size, hidden_dims, fan_out_dims, n_blocks, batchnorm=False):
    return dt.residual_net(input_size, fan_out_dims, hidden_dims, n_blocks, batchnorm)


def res_one_block_short(input_size, hidden_dims, fan_out_dims, n_blocks, batchnorm=False):
    return dt.residual_net(input_size, hidden_dims, fan_out_dims, n_blocks - 1, batchnorm)


def res_shared_block(input_size, hidden_dims, fan_out_dims, n_blocks, batchnorm=False):
    block = dt.ResidualSequence(nn.BatchNorm1d(hidden_dims) if batchnorm else nn.ReLU(),
                                nn.Linear(hidden_dims, fan_out_dims), nn.ReLU(),
                                nn.Linear(fan_out_dims, hidden_dims))
    layers = [nn.Linear(input_size, hidden_dims), *([block] * n_blocks)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(hidden_dims))
    return nn.Sequential(*layers, nn.Linear(hidden_dims, 1), nn.Sigmoid())


@pytest.mark.parametrize("func", [dt.residual_net, res_student_class, res_add_module])
def test_residual_net_accepts_correct_answers(func):
    assert "is correct" in check_residual_net(func)
    assert "is correct" in check_residual_net(
        func, settings=((9, 4, 6, 3, True), (36, 10, 10, 0, False)))


@pytest.mark.parametrize(
    ("func", "message"),
    [
        (res_plain_sequential_blocks, "layer 1 should be ResidualSequence.*got Sequential"),
        (res_missing_final_bn, "layer 3 should be BatchNorm1d\\(16\\), got Linear\\(16, 1\\)"),
        (res_swapped_sizes, "layer 0 should map 36 → 16 features, got 36 → 32"),
        (res_one_block_short, "there should be n_blocks = 4 residual blocks, found 3"),
        (res_shared_block, "the same layer object appears more than once"),
    ],
)
def test_residual_net_rejects_wrong_answers(func, message):
    with pytest.raises(CheckFailure, match=message):
        check_residual_net(func)


# ------------------------------------------------------------------------------------- the tiny rule


def rule_bitwise(grids):
    """XOR of the centre pixels and the corners' AND, with integer bit operations."""
    g = grids.to(torch.int64)
    label = g[:, 2, 2] ^ g[:, 2, 3] ^ g[:, 3, 2] ^ g[:, 3, 3] ^ (g[:, 0, 0] & g[:, 0, 5] & g[:, 5, 5])
    return label.to(torch.float32)


def rule_loop(grids):
    """One grid at a time, in plain Python, through a flat list of 36 pixels."""
    labels = []
    for grid in grids.tolist():
        flat = [v for row in grid for v in row]
        count = sum(flat[i] for i in (14, 15, 20, 21)) + (flat[0] and flat[5] and flat[35])
        labels.append(float(int(count) % 2))
    return torch.tensor(labels)


def rule_centre_only(grids):
    return grids[:, 2:4, 2:4].sum(dim=(1, 2)) % 2


def rule_every_pixel_counts(grids):  # the corners counted one by one
    return (grids[:, 2:4, 2:4].sum(dim=(1, 2)) + grids[:, 0, 0] + grids[:, 0, 5] + grids[:, 5, 5]) % 2


def rule_inverted(grids):
    return 1.0 - dt.tiny_rule_answer(grids)


def rule_count_not_parity(grids):
    return grids[:, 2:4, 2:4].sum(dim=(1, 2)) + grids[:, 0, 0] * grids[:, 0, 5] * grids[:, 5, 5]


def rule_boolean(grids):
    return dt.tiny_rule_answer(grids) == 1


def rule_hard(grids):  # the hard task's rule: one corner too many
    return (dt.tiny_rule_answer(grids) + grids[:, 5, 0]) % 2


@pytest.mark.parametrize("func", [dt.tiny_rule_answer, rule_bitwise, rule_loop])
def test_tiny_rule_accepts_correct_answers(func):
    assert "is correct" in check_tiny_rule(func)
    assert "is correct" in check_tiny_rule(func, seed=31, n_grids=97)


@pytest.mark.parametrize(
    ("func", "message"),
    [
        (rule_centre_only, "gives \\d+ of 512 random grids the wrong label. The first is grid \\d+"),
        (rule_every_pixel_counts, "(?s)the wrong label.*Its label is [01]; ex_tiny_rule says [01]"),
        (rule_hard, "the wrong label"),
        (rule_inverted, "gives every grid the other label"),
        (rule_count_not_parity, "should return labels 0.0 or 1.0 only; it also returned 2"),
        (rule_boolean, "has dtype torch.bool; it should be torch.float32"),
    ],
)
def test_tiny_rule_rejects_wrong_answers(func, message):
    with pytest.raises(CheckFailure, match=message):
        check_tiny_rule(func)


def test_tiny_rule_shows_a_grid_it_gets_wrong_and_not_the_rule():
    with pytest.raises(CheckFailure) as info:
        check_tiny_rule(rule_centre_only)
    text = str(info.value)
    grid_lines = [line for line in text.splitlines() if line.startswith("    ")]
    assert len(grid_lines) == 6 and all(len(line.split()) == 6 for line in grid_lines)
    for word in ("centre", "corner", "parity", "odd"):
        assert word not in text


# ------------------------------------------------------------------------------------- self_check


def test_not_implemented_and_self_check_output():
    def todo(*args, **kwargs):
        raise NotImplementedError()

    for check in (check_mlp, check_batchnorm_mlp, check_residual_net, check_tiny_rule):
        with pytest.raises(NotImplementedYet, match="not implemented yet"):
            check(todo)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert self_check(check_mlp, dt.mlp)
        assert not self_check(check_mlp, todo)
        assert not self_check(check_mlp, mlp_no_sigmoid)
        assert self_check(check_tiny_rule, rule_bitwise)
        assert not self_check(check_tiny_rule, rule_centre_only)
    assert err.getvalue() == ""
    assert "✅" in out.getvalue() and "⏳" in out.getvalue() and "❌" in out.getvalue()


def test_student_error_is_chained_not_hidden():
    def broken(input_size, hidden_dims, n_layers=3, activation=nn.ReLU):
        return nn.Sequential(nn.Linear(input_size, hidden_dims), activation)  # class, no ()

    with pytest.raises(CheckFailure, match="ex_mlp raised TypeError") as info:
        check_mlp(broken)
    assert isinstance(info.value.__cause__, TypeError)


# ================================================================================================
# Cheating answers (were test_cheating_deep_training.py):
# Cheating answers of tutorial 3's exercises, each refused by its self-check with a plain
# message.
# ================================================================================================

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
