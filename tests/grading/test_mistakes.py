"""The report's class-wide mistake table (issue 19, point 8): the checks' own words, counted.

The verdicts are the real checks' messages for tutorial 1's common wrong answers
(:data:`autograder.grading.synthetic.WRONG`), with different settings, so that their numbers differ.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import dlnn_helpers.checks as checks
from autograder.grading import synthetic
from autograder.grading.outputs import mistakes
from autograder.grading.outputs.report import write_report

T1 = synthetic.T1


def _verdict(check: str, exercise: str, **settings) -> str:
    """The message the real check gives for the wrong answer of ``exercise``."""
    namespace = {"torch": torch, "np": np, "nn": nn, "math": math}
    exec(synthetic.WRONG[exercise], namespace)  # noqa: S102 - the course's own wrong answers
    function = next(v for k, v in namespace.items() if k.startswith(exercise.rstrip("_")))
    with pytest.raises(checks.CheckFailure) as failure:
        getattr(checks, check)(function, **settings)
    return str(failure.value)


def _class() -> tuple[list[dict], dict[str, float]]:
    """40 graded submissions: 12 returned Vh, 5 computed Hᵀ H (two settings), the rest right."""
    svd = _verdict("check_net_svd", "ex_net_svd")
    rsm = [_verdict("check_net_rsm", "ex_net_rsm"),
           _verdict("check_net_rsm", "ex_net_rsm", seed=8, shape=(30, 5))]
    assert rsm[0] != rsm[1]  # different numbers, one mistake
    rows = []
    for number in range(40):
        scores = dict(synthetic.T1_TESTS)
        verdicts = {test: f"{test[5:]} is correct" for test in scores}
        if number < 12:
            scores["test_ex_net_svd"], verdicts["test_ex_net_svd"] = 0.0, svd
        if 12 <= number < 17:
            scores["test_ex_net_rsm"], verdicts["test_ex_net_rsm"] = 0.0, rsm[number % 2]
        rows.append({"student": f"s{number:02d}", "tutorial": T1, "status": "graded",
                     "score": float(sum(scores.values())), "max_score": 9.0, "manual_max": 0.0,
                     "file": f"s{number:02d}.ipynb", "scores": scores, "verdicts": verdicts,
                     "notes": [], "message": ""})
    rows.append({**rows[0], "student": "late", "status": "rejected", "verdicts": {}})
    return rows, {t: float(p) for t, p in synthetic.T1_TESTS.items()}


def test_the_checks_named_mistakes_are_read_from_their_source():
    words = [w for w, _ in mistakes.known_mistakes()]
    assert len(words) > 40
    assert "you computed Hᵀ H; the RSM compares items: H Hᵀ" in words
    assert any(w.startswith("you divided by sqrt(n_in) only (fan-in)") for w in words)


def test_numbers_shapes_and_sizes_are_one_mistake():
    assert mistakes.normalise("shape (17, 17) of 200x300, std 1.5e-3") == \
        mistakes.normalise("shape (7, 7) of 20x30, std 0.25")
    assert mistakes.normalise("n_in=300 W_tot T1") == "n_in=# W_tot T1"


def test_each_mistake_is_counted_over_the_graded_class():
    rows, maxima = _class()
    tallies = {t.test: t for t in mistakes.tally([r for r in rows], maxima)}
    svd = tallies["test_ex_net_svd"]
    assert (svd.graded, svd.failed) == (40, 12)
    assert len(svd.mistakes) == 1 and svd.mistakes[0][1] == 12
    assert "you returned Vh" in svd.mistakes[0][0]
    assert svd.most_common[1] == 12 and "you returned Vh" in svd.most_common[0]
    rsm = tallies["test_ex_net_rsm"]
    assert rsm.failed == 5 and [count for _, count in rsm.mistakes] == [5]
    assert tallies["test_linear_regression"].failed == 0


def test_the_report_shows_the_table_per_exercise(tmp_path):
    rows, maxima = _class()
    write_report(tmp_path / "report.html", rows, {T1: maxima}, [], {"sandbox": "test"})
    page = (tmp_path / "report.html").read_text()
    assert "What the class got wrong" in page
    assert "12 of 40" in page and "5 of 40" in page
    assert "most common failure message" in page
    assert page.count("<tr><td rowspan=") == 2  # two exercises had failures
