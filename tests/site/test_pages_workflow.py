"""The workflows: this (instructor's) repository builds the sites and the student release; the student
repository's workflow, written by the release, publishes the student site on GitHub Pages.

GitHub Actions cannot run here; these tests read the workflows as GitHub would.
"""

from __future__ import annotations

import re

import pytest
import yaml

from coursebuild import cli, release

from ..tools import ROOT, course

WORKFLOW = ROOT / ".github" / "workflows" / "pages.yml"
INSTRUCTOR_BUILD = "python scripts/course.py site --edition instructor"
RELEASE = "python scripts/course.py release _build/student-repo"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


@pytest.fixture(scope="module")
def student_workflow() -> dict:
    """The student repository's workflow, as the release writes it."""
    return yaml.safe_load(release._template("pages.yml", build=release.SITE_BUILD).decode())


def _steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def _runs(workflow: dict) -> list[str]:
    return [step["run"] for step in _steps(workflow) if "run" in step]


def _check_syntax(workflow: dict, jobs: set[str]) -> None:
    assert isinstance(workflow.get("name"), str)
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers["push"]["branches"] == ["main"]
    assert set(workflow["jobs"]) == jobs
    for name, job in workflow["jobs"].items():
        assert job["runs-on"] == "ubuntu-latest", name
        assert job["steps"], name
        for step in job["steps"]:
            assert set(step) <= {"name", "id", "uses", "run", "with", "env", "if", "shell"}, step
            assert ("uses" in step) != ("run" in step), f"{name}: a step either uses an action or runs"
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]


@pytest.mark.parametrize("which", ["instructor", "student"])
def test_workflows_are_valid_github_actions_yaml(workflow, student_workflow, which):
    if which == "instructor":
        _check_syntax(workflow, {"build"})
        assert workflow["permissions"] == {"contents": "read"}, "the instructor's repository publishes none"
    else:
        _check_syntax(student_workflow, {"build", "deploy"})
        assert student_workflow["jobs"]["deploy"]["needs"] == "build"
        assert student_workflow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}


def test_instructor_workflow_builds_the_instructor_edition_and_the_release(workflow):
    readme = (ROOT / "README.md").read_text()
    assert f"`{INSTRUCTOR_BUILD}`" in readme and "python scripts/course.py release" in readme
    runs = _runs(workflow)
    installs = [run for run in runs if "pip install" in run]
    assert installs and "-r requirements-dev.txt" in installs[0]  # the README's install
    assert "pip install -r requirements-dev.txt" in readme
    commands = [run.split("&&", 1)[-1].strip() for run in runs if "scripts/course.py" in run]
    assert commands == [INSTRUCTOR_BUILD, RELEASE]
    # The student site is built from the release exactly as the student repository builds it.
    student = [run for run in runs if "jupyter-book" in run]
    assert len(student) == 1
    assert student[0].split("&&")[-2:] == [" cd _build/student-repo ", f" {release.SITE_BUILD}"]
    uploads = {s["with"]["name"]: s["with"]["path"] for s in _steps(workflow)
               if s.get("uses", "").startswith("actions/upload-artifact@")}
    assert ROOT / uploads["instructor-site"] == course.edition_output("instructor")
    assert uploads["student-release"] == "_build/student-repo"
    assert uploads["student-site"] == "_build/student-repo/_build/html"
    assert not any(s.get("uses", "").startswith("actions/deploy-pages@") for s in _steps(workflow))


def test_student_workflow_builds_the_released_site_without_executing(student_workflow):
    runs = _runs(student_workflow)
    assert runs[0].endswith("pip install -r requirements-site.txt")
    assert [run.split("&&")[-1].strip() for run in runs[1:]] == [release.SITE_BUILD]
    assert not any("scripts/course.py" in run or "nbgrader" in run for run in runs)
    steps = _steps(student_workflow)
    uploads = [s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert len(uploads) == 1 and uploads[0]["with"]["path"] == "_build/html"
    deploys = [s for s in steps if s.get("uses", "").startswith("actions/deploy-pages@")]
    assert len(deploys) == 1 and deploys[0]["id"] == "deployment"
    environment = student_workflow["jobs"]["deploy"]["environment"]
    assert environment == {"name": "github-pages", "url": "${{ steps.deployment.outputs.page_url }}"}
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off", "the released pages are executed already"


def test_course_script_accepts_the_workflow_commands(capsys):
    for command in (INSTRUCTOR_BUILD, RELEASE):
        with pytest.raises(SystemExit) as exit_info:
            cli.main([*command.split()[2:], "--help"])
        assert exit_info.value.code == 0
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["site", "--edition", "teacher"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["release"])
    assert exit_info.value.code == 2
    assert "release DEST" in capsys.readouterr().err
