"""No input stops the run (issue 14, point 3) and graders on one output folder coexist (point 4).

Unit tests of :mod:`autograder.grading.inputs.submissions` (reading folders and zips) and of the runner
with a worker that runs no kernel (:mod:`.fake_grading`): every hostile input becomes a row with
its reason, nothing outside the input is read, the run finishes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import threading
import time
import tracemalloc
import zipfile
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from autograder.grading import runner
from autograder.grading.inputs.submissions import MAX_STUDENT_CHARS, Limits, collect, screen

from . import dying_worker
from . import fake_grading as fake
from .fake_grading import T1

TUTORIALS = [T1, "T2_Optimisation"]
SAFE_ID = re.compile(rf"^[\w.@+-]{{1,{MAX_STUDENT_CHARS}}}$")


@pytest.fixture
def alarm():
    """Fail (instead of hanging) when a test blocks for more than 20 s."""
    def timeout(*_):
        raise TimeoutError("blocked")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _by_name(subs):
    return {s.name: s for s in subs}


def test_links_fifos_and_devices_are_rows_never_read(tmp_path, alarm):
    secret = tmp_path / "secret.ipynb"
    secret.write_text("the solution")
    inputs = tmp_path / "in"
    (inputs / "mallory").mkdir(parents=True)
    (inputs / "mallory" / f"{T1}.ipynb").symlink_to(secret)
    (inputs / f"shadow_{T1}.ipynb").symlink_to("/etc/shadow")
    (inputs / f"zero_{T1}.ipynb").symlink_to("/dev/zero")
    (inputs / "solutions").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(inputs / f"fifo_{T1}.ipynb")
    (inputs / "honest").mkdir()
    (inputs / "honest" / f"{T1}.ipynb").write_text("{}")
    found = _by_name(collect(inputs, TUTORIALS))
    assert set(found) == {f"mallory/{T1}.ipynb", f"shadow_{T1}.ipynb", f"zero_{T1}.ipynb",
                          "solutions", f"fifo_{T1}.ipynb", f"honest/{T1}.ipynb"}
    for name in (f"mallory/{T1}.ipynb", f"shadow_{T1}.ipynb", f"zero_{T1}.ipynb", "solutions"):
        assert found[name].data == b"" and "symbolic link" in found[name].problem, name
    assert found[f"fifo_{T1}.ipynb"].data == b""
    assert "FIFO" in found[f"fifo_{T1}.ipynb"].problem
    assert found[f"honest/{T1}.ipynb"].problem == "" and found[f"honest/{T1}.ipynb"].data == b"{}"
    assert not any(s.name.startswith("solutions/") for s in found.values())  # never entered


def test_a_file_that_cannot_be_tried_never_replaces_one_that_can(tmp_path):
    inputs = tmp_path / "in"
    (inputs / "alice").mkdir(parents=True)
    (inputs / "alice" / f"{T1}.ipynb").write_text("{}")
    link = inputs / f"alice_{T1}.ipynb"
    link.symlink_to(inputs / "alice" / f"{T1}.ipynb")
    os.utime(link, (2e9, 2e9), follow_symlinks=False)  # the newer one
    found = _by_name(collect(inputs, TUTORIALS))
    assert found[f"alice_{T1}.ipynb"].replaced_by == f"alice/{T1}.ipynb"
    assert found[f"alice/{T1}.ipynb"].replaced_by == ""


def _zip_with_bomb(path: Path, inflated: int) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"bomb_{T1}.ipynb", b"\0" * inflated)
        zf.writestr(f"small_{T1}.ipynb", b"{}")


def test_zip_sizes_are_checked_before_inflating(tmp_path):
    archive = tmp_path / "class.zip"
    _zip_with_bomb(archive, 64 * 2**20)
    assert archive.stat().st_size < 2**20
    tracemalloc.start()
    found = _by_name(collect(archive, TUTORIALS, Limits(file_bytes=2**20)))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 * 2**20, f"{peak / 2**20:.0f} MiB held while reading"
    assert "larger than the 1.0 MiB limit" in found[f"bomb_{T1}.ipynb"].problem
    assert found[f"bomb_{T1}.ipynb"].data == b""
    assert found[f"small_{T1}.ipynb"].data == b"{}"


def test_zip_totals_counts_links_and_damage_are_rows(tmp_path):
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ("a", "b", "c"):
            zf.writestr(f"{name}_{T1}.ipynb", b"x" * 600)
        link = zipfile.ZipInfo(f"link_{T1}.ipynb")
        link.external_attr = 0o120777 << 16
        zf.writestr(link, "/etc/shadow")
        zf.writestr(f"damaged_{T1}.ipynb", b"y" * 5000)
    data = bytearray(archive.read_bytes())
    offset = data.index(b"damaged_" + T1.encode()) + len(f"damaged_{T1}.ipynb") + 5
    data[offset] ^= 0xFF  # flip a bit of the compressed data
    archive.write_bytes(bytes(data))
    found = _by_name(collect(archive, TUTORIALS, Limits(total_bytes=1500)))
    assert [found[f"{n}_{T1}.ipynb"].problem == "" for n in "abc"] == [True, True, False]
    assert "in all: not read" in found[f"c_{T1}.ipynb"].problem
    assert "symbolic link" in found[f"link_{T1}.ipynb"].problem
    assert found[f"link_{T1}.ipynb"].data == b""
    damaged = _by_name(collect(archive, TUTORIALS))[f"damaged_{T1}.ipynb"]
    assert damaged.data == b"" and "could not be read" in damaged.problem
    found = collect(archive, TUTORIALS, Limits(entries=2))
    assert len(found) == 3 and "more than 2 files" in found[-1].problem


def test_colliding_and_overlong_names_get_distinct_safe_ids(tmp_path):
    archive = tmp_path / "class.zip"
    long_folder = "x" * 300
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"ann marie/{T1}.ipynb", "{}")
        zf.writestr(f"ann_marie/{T1}.ipynb", "{}")
        zf.writestr(f"ann  marie_{T1}.ipynb", "{}")
        zf.writestr(f"{long_folder}/{T1}.ipynb", "{}")
        zf.writestr(f"{long_folder}y/{T1}.ipynb", "{}")
        zf.writestr(f"Ann_Marie/{T1}.ipynb", "{}")  # one folder with ann_marie on macOS
    found = collect(archive, TUTORIALS)
    students = [s.student for s in found]
    assert len({s.casefold() for s in students}) == 6, students
    assert all(SAFE_ID.match(s) for s in students), students
    assert _by_name(found)[f"ann_marie/{T1}.ipynb"].student == "ann_marie"
    assert not any(s.replaced_by for s in found)
    assert students == [s.student for s in collect(archive, TUTORIALS)]  # stable


@pytest.mark.parametrize(("data", "reason"), [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (json.dumps({"cells": [], "nbformat": 4, "metadata": {"a": [[[[[[[[]]]]]]]] * 1}}
                ).replace("[]", "[" * 80 + "]" * 80).encode(), "levels deep"),
    (json.dumps({"cells": [{"cell_type": "code", "source": "", "metadata": {
        "nbgrader": {"grade_id": ["ex_net_rsm"]}}}], "nbformat": 4}).encode(), "grade_id is list"),
    (json.dumps({"cells": [{"cell_type": "code", "source": "", "metadata": {
        "nbgrader": {"grade_id": {"a": 1}}}}], "nbformat": 4}).encode(), "grade_id is dict"),
    (json.dumps({"cells": [{"cell_type": "code", "source": "", "metadata": {
        "nbgrader": {"grade_id": "x", "points": "2"}}}], "nbformat": 4}).encode(), "points is str"),
    (json.dumps({"cells": [{"cell_type": "code", "source": "", "metadata": {
        "nbgrader": "yes"}}], "nbformat": 4}).encode(), "not a dictionary"),
    (json.dumps({"cells": [{"cell_type": "code", "source": "", "id": 5}], "nbformat": 4}).encode(),
     "id that is not text"),
])
def test_hostile_json_is_screened_with_a_reason(data, reason):
    assert reason in screen(data)


def test_a_real_notebook_passes_the_screen():
    assert screen(fake.notebook_bytes()) == ""
    assert screen(b"not json") == ""  # the worker says why


# ---- the runner, with a worker that runs no kernel -------------------------------------------

def _hostile_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"ann marie/{T1}.ipynb", fake.notebook_bytes())
        zf.writestr(f"ann_marie/{T1}.ipynb", fake.notebook_bytes(score="zero"))
        zf.writestr(f"{'q' * 300}/{T1}.ipynb", fake.notebook_bytes())
        zf.writestr(f"deep_{T1}.ipynb", b"[" * 50_000 + b"]" * 50_000)
        zf.writestr(f"listid_{T1}.ipynb", json.dumps({"cells": [{
            "cell_type": "code", "source": "", "metadata": {"nbgrader": {"grade_id": [1]}}}],
            "nbformat": 4}))
        link = zipfile.ZipInfo(f"link_{T1}.ipynb")
        link.external_attr = 0o120777 << 16
        zf.writestr(link, "../../solutions/T1_DeepLinearNetworks/T1_DeepLinearNetworks.ipynb")
        zf.writestr(f"bomb_{T1}.ipynb", b" " * (3 * 2**20))


@pytest.mark.grading
def test_every_hostile_input_is_a_row_with_its_reason_and_the_run_finishes(tmp_path, monkeypatch):
    archive, output = tmp_path / "class.zip", tmp_path / "out"
    _hostile_zip(archive)
    result = fake.run(monkeypatch, archive, output, limits=Limits(file_bytes=2 * 2**20))
    rows = {(r["student"], r["file"][:40]): r for r in fake.rows(output)}
    assert len(rows) == 7 == len(result.rows)
    by_file = {r["file"]: r for r in fake.rows(output)}
    assert by_file[f"ann marie/{T1}.ipynb"]["score"] == "9"
    assert by_file[f"ann_marie/{T1}.ipynb"]["score"] == "0"
    assert by_file[f"ann marie/{T1}.ipynb"]["student"] != by_file[f"ann_marie/{T1}.ipynb"]["student"]
    long_row = next(r for f, r in by_file.items() if f.startswith("qqq"))
    assert long_row["status"] == "graded" and long_row["score"] == "9"
    assert (output / "feedback" / long_row["student"] / f"{T1}.html").is_file()
    for name, reason in [(f"deep_{T1}.ipynb", "nested too deeply"),
                         (f"listid_{T1}.ipynb", "grade_id is list"),
                         (f"link_{T1}.ipynb", "symbolic link"),
                         (f"bomb_{T1}.ipynb", "larger than")]:
        row = by_file[name]
        assert row["status"] == "rejected" and row["score"] == "0", row
        assert reason in row["problem"], row
    assert not list(output.rglob("*solutions*"))


@pytest.mark.grading
def test_a_failure_writing_one_submission_is_its_row_and_the_next_run_retries(tmp_path, monkeypatch):
    inputs, output = tmp_path / "in", tmp_path / "out"
    for student in ("alice", "bob"):
        (inputs / student).mkdir(parents=True)
        (inputs / student / f"{T1}.ipynb").write_bytes(fake.notebook_bytes())
    (output / "feedback").mkdir(parents=True)
    (output / "feedback" / "bob").write_text("a file where a folder must go")
    fake.run(monkeypatch, inputs, output)
    rows = {r["student"]: r for r in fake.rows(output)}
    assert rows["alice"]["status"] == "graded"
    assert rows["bob"]["status"] == "error"
    assert "feedback files could not be written" in rows["bob"]["problem"]
    (output / "feedback" / "bob").unlink()
    again = fake.run(monkeypatch, inputs, output)
    assert [r.student for r in again.graded_now] == ["bob"]
    assert {r["student"]: r["status"] for r in fake.rows(output)} == {"alice": "graded",
                                                                      "bob": "graded"}


@pytest.mark.grading
@pytest.mark.parametrize("damage", [b"", b"{\"half\": [", b"[1, 2]", b"\xff\xfe"])
def test_a_lost_state_file_is_rebuilt_from_the_gradebook(tmp_path, monkeypatch, damage):
    inputs, output = tmp_path / "in", tmp_path / "out"
    for student in ("alice", "bob"):
        (inputs / student).mkdir(parents=True)
        (inputs / student / f"{T1}.ipynb").write_bytes(fake.notebook_bytes())
    fake.run(monkeypatch, inputs, output)
    (output / "state.json").write_bytes(damage)
    (inputs / "bob" / f"{T1}.ipynb").unlink()  # bob's row now lives only in the gradebook
    lines: list[str] = []
    later = fake.run(monkeypatch, inputs, output, progress=lines.append)
    assert any("rebuilt from the gradebook" in line for line in lines)
    assert [r.student for r in later.graded_now] == ["alice"]
    rows = {r["student"]: r for r in fake.rows(output)}
    assert set(rows) == {"alice", "bob"} and rows["bob"]["score"] == "9"
    assert "restored from the gradebook" in rows["bob"]["problem"]
    assert set(fake.state(output)) == {f"{T1}/alice", f"{T1}/bob"}
    assert not list(output.glob(".state.json.*"))  # no temporary file left


@pytest.mark.grading
def test_a_second_grader_on_the_same_output_is_refused_or_waits_and_no_row_is_lost(
        tmp_path, monkeypatch):
    first, second, output = tmp_path / "first", tmp_path / "second", tmp_path / "out"
    for folder, student in ((first, "alice"), (second, "bob")):
        (folder / student).mkdir(parents=True)
        (folder / student / f"{T1}.ipynb").write_bytes(fake.notebook_bytes())
    output.mkdir()
    with runner.output_lock(output):
        with pytest.raises(runner.OutputLocked,
                           match=rf"another grader is writing .*pid {os.getpid()}"):
            fake.run(monkeypatch, first, output)
    assert not (output / "grades.csv").exists()
    results, lines = {}, []

    def grade(name, folder):
        results[name] = fake.run(monkeypatch, folder, output, lock_wait=120,
                                 progress=lines.append)

    holder = runner.output_lock(output)
    holder.__enter__()
    threads = [threading.Thread(target=grade, args=(n, f)) for n, f in
               (("first", first), ("second", second))]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    assert not results  # both wait while the lock is held
    holder.__exit__(None, None, None)
    for thread in threads:
        thread.join(120)
    assert set(results) == {"first", "second"}
    assert any(line.startswith("waiting up to 120 s for another grader") for line in lines)
    assert {r["student"] for r in fake.rows(output)} == {"alice", "bob"}
    assert set(fake.state(output)) == {f"{T1}/alice", f"{T1}/bob"}


def test_a_worker_that_dies_takes_no_other_submission_with_it(monkeypatch):
    monkeypatch.setattr(runner, "grade_submission", dying_worker.grade)
    jobs = [(name, name) for name in ("alice", "killer", "bob", "carol")]
    lines: list[str] = []
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=spawn) as pool:
        outcomes = {job: outcome for job, _, outcome in runner._graded(pool, jobs, True, 2,
                                                                       lines.append)}
    assert {job: outcomes[job] for job in ("alice", "bob", "carol")} == {
        job: f"graded {job}" for job in ("alice", "bob", "carol")}
    assert isinstance(outcomes["killer"], BrokenProcessPool)
    assert any("a grading worker died" in line for line in lines)


class _BreaksWhileHandingOut(ThreadPoolExecutor):
    """A pool whose worker dies while the jobs are still being handed out: it refuses the third."""

    def __init__(self) -> None:
        super().__init__(1)
        self.handed = 0

    def submit(self, fn, /, *args, **kwargs):
        self.handed += 1
        if self.handed > 2:
            raise BrokenProcessPool("a child process terminated abruptly")
        return super().submit(fn, *args, **kwargs)


@pytest.mark.parametrize("own", [True, False])
def test_jobs_not_handed_out_when_a_worker_died_are_graded_again(monkeypatch, own):
    monkeypatch.setattr(runner, "grade_submission", dying_worker.grade)
    jobs = [(name, name) for name in ("alice", "bob", "carol", "dan")]
    lines: list[str] = []
    with _BreaksWhileHandingOut() as pool:
        outcomes = {job: outcome for job, _, outcome in runner._graded(pool, jobs, own, 2,
                                                                       lines.append)}
    assert set(outcomes) == set(dict(jobs)), "every job has an outcome"
    assert outcomes["alice"] == "graded alice" and outcomes["bob"] == "graded bob"
    if own:  # our own pool: graded again, each in a process of its own
        assert outcomes["carol"] == "graded carol" and outcomes["dan"] == "graded dan"
        assert any("a grading worker died: 2 submission(s)" in line for line in lines)
    else:  # the caller's executor: its error stands for each job it refused
        assert all(isinstance(outcomes[job], BrokenProcessPool) for job in ("carol", "dan"))


def test_the_command_refuses_a_busy_output_folder_with_a_clear_message(tmp_path, capsys):
    from autograder.grading.cli import main

    inputs, output = tmp_path / "in", tmp_path / "out"
    (inputs / "alice").mkdir(parents=True)
    (inputs / "alice" / f"{T1}.ipynb").write_bytes(b"{}")
    output.mkdir()
    with runner.output_lock(output):
        started = time.monotonic()
        status = main([str(inputs), "-o", str(output), "--quiet", "--wait", "1"])
        waited = time.monotonic() - started
    err = capsys.readouterr().err
    assert status == 3 and 1.0 <= waited < 10
    assert "another grader is writing" in err and f"pid {os.getpid()}" in err and "--wait" in err
    assert not (output / "state.json").exists()


def test_names_that_are_not_utf8_or_hold_control_characters_are_safe(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    raw = os.fsencode(inputs) + b"/\xff\xfeodd_" + T1.encode() + b".ipynb"
    with open(raw, "wb") as stream:
        stream.write(b"{}")
    (inputs / f"\x1b[2Jbell\x07_{T1}.ipynb").write_bytes(b"{}")
    found = collect(inputs, TUTORIALS)
    assert len(found) == 2 and all(s.data == b"{}" and not s.problem for s in found)
    for sub in found:
        sub.name.encode("utf-8")  # printable in the CSV and the report
        assert SAFE_ID.match(sub.student), sub.student
