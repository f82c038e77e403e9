"""The GitHub Pages workflow: valid, triggered by pushes to main, and building what the README builds.

GitHub Actions cannot run here; these tests read the workflow as GitHub would.
"""

from __future__ import annotations

import re

import pytest
import yaml

from ..tools import ROOT, course

WORKFLOW = ROOT / ".github" / "workflows" / "pages.yml"
STUDENT_BUILD = "python scripts/course.py site --edition student"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_workflow_is_valid_github_actions_yaml(workflow):
    assert isinstance(workflow.get("name"), str)
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers["push"]["branches"] == ["main"]
    assert set(workflow["jobs"]) == {"build", "deploy"}
    for name, job in workflow["jobs"].items():
        assert job["runs-on"] == "ubuntu-latest", name
        assert job["steps"], name
        for step in job["steps"]:
            assert set(step) <= {"name", "id", "uses", "run", "with", "env", "if", "shell"}, step
            assert ("uses" in step) != ("run" in step), f"{name}: a step either uses an action or runs"
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]
    assert workflow["jobs"]["deploy"]["needs"] == "build"
    assert workflow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}


def test_workflow_builds_the_student_edition_with_the_readme_command(workflow):
    readme = (ROOT / "README.md").read_text()
    assert f"`{STUDENT_BUILD}`" in readme
    runs = [step["run"] for step in _steps(workflow) if "run" in step]
    builds = [run for run in runs if "scripts/course.py" in run]
    assert len(builds) == 1 and builds[0].split("&&")[-1].strip() == STUDENT_BUILD
    installs = [run for run in runs if "pip install" in run]
    assert installs and "-r requirements-dev.txt" in installs[0]  # the README's install
    assert "pip install -r requirements-dev.txt" in readme


def test_workflow_publishes_the_folder_the_build_writes(workflow):
    uploads = [s for s in _steps(workflow) if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert len(uploads) == 1
    published = ROOT / uploads[0]["with"]["path"]
    assert published == course.edition_output("student")
    deploys = [s for s in _steps(workflow) if s.get("uses", "").startswith("actions/deploy-pages@")]
    assert len(deploys) == 1 and deploys[0]["id"] == "deployment"
    assert workflow["jobs"]["deploy"]["environment"]["name"] == "github-pages"


def test_course_script_accepts_the_workflow_command():
    args = STUDENT_BUILD.split()[2:]
    with pytest.raises(SystemExit) as exit_info:
        course.main([*args, "--help"])
    assert exit_info.value.code == 0
    with pytest.raises(SystemExit) as exit_info:
        course.main(["site", "--edition", "teacher"])
    assert exit_info.value.code == 2
