"""Grading through a Dask cluster: any ``concurrent.futures.Executor`` can take the work.

Needs the ``dask`` extra (``pip install -e ".[dask]"``): dask.distributed is imported
unconditionally, so a CI without it fails loudly instead of skipping.
"""

from __future__ import annotations

import csv
import os

import nbformat
import pytest
from distributed import Client, LocalCluster

from autograder.grading.runner import grade_class
from autograder.grading.sandbox import SandboxSettings

from ..tools import ROOT
from .grading_class import ALL, T1, _answers, filled, student_notebook

pytestmark = [pytest.mark.grading, pytest.mark.slow]


def test_a_local_dask_cluster_grades_like_the_process_pool(tmp_path, monkeypatch, grading_env):
    course = grading_env.course
    output = grading_env.output(tmp_path / "out")  # prepared and calibrated once per session
    inputs = tmp_path / "submissions"
    for student, nb in {
        "ada": filled(_answers(**dict.fromkeys(ALL, "correct"))),
        "bo": filled(_answers(ex_net_rsm="correct", linear_regression="wrong")),
        "cy": student_notebook(),
    }.items():
        (inputs / student).mkdir(parents=True)
        nbformat.write(nb, inputs / student / f"{T1}.ipynb")
    (inputs / f"dee_{T1}.ipynb").write_text("{ not json")

    # Dask's worker processes import the grader from the repository, like a real cluster's
    # workers import it from their installed environment.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    ))
    # The scheduler's web server on a free port (None still asks for 8787, which another cluster
    # of this machine may hold: a warning).
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        executor = client.get_executor()
        result = grade_class(inputs, output, course=course, tutorials=[T1],
                             executor=executor, settings=SandboxSettings(hide=[str(ROOT)]),
                             progress=None)
        dask_workers = {str(pid) for pid in client.run(os.getpid).values()}
    assert len(dask_workers) == 2
    graded = [r for r in result.graded_now if r.worker]
    assert len(result.graded_now) == 4 and len(graded) == 4
    assert {r.worker.rsplit(":", 1)[1] for r in graded} <= dask_workers
    with (tmp_path / "out" / "grades.csv").open() as stream:
        rows = {r["student"]: r for r in csv.DictReader(stream)}
    assert {s: float(r["score"]) for s, r in rows.items()} == {
        "ada": 9.0, "bo": 2.0, "cy": 0.0, "dee": 0.0,
    }
    assert rows["dee"]["status"] == "rejected"
    assert "Executor" in (tmp_path / "out" / "report.html").read_text()
