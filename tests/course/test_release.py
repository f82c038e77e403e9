"""The student release (``python scripts/course.py release DEST``): complete, free of every answer,
reproducible, checkable, and installable and runnable as Colab uses it.

The release is written once per session (``release_tree``, ``tests/course/conftest.py``) from the
session's reference runs.  The solution lines searched for are read here, from the notebooks' JSON,
independently of ``coursebuild.release``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest
import yaml

from coursebuild import cli, release
from dlnn_helpers.course import STUDENT_REPOSITORY, colab_url, pip_requirement

from ..tools import ROOT, TUTORIALS, course, stderr_outputs

TOP_LEVEL = {
    ".github", ".gitignore", "LICENSE", "README.md", "RELEASE", "_config.yml", "_ext", "_static",
    "_toc.yml", "book", "dlnn_helpers", "intro.md", "pyproject.toml",
    "requirements-site.txt", "running.md", "tutorials",
}
INSTRUCTOR_ONLY = {
    "solutions", "autograder", "coursebuild", "courselayout", "dlnn_reference", "tests", "scripts",
    "nbgrader_config.py", "gradebook.db", "_build", "__pycache__",
}


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


# ------------------------------------------------------------------------------------------------
# (a) what the tree holds
# ------------------------------------------------------------------------------------------------


def test_release_holds_the_student_repository_and_nothing_of_the_instructor(release_tree):
    files = _files(release_tree)
    assert {path.split("/")[0] for path in files} == TOP_LEVEL
    instructor = [p for p in files if set(p.split("/")) & INSTRUCTOR_ONLY or p.endswith((".pyc", ".db"))]
    assert instructor == []
    for tutorial in TUTORIALS:
        notebook = course.repository_path(course.student_path(tutorial))
        assert files[notebook] == course.student_path(tutorial).read_bytes()
        page = nbformat.reads(files[f"book/{tutorial}.ipynb"].decode(), as_version=4)
        assert any(output.get("data", {}).get("image/png") for cell in page.cells
                   for output in cell.get("outputs", [])), f"{tutorial}: the page is executed already"
        assert colab_url(notebook) in files["README.md"].decode()
    package = {p for p in files if p.startswith("dlnn_helpers/")}
    assert package == {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "dlnn_helpers").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert files["LICENSE"] == (ROOT / "LICENSE").read_bytes()
    assert STUDENT_REPOSITORY in files["README.md"].decode()
    pyproject = files["pyproject.toml"].decode()
    assert 'include = ["dlnn_helpers*"]' in pyproject and "dlnn_reference" not in pyproject
    assert "nbgrader" not in pyproject and "dask" not in pyproject and "jupyter-book" in pyproject
    workflow = yaml.safe_load(files[".github/workflows/pages.yml"].decode())
    runs = [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]
    assert any(run.endswith(release.SITE_BUILD) for run in runs)
    assert not any("scripts/" in run for run in runs), "the student repository has no build scripts"


# ------------------------------------------------------------------------------------------------
# (b) no answer anywhere
# ------------------------------------------------------------------------------------------------


def _between(lines: list[str], begin: str, end: str) -> list[str]:
    inside, found = False, []
    for line in lines:
        if line.strip() == begin:
            inside = True
        elif line.strip() == end:
            inside = False
        elif inside:
            found.append(line.strip())
    return found


def _answer_lines() -> dict[str, str]:
    """Solution lines and sample answers of unreleased tutorials, hidden test lines of all, read from
    the notebooks' JSON: line -> its kind.  Short lines, comments, pieces of a statement (``nn.ReLU(),``)
    and the release's few common lines say nothing; a line that a student notebook holds is public."""
    released = set(course.released_solutions())
    student = "\n".join(
        "".join(cell["source"])
        for tutorial in TUTORIALS
        for cell in json.loads(course.student_path(tutorial).read_text())["cells"]
    )
    assert len(release.COMMON_LINES) <= 5
    answers: dict[str, str] = {}
    for tutorial in TUTORIALS:
        for cell in json.loads(course.solution_path(tutorial).read_text())["cells"]:
            lines = "".join(cell["source"]).splitlines()
            grading = cell["metadata"].get("nbgrader", {})
            found = {line: "hidden test" for line in _between(lines, "### BEGIN HIDDEN TESTS",
                                                              "### END HIDDEN TESTS")}
            if tutorial not in released and grading.get("solution") and cell["cell_type"] == "code":
                found |= {line: "solution" for line in _between(lines, "### BEGIN SOLUTION",
                                                                "### END SOLUTION")}
            elif tutorial not in released and grading.get("solution"):
                found |= {line.strip(): "sample answer" for line in lines}
            for line, kind in found.items():
                if (len(line) >= 10 and not line.startswith("#") and line[-1] not in "([{,:"
                        and line not in release.COMMON_LINES and line not in student):
                    answers[line] = kind
    return answers


