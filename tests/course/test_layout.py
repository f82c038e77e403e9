"""The course layout (``courselayout``) is read from nbgrader_config.py, the one place that names the
folders and nbgrader's markers; it maps every tutorial to its topic and modules."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import courselayout as layout
from dlnn_helpers import course

from ..tools import ROOT


def test_layout_follows_the_repository_configuration():
    assert layout.source_folder() == ROOT / "solutions"
    assert layout.release_folder() == ROOT / "tutorials"
    ids = layout.tutorial_ids()
    assert ids[0] == "T1_DeepLinearNetworks" and ids == sorted(ids) and len(ids) >= 6
    for tutorial in ids:
        assert layout.solution_path(tutorial).is_file()
        written = layout.repository_path(layout.student_path(tutorial))
        assert written == f"tutorials/{tutorial}/{tutorial}.ipynb"


def test_layout_follows_a_renamed_configuration(tmp_path):
    config = (ROOT / "nbgrader_config.py").read_text()
    config = config.replace('source_directory = "solutions"', 'source_directory = "instructor"')
    (tmp_path / "nbgrader_config.py").write_text(config)
    (tmp_path / "instructor" / "T9_Extra").mkdir(parents=True)
    target = tmp_path / "instructor" / "T9_Extra" / "T9_Extra.ipynb"
    shutil.copy(layout.solution_path("T1_DeepLinearNetworks"), target)
    (tmp_path / "instructor" / "notes").mkdir()
    (tmp_path / "instructor" / "notes" / "draft.ipynb").write_text("{}")  # not named like its folder
    assert layout.source_folder(tmp_path) == tmp_path / "instructor"
    assert layout.tutorial_ids(tmp_path) == ["T9_Extra"]
    assert layout.solution_path("T9_Extra", tmp_path).is_file()


def test_a_missing_configuration_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="no nbgrader configuration"):
        layout.source_folder(tmp_path)


def test_markers_are_nbgraders_and_follow_the_configuration(tmp_path):
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    classes = {"ClearSolutions": ClearSolutions, "ClearHiddenTests": ClearHiddenTests}
    for field, (section, trait, default) in layout.Markers.NBGRADER_DEFAULTS.items():
        assert classes[section].class_traits()[trait].default_value == default, field
    markers = layout.course_layout().markers
    assert markers.solution == ("### BEGIN SOLUTION", "### END SOLUTION")
    assert markers.hidden_tests == ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
    config = (ROOT / "nbgrader_config.py").read_text()
    config += '\nc.ClearSolutions.begin_solution_delimeter = "START ANSWER"\n'
    (tmp_path / "nbgrader_config.py").write_text(config)
    renamed = layout.CourseLayout.from_config(tmp_path).markers
    assert renamed.begin_solution == "### START ANSWER" and renamed.end_solution == "### END SOLUTION"
    source = "a = 1\n    ### START ANSWER\nb = 2\n### END SOLUTION\nc = 3"
    assert renamed.between(source, *renamed.solution) == ["b = 2"]


def test_every_tutorial_has_a_topic_and_its_modules_exist():
    here = layout.course_layout()
    assert [t.id for t in here.tutorials] == here.tutorial_ids()
    for tutorial in here.tutorials:
        assert here.tutorial(tutorial.topic) is here.tutorial(tutorial.id) is tutorial
        assert (here.student_package / "checks" / f"{tutorial.topic}.py").is_file()
        assert (here.reference_package / f"{tutorial.topic}.py").is_file()
        for module in (*tutorial.helpers, *tutorial.uses):
            assert (here.student_package / f"{module}.py").is_file(), (tutorial.id, module)
        for module in tutorial.references:
            assert (here.reference_package / f"{module}.py").is_file(), (tutorial.id, module)
        assert (ROOT / "tests" / "checks" / f"test_{tutorial.topic}_checks.py").is_file()
        assert (ROOT / "tests" / "claims" / f"test_{tutorial.id}_claims.py").is_file()
    with pytest.raises(KeyError, match="neither a tutorial nor a topic"):
        here.tutorial("T9_Extra")


def _named_after(module: str, topic: str) -> bool:
    return module == topic or module.startswith(f"{topic}_")


def test_every_helper_module_is_named_after_its_tutorials_topic_or_shared():
    """One naming scheme per tutorial: ``dlnn_helpers/<topic>.py`` or ``<topic>_<what>.py``, and
    ``dlnn_reference`` likewise; a module of several tutorials is listed as shared."""
    here = layout.course_layout()
    owners: dict[str, int] = {}
    for number, tutorial in enumerate(here.tutorials):
        for module in (*tutorial.helpers, *tutorial.references):
            assert _named_after(module, tutorial.topic), (tutorial.id, module)
        for module in tutorial.helpers:
            assert module not in owners and module not in layout.SHARED_HELPERS, module
            owners[module] = number
        for module in tutorial.uses:  # another tutorial's, listed before this one
            assert module in owners and owners[module] < number, (tutorial.id, module)
    on_disk = {p.stem for p in here.student_package.glob("*.py")} - {"__init__"}
    listed = set(owners) | set(layout.SHARED_HELPERS)
    assert on_disk == listed, sorted(on_disk ^ listed)
    references = {p.stem for p in here.reference_package.glob("*.py")} - {"__init__", "shipped"}
    assert references == {t.topic for t in here.tutorials} | {m for t in here.tutorials for m in t.references}


def _generated_modules() -> set[str]:
    """The modules of ``dlnn_helpers`` that ``expected`` writes (values only, no logic)."""
    from coursebuild.generated import GENERATED

    return {Path(item.path).stem for item in GENERATED if item.path.endswith(".py")}


def test_every_helper_module_with_logic_has_its_test_module():
    """``tests/helpers/test_<module>.py`` for every module of ``dlnn_helpers`` but the generated
    ones (values only: ``expected --check`` and their stand-ins' tests cover them)."""
    generated = _generated_modules()
    assert generated == {"optimisation_data"}
    modules = {p.stem for p in layout.course_layout().student_package.glob("*.py")} - {"__init__"}
    tests = {p.stem.removeprefix("test_") for p in (ROOT / "tests" / "helpers").glob("test_*.py")}
    assert modules - generated <= tests, sorted(modules - generated - tests)
    assert tests <= modules, sorted(tests - modules)  # no test module named after something else


def test_the_environment_variables_are_the_student_packages():
    assert layout.STATIC_ENV_VAR == course.STATIC_ENV_VAR == "DLNN_STATIC_WIDGETS"
    assert layout.AUTOGRADE_ENV_VAR == course.AUTOGRADE_ENV_VAR == "NBGRADER_EXECUTION"
    from dlnn_helpers import deep_training

    assert deep_training.AUTOGRADE_ENV_VAR is course.AUTOGRADE_ENV_VAR


def test_contributing_maps_every_tutorial_to_its_modules():
    guide = (ROOT / "CONTRIBUTING.md").read_text()
    for tutorial in layout.TUTORIALS:
        row = next((line for line in guide.splitlines() if line.startswith(f"| {tutorial.id} ")), "")
        assert row, f"CONTRIBUTING.md has no row for {tutorial.id}"
        for name in (tutorial.topic, *tutorial.helpers, *tutorial.references, *tutorial.uses):
            assert f"`{name}" in row, (tutorial.id, name)
        for module in set(tutorial.helpers) - _generated_modules():
            assert f"test_{module}.py" in row, (tutorial.id, module)
    shared = next((p for p in guide.split("\n\n") if p.startswith("Shared by several tutorials")), "")
    for module in layout.SHARED_HELPERS:
        assert f"`{module}.py`" in shared, module
