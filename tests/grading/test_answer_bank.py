"""The synthetic class's one answer bank (:mod:`autograder.grading.synthetic.answer_bank`)."""

from __future__ import annotations

import pytest

from autograder.grading import synthetic
from autograder.grading.synthetic import answer_bank

from ..tools import TUTORIALS


@pytest.mark.parametrize("tutorial", TUTORIALS)
def test_every_exercise_has_its_test_and_an_answer_written_apart(tutorial):
    """A new check's exercise needs an answer written apart from the solution (ALTERNATIVE)."""
    exercises = answer_bank.exercises(tutorial)
    assert exercises and set(exercises) == set(answer_bank.reference(tutorial))
    assert set(exercises.values()) <= set(answer_bank.autograded_tests(tutorial))
    assert set(answer_bank.ALTERNATIVE[tutorial]) == set(exercises)
    assert set(answer_bank.WRONG.get(tutorial, {})) <= set(exercises)


def test_the_library_answers_are_exercises_of_the_optimisation_tutorial():
    assert set(answer_bank.LIBRARY) <= set(answer_bank.exercises(answer_bank.T2))


def test_tutorial_1s_kinds_are_the_banks_and_its_scores_its_tests():
    assert synthetic.ALTERNATIVE == answer_bank.ALTERNATIVE[synthetic.T1]
    assert synthetic.WRONG == answer_bank.WRONG[synthetic.T1]
    assert synthetic.CORRECT == answer_bank.reference(synthetic.T1)
    assert set(synthetic.WRONG) == set(synthetic.EXERCISES), "every T1 exercise has a wrong answer"
    full = synthetic.scores(*synthetic.ALL)
    assert full == synthetic.T1_TESTS and sum(full.values()) == 9
    assert sum(synthetic.scores("ex_net_svd").values()) == 3
    chosen = synthetic.answers(ex_net_rsm="wrong")
    assert chosen["ex_net_rsm"] == synthetic.WRONG["ex_net_rsm"]
    assert chosen["ex_net_svd"] == synthetic.STUB
