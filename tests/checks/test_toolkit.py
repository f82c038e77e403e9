"""The shared pieces of every check: the contract readers and the diagnosis toolkit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dlnn_helpers.checks import CheckFailure, NotImplementedYet
from dlnn_helpers.checks._contract import (
    DependencyFailure,
    called_answers,
    expect_array,
    expect_number,
    expect_tensor,
    shape_problem,
    verify_dependencies,
)
from dlnn_helpers.checks._core import call_student
from dlnn_helpers.checks._diagnosis import Mistake, find_mistake, first_bad_entry, judge, matches

# --------------------------------------------------------------------------------- the contract


@pytest.mark.parametrize(
    ("got", "expected", "words"),
    [
        ((40, 8, 1), (40, 8), "it has an extra axis of size 1"),
        ((1, 40, 8, 1), (40, 8), "it has 2 extra axes of size 1"),
        ((40,), (40, 1), "an axis of size 1 is missing"),
        ((8, 40), (40, 8), "it looks transposed"),
        ((5, 3, 4), (5, 4, 3), "its axes are in another order"),
        ((7, 7), (40, 8), ""),
        ((40, 8), (40, 8), ""),
    ],
)
def test_shape_problem_names_the_difference(got, expected, words):
    assert shape_problem(got, expected) == words or (words and words in shape_problem(got, expected))


def test_expect_tensor_returns_a_float64_copy_of_a_conforming_tensor():
    value = torch.arange(6, dtype=torch.float32).reshape(2, 3).requires_grad_(True)
    copy = expect_tensor(value, "x", shape=(2, 3))
    assert copy.dtype == np.float64 and copy.shape == (2, 3)
    copy[0, 0] = 99.0
    assert float(value.detach()[0, 0]) == 0.0  # a copy: the student's tensor is never used again


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (np.zeros((2, 3), dtype=np.float32), "x is a np.ndarray of dtype float32 and shape (2, 3); it "
                                             "should be a torch.Tensor of dtype torch.float32 and "
                                             "shape (2, 3)"),
        (nn.Parameter(torch.zeros(2, 3)), "(a subclass of torch.Tensor); it should be a torch.Tensor"),
        ([[0.0] * 3] * 2, "x is a list of 2 items"),
        (None, "x is None (is a `return` missing?)"),
        (torch.zeros(2, 3, dtype=torch.float64), "x has dtype torch.float64; it should be "
                                                 "torch.float32"),
        (torch.zeros(2, 3, dtype=torch.complex64), "x is a complex tensor"),
        (torch.zeros(2, 3, 1), "x has shape (2, 3, 1); it should have shape (2, 3) = (rows, "
                               "columns): it has an extra axis of size 1"),
        (torch.full((2, 3), float("nan")), "x contains NaN or infinite values"),
    ],
)
def test_expect_tensor_names_what_was_returned_and_what_was_expected(value, words):
    with pytest.raises(CheckFailure) as info:
        expect_tensor(value, "x", shape=(2, 3), meaning="(rows, columns)")
    assert words in str(info.value)


def test_expect_tensor_uses_a_shape_hint_for_a_known_wrong_shape():
    with pytest.raises(CheckFailure, match="it has shape \\(3, 2\\)|you returned Wᵀ"):
        expect_tensor(torch.zeros(3, 2), "W", shape=(2, 3), shape_hints={(3, 2): "you returned Wᵀ"})


def test_expect_array_requires_the_documented_array():
    assert expect_array(np.ones((2, 3)), "W", shape=(2, 3)).shape == (2, 3)
    with pytest.raises(CheckFailure, match="W is a torch.Tensor of dtype torch.float64 and shape "
                       "\\(2, 3\\); it should be a np.ndarray of dtype float64"):
        expect_array(torch.ones(2, 3, dtype=torch.float64), "W", shape=(2, 3))
    with pytest.raises(CheckFailure, match="W has dtype float32; it should be float64"):
        expect_array(np.ones((2, 3), dtype=np.float32), "W", shape=(2, 3))


@pytest.mark.parametrize("value", [2.5, 2, np.float64(2.5), torch.tensor(2.5),
                                   torch.tensor(2.5, dtype=torch.float64)])
def test_a_single_number_may_be_a_float_or_a_0d_tensor(value):
    assert expect_number(value, "loss") == pytest.approx(float(value))


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (True, "loss is a bool"),
        (torch.tensor([2.5]), "loss has shape (1,); it should have shape () = a single number: a 0-d "
                              "tensor or a float: it has an extra axis of size 1"),
        (np.array(2.5), "loss is a np.ndarray of dtype float64 and shape (); it should be a single "
                        "number"),
        (float("inf"), "loss is inf; it should be a finite number"),
    ],
)
def test_anything_else_is_not_a_single_number(value, words):
    with pytest.raises(CheckFailure) as info:
        expect_number(value, "loss")
    assert words in str(info.value)


# ------------------------------------------------------------------------------- the diagnosis


def test_judge_names_the_first_matching_mistake_in_order():
    expected = np.arange(6.0).reshape(2, 3)
    got = -expected
    mistakes = [Mistake("not this one", expected + 1), Mistake("the sign is flipped", -expected),
                Mistake("also the sign, but later", -expected)]
    with pytest.raises(CheckFailure, match="^g \\(case 1\\) is wrong: the sign is flipped\\.$"):
        judge("g", got, expected, mistakes, where="case 1")
    assert judge("g", expected.copy(), expected, mistakes) is None


def test_judge_reports_the_first_bad_entry_otherwise():
    expected = np.zeros((3, 4))
    expected[0, 0] = 1.0
    got = expected.copy()
    got[1, 2] = 0.5
    got[2, 3] = 0.25
    with pytest.raises(CheckFailure) as info:
        judge("g", got, expected, [Mistake("never", np.ones((3, 4)))], advice="g = ….")
    assert str(info.value) == ("g is wrong: 2 of 12 entries differ; the first is at index (1, 2): "
                               "expected 0, got 0.5. g = ….")
    assert first_bad_entry(np.array(2.0), np.array(1.0)) == "expected 1, got 2"
    assert first_bad_entry(np.array([1.0, 3.0]), np.array([1.0, 2.0])).endswith(
        "the first is at index 1: expected 2, got 3")


def test_mistakes_are_computed_only_when_tried_and_none_is_skipped():
    calls = []

    def costly():
        calls.append(1)
        return np.ones(3)

    found = find_mistake(np.zeros(3), [Mistake("skipped", None), Mistake("zeros", np.zeros(3)),
                                       Mistake("costly", costly)])
    assert found.why == "zeros" and calls == []
    assert matches((np.ones(2), 1.0), (np.ones(2), 1.0)) and not matches(np.ones(2), np.ones(3))
    ratio = find_mistake(0.102, [Mistake("a tenth", 0.1)], same=lambda g, w: abs(g / w - 1) < 0.05)
    assert ratio.why == "a tenth"


# ------------------------------------------------------------------------------- dependencies


def _good(x):
    return x


def _todo(x):
    raise NotImplementedError()


def _check_helper(func):
    if func(1) != 1:
        raise CheckFailure("helper is wrong: it does not return its input.")
    return "helper is correct."


def _namespace_with(helper):
    namespace = {"__name__": "__main__", "helper": helper}
    exec(  # noqa: S102 - a notebook cell that calls an earlier exercise
        "class Uses:\n    def step(self):\n        return [helper(i) for i in range(2)]\n"
        "def uses(x):\n    return helper(x)\n"
        "def ignores(x):\n    return x\n",
        namespace,
    )
    return namespace


def test_dependencies_are_found_by_name_in_functions_classes_and_comprehensions():
    namespace = _namespace_with(_good)
    assert called_answers(namespace["uses"], ["helper"]) == {"helper": _good}
    assert called_answers(namespace["Uses"], ["helper"]) == {"helper": _good}
    assert called_answers(namespace["ignores"], ["helper"]) == {}
    assert called_answers(len, ["helper"]) == {}  # a builtin: nothing to find
    assert verify_dependencies("uses", namespace["uses"], {"helper": _check_helper}) == ["helper"]


def test_a_wrong_dependency_is_named_before_the_answer_is_checked():
    namespace = _namespace_with(lambda x: 2 * x)
    with pytest.raises(DependencyFailure, match="^Uses calls your helper, which is not correct yet, "
                       "so Uses cannot be right: fix helper first .* Its check says: helper is "
                       "wrong"):
        verify_dependencies("Uses", namespace["Uses"], {"helper": _check_helper})


def test_an_unimplemented_dependency_waits():
    namespace = _namespace_with(_todo)
    with pytest.raises(NotImplementedYet, match="uses calls helper, which is not implemented yet"):
        verify_dependencies("uses", namespace["uses"],
                            {"helper": lambda f: call_student("helper", f, 1)})
