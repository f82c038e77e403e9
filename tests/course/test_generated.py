"""The generated files of the student package: one list, one writer, fresh within the tolerance
(``coursebuild.generated``, ``python scripts/course.py expected``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from coursebuild import cli, generated
from courselayout import course_layout
from dlnn_reference.deep_training import RUN_TUTORIALS, format_run_records, read_run_log
from dlnn_reference.shipped import RTOL

from ..conftest import recorded_runs_log

PACKAGE = course_layout().student_package


def test_every_generated_file_of_the_student_package_is_listed():
    """Data files, and modules saying they are generated, are all written by the one writer."""
    listed = {item.path for item in generated.GENERATED}
    data = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*")
            if p.is_file() and p.suffix in (".json", ".npz", ".npy")
            and not p.is_relative_to(PACKAGE / generated.EXPECTED)}
    modules = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
               if "(generated file)" in p.read_text(encoding="utf-8")}
    assert data | modules == listed
    topics = {t.topic for t in course_layout().tutorials}
    for item in generated.GENERATED:
        assert item.topic in topics and item.where.is_file(), item.path


def test_numbers_are_compared_within_the_tolerance_never_bitwise():
    shipped = {"a": [1.0, 0.5, -2.0], "n": 3, "name": "x"}
    assert generated.numbers_differ({"a": [1.0, 0.5 + 1e-6, -2.0], "n": 3, "name": "x"}, shipped) == ""
    why = generated.numbers_differ({"a": [1.0, 0.5 + 10 * RTOL * 2, -2.0], "n": 3, "name": "x"},
                                   shipped)
    assert why.startswith("/a[1]:")
    assert generated.numbers_differ({**shipped, "n": 4}, shipped) == "/n: 3 shipped, 4 now"
    assert "keys" in generated.numbers_differ({"a": [1.0, 0.5, -2.0]}, shipped)


def test_npz_files_are_compared_by_their_arrays(tmp_path):
    values = np.linspace(-1, 1, 50)
    np.savez(tmp_path / "shipped.npz", x=values.astype(np.float16), n=np.arange(3))
    np.savez(tmp_path / "close.npz", x=(values * (1 + 2e-4)).astype(np.float16), n=np.arange(3))
    np.savez(tmp_path / "far.npz", x=(values * 1.01).astype(np.float16), n=np.arange(3))
    np.savez(tmp_path / "ints.npz", x=values.astype(np.float16), n=np.arange(1, 4))
    assert generated.compare_npz(tmp_path / "close.npz", tmp_path / "shipped.npz") == ""
    assert generated.compare_npz(tmp_path / "far.npz", tmp_path / "shipped.npz").startswith("x:")
    assert generated.compare_npz(tmp_path / "ints.npz", tmp_path / "shipped.npz") == "n: other values"


def test_a_generated_module_is_compared_by_its_values(tmp_path):
    (tmp_path / "a.py").write_text('"""Doc."""\n\nSEED = 1\nVALUES = (\n    0.25, 1.5,\n)\n')
    (tmp_path / "b.py").write_text('"""Other doc."""\nSEED = 1\nVALUES = (0.25000001, 1.5)\n')
    (tmp_path / "c.py").write_text("SEED = 2\nVALUES = (0.25, 1.5)\n")
    assert generated.compare_module(tmp_path / "b.py", tmp_path / "a.py") == ""
    assert generated.compare_module(tmp_path / "c.py", tmp_path / "a.py") == "/SEED: 1 shipped, 2 now"


def test_json_is_compared_number_by_number(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"run": {"loss": [2.0, 1.0], "epochs": 3}}))
    (tmp_path / "b.json").write_text(json.dumps({"run": {"loss": [2.0, 1.00001], "epochs": 3}}))
    (tmp_path / "c.json").write_text(json.dumps({"run": {"loss": [2.0, 1.1], "epochs": 3}}))
    assert generated.compare_json(tmp_path / "b.json", tmp_path / "a.json") == ""
    assert generated.compare_json(tmp_path / "c.json", tmp_path / "a.json").startswith("/run/loss[1]")


def test_a_record_of_chaotic_runs_is_fresh_while_it_records_the_same_experiments(tmp_path):
    def record(**changes):
        run = {"label": "relu", "n_parameters": 21_249, "max_epochs": 2000, "losses": "iXQz",
               "seconds": 11.7, "stop_reason": "100% validation accuracy"}
        return {"relu": {**run, **changes}, "tanh": {**run, "label": "tanh"}}

    shipped = tmp_path / "shipped.json"
    shipped.write_text(json.dumps(record()))
    for name, changes, why in [
        ("other_cpu", {"losses": "k8Dy", "seconds": 9.2, "stop_reason": "no progress"}, ""),
        ("wider", {"n_parameters": 25_000}, "'relu': n_parameters 21249 recorded, 25000 now"),
        ("longer", {"max_epochs": 3000}, "'relu': max_epochs 2000 recorded, 3000 now"),
    ]:
        (tmp_path / f"{name}.json").write_text(json.dumps(record(**changes)))
        assert generated.compare_recorded_runs(tmp_path / f"{name}.json", shipped) == why
    (tmp_path / "fewer.json").write_text(json.dumps({"relu": record()["relu"]}))
    assert "['tanh']" in generated.compare_recorded_runs(tmp_path / "fewer.json", shipped)
    (entry,) = [g for g in generated.GENERATED if g.path.endswith("precomputed_runs.json")]
    assert entry.compare is generated.compare_recorded_runs and entry.training


@pytest.fixture(scope="module")
def captured() -> dict:
    """The expected values the references give now (computed once for this module)."""
    from dlnn_reference import shipped

    return shipped.capture_all()


def test_the_shipped_files_are_fresh_and_check_names_a_stale_one(monkeypatch, tmp_path, capsys,
                                                                  captured):
    """``expected --check`` (training runs aside) passes on the repository, and names each stale
    file when one is changed beyond the tolerance."""
    from dlnn_reference import shipped

    monkeypatch.setattr(shipped, "capture_all", lambda: captured)
    assert cli.main(["expected", "--check"]) == 0
    out = capsys.readouterr().out
    assert "up to date" in out and "data/precomputed_runs.json" in out  # said to be not checked
    item = next(i for i in generated.GENERATED if i.path == "optimisation_data.py")
    copy = tmp_path / "optimisation_data.py"
    source = item.where.read_text(encoding="utf-8")
    copy.write_text(source.replace("SERIES_SEED = 2021", "SERIES_SEED = 2022"), encoding="utf-8")
    monkeypatch.setattr(type(item), "where", property(lambda self: copy if self is item else
                                                       PACKAGE / self.path))
    assert cli.main(["expected", "--check"]) == 1
    err = capsys.readouterr().err
    assert "stale: dlnn_helpers/optimisation_data.py (/SERIES_SEED: 2022 shipped, 2021 now)" in err
    assert cli.main(["expected"]) == 0  # writes the stale copy again, leaves the others alone
    assert "SERIES_SEED = 2021" in copy.read_text(encoding="utf-8")
    assert generated.compare_module(copy, PACKAGE / item.path) == ""  # the same within the tolerance
    assert "1 generated file(s)" in capsys.readouterr().out


def test_the_writer_is_a_step_of_the_command(capsys):
    # The command's own parser (scripts/course.py runs it: test_scripts.py runs the script).
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["expected", "--help"])
    said = capsys.readouterr()
    assert exit_info.value.code == 0 and "--training" in said.out and said.err == ""


def test_the_training_runs_record_is_fresh_by_the_reference_notebooks_runs(reference_run, tmp_path):
    """``precomputed_runs.json`` against the runs that this session's reference runs of T3 and T4
    made (``DLNN_RECORD_RUNS`` set for their kernels, ``tests/conftest.py``): the same records that
    ``expected --training`` would write, without executing the two notebooks a second time."""
    records: dict[str, dict] = {}
    for tutorial in RUN_TUTORIALS:
        reference_run(tutorial)
        read_run_log(recorded_runs_log(tutorial), records)
    (entry,) = [g for g in generated.GENERATED if g.path.endswith("precomputed_runs.json")]
    assert entry.training and entry.compare is generated.compare_recorded_runs
    fresh = tmp_path / "precomputed_runs.json"
    fresh.write_text(format_run_records(records), encoding="utf-8")
    assert generated.compare_recorded_runs(fresh, PACKAGE / entry.path) == "", (
        "run: python scripts/course.py expected --training")
    # each recorded run is whole: what the replay of a student notebook needs
    assert all({"losses", "val_predictions", "flip_sensitivity"} <= set(r) for r in records.values())


def test_a_record_of_other_runs_is_stale(tmp_path):
    shipped = json.loads((PACKAGE / "data" / "precomputed_runs.json").read_text(encoding="utf-8"))
    label = sorted(shipped)[0]
    fewer = tmp_path / "fewer.json"
    fewer.write_text(format_run_records({k: v for k, v in shipped.items() if k != label}), "utf-8")
    assert label in generated.compare_recorded_runs(fewer, PACKAGE / "data" / "precomputed_runs.json")
    longer = tmp_path / "longer.json"
    longer.write_text(format_run_records({**shipped, label: {**shipped[label], "max_epochs": 4000}}),
                      "utf-8")
    assert "max_epochs 2000 recorded, 4000 now" in generated.compare_recorded_runs(
        longer, PACKAGE / "data" / "precomputed_runs.json")
    same = tmp_path / "same.json"
    same.write_text(format_run_records(shipped), "utf-8")
    assert same.read_bytes() == (PACKAGE / "data" / "precomputed_runs.json").read_bytes()


@pytest.mark.slow
def test_the_trained_features_are_fresh(tmp_path):
    """``relu_features.npz`` against tutorial 6's networks trained now (as ``--training`` does)."""
    (entry,) = [g for g in generated.GENERATED if g.path.endswith("relu_features.npz")]
    fresh = tmp_path / "relu_features.npz"
    entry.write(fresh)
    assert entry.compare(fresh, entry.where) == "", (
        "run: python scripts/course.py expected --training")