def _strings(node) -> list[str]:
    if isinstance(node, dict):
        return [s for key, value in node.items() if not key.startswith("image/") for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return [node] if isinstance(node, str) else []


def _found(folder: Path, answers: dict[str, str]) -> list[tuple[str, str]]:
    """(file, line) for every answer line that a file of ``folder`` holds: as bytes, and for a
    notebook or JSON file also inside its strings (where quotes and line breaks are escaped)."""
    hits = []
    for path, content in _files(folder).items():
        text = content.decode("utf-8", errors="replace")
        if path.endswith((".ipynb", ".json")):
            text += "\n" + "\n".join(_strings(json.loads(text)))
        hits += [(path, line) for line in answers if line in text]
    return hits


def test_no_solution_line_hidden_test_or_sample_answer_is_anywhere_in_the_release(release_tree, tmp_path):
    answers = _answer_lines()
    kinds = set(answers.values())
    assert {"hidden test", "solution"} <= kinds and len(answers) > 100, "the search has lines to find"
    assert _found(release_tree, answers) == []
    # The same search finds them in a deliberately polluted copy (into a module, a page's cell and
    # the README), and so does the release's own guard.
    polluted = shutil.copytree(release_tree, tmp_path / "polluted")
    # A solution line with quotes, which a notebook's JSON escapes, where there is one.
    solutions = sorted((('"' not in line), line) for line, kind in answers.items() if kind == "solution")
    solution = solutions[0][1]
    hidden = next(line for line, kind in answers.items() if kind == "hidden test")
    sample = next((line for line, kind in answers.items() if kind == "sample answer"), hidden)
    with open(polluted / "dlnn_helpers" / "utils.py", "a") as module:
        module.write(f"\n# {solution}\n")
    page_path = polluted / "book" / f"{TUTORIALS[0]}.ipynb"
    page = nbformat.read(page_path, as_version=4)
    page.cells[-1].source += "\n" + hidden
    nbformat.write(page, page_path)
    (polluted / "README.md").write_text((polluted / "README.md").read_text() + "\n" + sample + "\n")
    hits = _found(polluted, answers)
    assert ("dlnn_helpers/utils.py", solution) in hits
    assert (f"book/{TUTORIALS[0]}.ipynb", hidden) in hits
    assert ("README.md", sample) in hits
    guard = release.leaks(release.read_tree(polluted))
    assert any(hit.startswith("dlnn_helpers/utils.py:") for hit in guard)
    assert any(hit.startswith(f"book/{TUTORIALS[0]}.ipynb:") for hit in guard)
    # An exercise's answer under other names in a shipped module: the release refuses it too.
    assert release.helper_leaks(release.read_tree(release_tree)) == []
    with open(polluted / "dlnn_helpers" / "deep_linear_nets.py", "a") as module:
        module.write("\n\ndef _w(model):\n    total = torch.eye(3)\n    for w in model.parameters():\n"
                     "        total = w.detach() @ total\n    return total\n")
    (hit,) = release.helper_leaks(release.read_tree(polluted))
    assert hit.startswith("dlnn_helpers/deep_linear_nets.py:") and "solution of ex_net_svd" in hit


def test_the_helper_search_finds_answers_under_other_names_and_leaves_common_code_alone():
    """The canonical search of helper source: renamed answers are found, shared structure is not."""
    answers = release.solution_expressions()
    assert len(answers) > 15
    package = {str(p.relative_to(ROOT)): p.read_bytes()
               for p in (ROOT / "dlnn_helpers").rglob("*.py")}
    assert release.helper_leaks(package, answers) == []  # the package as it is holds none
    found = {
        "rsms[epoch] = (hid @ hid.mT).numpy()": "ex_net_rsm",  # the old deep_linear_nets.train
        "            w_tot = weight.detach() @ w_tot": "ex_net_svd",
        "    return inputs @ w.T + b": "ex_linear_layer",
        "out = torch.randn(rows, cols) / math.sqrt(rows)": "ex_lecun_weights",
        "p -= self.lr * (p.grad + self.weight_decay * p)": "simple_gradient_descent",
    }
    for line, exercise in found.items():
        hits = release.helper_leaks({"dlnn_helpers/m.py": line.encode()}, answers)
        assert any(f"solution of {exercise}:" in hit for hit in hits), (line, hits)
    common = ["with torch.no_grad():", "loss.backward()", "for weight in model.parameters():",
              "y = x @ w.T", "return nn.Sequential(*layers)", "for _ in range(n_layers - 1):",
              "gram = h.T @ h", "return s, u * s"]
    for line in common:
        assert release.helper_leaks({"dlnn_helpers/m.py": line.encode()}, answers) == [], line
    # only shipped modules are searched, and a person's reading can allow a module an exercise
    assert release.helper_leaks({"tests/m.py": b"rsm = h @ h.T"}, answers) == []
    gram = {"dlnn_helpers/checks/relu_features.py": b"close(got_p @ got_p.T, f @ f.T, 1e-5)"}
    assert release.helper_leaks(gram, answers) == []
    assert release.helper_leaks({"dlnn_helpers/checks/mlp.py": gram.popitem()[1]}, answers) != []


# ------------------------------------------------------------------------------------------------
# (c) reproducible, (d) checkable
# ------------------------------------------------------------------------------------------------


def test_the_same_source_gives_a_byte_identical_release(release_tree, tmp_path):
    # Written again, in this process, into another folder.
    again = tmp_path / "again"
    release.write(again)
    assert _files(again) == _files(release_tree)


def test_release_check_reports_every_missing_extra_and_changed_file(release_tree, tmp_path, capsys):
    copy = shutil.copytree(release_tree, tmp_path / "student-repo")
    assert cli.main(["release", "--check", str(copy)]) == 0
    (copy / "README.md").write_text("edited by hand\n")
    (copy / "tutorials" / TUTORIALS[0] / f"{TUTORIALS[0]}.ipynb").unlink()
    (copy / "notes.txt").write_text("not part of the release\n")
    for ignored in (".git/HEAD", "_build/html/index.html", ".venv/pyvenv.cfg"):  # what git leaves out
        (copy / ignored).parent.mkdir(parents=True)
        (copy / ignored).write_text("not compared\n")
    capsys.readouterr()
    assert cli.main(["release", "--check", str(copy)]) == 1
    report = capsys.readouterr().err.splitlines()
    assert report[:3] == [
        "changed: README.md",
        "extra: notes.txt",
        f"missing: tutorials/{TUTORIALS[0]}/{TUTORIALS[0]}.ipynb",
    ]
    assert "differs from the release in 3 files" in report[-1]


def test_release_refuses_a_folder_that_is_not_a_release(tmp_path, capsys):
    (tmp_path / "thesis.tex").write_text("mine\n")
    assert cli.main(["release", str(tmp_path)]) == 1
    said = capsys.readouterr()
    assert "holds no earlier release" in said.err
    assert "executing" not in said.out, "refused before it says it will run anything"
    assert (tmp_path / "thesis.tex").read_text() == "mine\n"
    assert cli.main(["release", str(ROOT)]) == 1
    assert "instructor's repository" in capsys.readouterr().err


def test_release_accepts_expected_values_of_another_machine_and_refuses_a_real_change(monkeypatch):
    """The shipped expected values recomputed elsewhere differ in the last bits: still fresh."""
    from dlnn_reference import shipped

    from ..checks.test_expected import _nudged

    here = json.loads(json.dumps(shipped.capture_all()))
    elsewhere = {m: {k: _nudged(v, 1 + 2**-21) for k, v in t.items()} for m, t in here.items()}
    monkeypatch.setattr(shipped, "capture_all", lambda: elsewhere)
    release.preconditions()  # no ReleaseError
    module = sorted(here)[0]
    changed = {m: dict(t) for m, t in here.items()}
    changed[module] = {k: _nudged(v, 1.001) for k, v in changed[module].items()}
    monkeypatch.setattr(shipped, "capture_all", lambda: changed)
    with pytest.raises(release.ReleaseError, match=f"expected values are stale .*{module}.json"):
        release.preconditions()


def test_the_student_repository_builds_its_site_without_executing_anything(release_tree, tmp_path):
    # What the student repository's workflow runs (release.SITE_BUILD), on a copy of the release.
    repo = shutil.copytree(release_tree, tmp_path / "student-repo")
    command = release.SITE_BUILD.split()
    assert command[0] == "jupyter-book"
    done = subprocess.run(
        [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", *command[1:], "--quiet"],
        cwd=repo, env=course.tool_env(), capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    site = repo / "_build" / "html"
    for tutorial in TUTORIALS:
        page = (site / "book" / f"{tutorial}.html").read_text()
        assert "data:image/png" in page or "_images/" in page, f"{tutorial}: the figures are on the page"
    downloads = sorted(p.name for p in site.rglob("*.ipynb") if "_downloads" in p.parts)
    assert downloads == sorted(f"{t}.ipynb" for t in TUTORIALS), "only the student notebooks"
    for download in (p for p in site.rglob("*.ipynb") if "_downloads" in p.parts):
        assert "BEGIN SOLUTION" not in download.read_text()


# ------------------------------------------------------------------------------------------------
# (e) installed as Colab installs it, the untouched notebook runs
# ------------------------------------------------------------------------------------------------


def _bare_environment(folder: Path) -> Path:
    """A new virtual environment that sees this environment's third-party packages (torch, numpy,
    Jupyter, pip, setuptools) through a path line, but not its editable course packages: a
    directory named by a ``.pth`` line is added to ``sys.path`` without running its own ``.pth``
    files, so the editable finder of ``dlnn_helpers``/``dlnn_reference`` is not installed."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    python = folder / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site, "test_environment.pth").write_text("\n".join(sorted(ours)) + "\n")
    return python


def test_release_installs_without_the_reference_and_its_notebook_runs(release_tree, tmp_path):
    source = shutil.copytree(release_tree, tmp_path / "student-repo")  # the build writes into it
    python = _bare_environment(tmp_path / "venv")
    env = {k: v for k, v in course.tool_env().items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{python.parent}{os.pathsep}{env['PATH']}"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--ignore-installed", "--no-index", str(source)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert pip_requirement().startswith("dlnn-course @ ")  # the name the Colab cell installs
    probe = subprocess.run(
        [str(python), "-c", (
            "import importlib.util, json, dlnn_helpers\n"
            "from dlnn_helpers.checks import _expected\n"
            "print(json.dumps({'file': dlnn_helpers.__file__,"
            " 'reference': importlib.util.find_spec('dlnn_reference') is not None,"
            " 'shipped': sorted(p.name for p in _expected.SHIPPED.glob('*.json'))}))"
        )],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    facts = json.loads(probe.stdout)
    assert Path(facts["file"]).is_relative_to(tmp_path / "venv"), facts["file"]
    assert facts["reference"] is False, "the instructor's dlnn_reference must not be importable"
    shipped = sorted(p.name for p in (ROOT / "dlnn_helpers" / "checks" / "expected").glob("*.json"))
    assert facts["shipped"] == shipped
    # The untouched student notebook of T1, from the release tree, in a kernel of that environment
    # (the reduced grading form, as nbgrader runs it).
    tutorial = TUTORIALS[0]
    notebook = source / "tutorials" / tutorial / f"{tutorial}.ipynb"
    run = subprocess.run(
        [str(python), "-m", "nbconvert", "--to", "notebook", "--execute", "--output", "executed.ipynb",
         "--ExecutePreprocessor.timeout=600", "--ExecutePreprocessor.kernel_name=python3", str(notebook)],
        cwd=notebook.parent, env={**env, "NBGRADER_EXECUTION": "1", "DLNN_STATIC_WIDGETS": "1"},
        capture_output=True, text=True, timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    executed = nbformat.read(notebook.parent / "executed.ipynb", as_version=4)
    assert stderr_outputs(executed) == []
    checks = [
        "".join(o.get("text", "") for o in cell.outputs)
        for cell in executed.cells if cell.cell_type == "code" and "self_check(" in cell.source
        and not cell.metadata.get("nbgrader", {}).get("grade")
    ]
    assert checks and all("not implemented yet" in text for text in checks), checks


@pytest.mark.parametrize("kind", ["solution", "hidden test"])
def test_answer_lines_are_found_in_the_solutions(kind):
    # The search of the release is only as good as the lines it looks for.
    assert kind in set(_answer_lines().values())


# ------------------------------------------------------------------------------------------------
# Week by week: the tutorials released so far, no instructor page, no private address
# ------------------------------------------------------------------------------------------------


def _stub_pages(monkeypatch):
    """Pages without executing anything (what they hold is tested with the real release above)."""
    def pages(files, workers, tutorials):
        for tutorial in tutorials:
            files[f"book/{tutorial}.ipynb"] = course.student_path(tutorial).read_bytes()

    monkeypatch.setattr(release, "_pages", pages)


def test_a_week_by_week_release_holds_the_chosen_tutorials_only(monkeypatch):
    _stub_pages(monkeypatch)
    chosen = [TUTORIALS[1], TUTORIALS[0]]  # any order: the course's order is kept
    files = release.tree(tutorials=chosen)
    notebooks = {p.split("/")[1] for p in files if p.startswith("tutorials/")}
    assert notebooks == set(chosen)
    assert {p for p in files if p.startswith("book/")} == {f"book/{t}.ipynb" for t in chosen}
    toc = yaml.safe_load(files["_toc.yml"])
    listed = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert listed == ["running", *(f"book/{t}" for t in TUTORIALS[:2])]
    intro = files["intro.md"].decode()
    readme = files["README.md"].decode()
    for tutorial in TUTORIALS:
        assert (f"book/{tutorial}" in intro) == (tutorial in chosen), tutorial
        assert (f"tutorials/{tutorial}/" in readme) == (tutorial in chosen), tutorial
    assert f"Tutorials: {', '.join(TUTORIALS[:2])}" in files["RELEASE"].decode()
    with pytest.raises(release.ReleaseError, match="no such tutorial: T9_Nothing"):
        release.tree(tutorials=["T9_Nothing"])


def test_no_instructor_page_and_no_private_address_in_the_release(monkeypatch):
    from courselayout import REPOSITORY

    _stub_pages(monkeypatch)
    files = release.tree()
    assert "instructors.md" not in files
    assert not any(b"{doc}`instructors`" in content for content in files.values())
    private = re.compile(re.escape(REPOSITORY.removeprefix("https://").encode()) + rb"(?![\w-])")
    assert not [path for path, content in files.items() if private.search(content)]
    import dlnn_helpers

    assert not hasattr(dlnn_helpers, "REPOSITORY")
    # A file that names the private repository is refused, never shipped.
    real = release.site_files

    def leaking():
        found = real()
        found["running.md"] += f"\nThe instructors work in {REPOSITORY}.\n".encode()
        return found

    monkeypatch.setattr(release, "site_files", leaking)
    with pytest.raises(release.ReleaseError, match="private repository .* in: running.md"):
        release.tree()


def test_check_says_when_only_the_figures_differ(tmp_path):
    page = {"cells": [{"cell_type": "code", "source": "plot()", "outputs": [
        {"output_type": "display_data", "data": {"image/png": "AAAA", "text/plain": "<Figure>"}}]}]}
    redrawn = json.loads(json.dumps(page))
    redrawn["cells"][0]["outputs"][0]["data"]["image/png"] = "BBBB"
    edited = json.loads(json.dumps(page))
    edited["cells"][0]["source"] = "plot(x)"
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "a.ipynb").write_text(json.dumps(page))
    (tmp_path / "book" / "b.ipynb").write_text(json.dumps(page))
    found = release.differences(tmp_path, {"book/a.ipynb": json.dumps(redrawn).encode(),
                                           "book/b.ipynb": json.dumps(edited).encode()})
    assert found == ["figures only: book/a.ipynb", "changed: book/b.ipynb"]


@pytest.mark.slow
def test_release_works_cold_and_check_tells_the_truth(monkeypatch, tmp_path, capsys):
    """A machine that never built the reference runs: `release` runs the one it needs first."""
    from coursebuild import build

    monkeypatch.setattr(build, "REFERENCE", tmp_path / "no-reference-runs")
    tutorial = "T2_Optimisation"  # the shortest reference run
    dest = tmp_path / "student-repo"
    assert cli.main(["release", str(dest), "--tutorials", tutorial]) == 0, capsys.readouterr()
    said = capsys.readouterr()
    assert f"executing the reference runs of {tutorial} first" in said.out
    assert (tmp_path / "no-reference-runs" / f"{tutorial}.ipynb").is_file()
    assert sorted(p.name for p in (dest / "tutorials").iterdir()) == [tutorial]
    assert cli.main(["release", "--check", str(dest), "--tutorials", tutorial]) == 0
    assert "is up to date" in capsys.readouterr().out
    page = dest / "book" / f"{tutorial}.ipynb"
    data = json.loads(page.read_text())
    images = [o["data"] for c in data["cells"] for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    images[0]["image/png"] = images[0]["image/png"][::-1]  # another machine's figure bytes
    page.write_text(json.dumps(data))
    assert cli.main(["release", "--check", str(dest), "--tutorials", tutorial]) == 0
    assert "1 page(s) differ in their figures only" in capsys.readouterr().out
    data["cells"][0]["source"] = "# edited by hand\n" + "".join(data["cells"][0]["source"])
    page.write_text(json.dumps(data))
    assert cli.main(["release", "--check", str(dest), "--tutorials", tutorial]) == 1
    assert f"changed: book/{tutorial}.ipynb" in capsys.readouterr().err