def test_a_record_of_trained_features_is_fresh_while_it_holds_the_same_arrays_and_spectra(tmp_path):
    def record(name, **changes):
        arrays = {"s-depth1-width10-trained": np.array([80.0, 10.0, 1.0], np.float32),
                  "curves-depth1-width10-trained": np.ones((5, 3), np.float16)}
        np.savez(tmp_path / f"{name}.npz", **{**arrays, **changes})
        return tmp_path / f"{name}.npz"

    shipped = record("shipped")
    flipped = record("flipped", **{"curves-depth1-width10-trained": -np.ones((5, 3), np.float16),
                                   "s-depth1-width10-trained": np.array([81.0, 9.5, 1.2], np.float32)})
    assert generated.compare_feature_record(flipped, shipped) == ""  # a sign, a little rounding
    other = record("other", **{"s-depth1-width10-trained": np.array([80.0, 20.0, 1.0], np.float32)})
    assert generated.compare_feature_record(other, shipped).startswith("s-depth1-width10-trained:")
    wider = record("wider", **{"curves-depth1-width10-trained": np.ones((5, 4), np.float16)})
    assert "float16[5, 3] shipped, float16[5, 4] now" in generated.compare_feature_record(wider, shipped)
    (entry,) = [g for g in generated.GENERATED if g.path.endswith("relu_features.npz")]
    assert entry.compare is generated.compare_feature_record and entry.training
