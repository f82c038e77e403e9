"""The project's shape: no import cycle, no function with more than 8 parameters in the instructor,
build and grading code, and an answer key that imports neither the build nor the grader.

Read from the source with ``ast`` (nothing is imported): every ``import`` counts, inside a function
or under ``TYPE_CHECKING`` as well, since each is a dependency of one module on another.
"""

from __future__ import annotations

import ast
from pathlib import Path

from .tools import ROOT

PACKAGES = ("courselayout", "coursebuild", "autograder", "dlnn_helpers", "dlnn_reference", "scripts",
            "tests")
"""Where the project's modules are (``autograder/demo_class`` holds notebooks, not modules)."""

INSTRUCTOR_CODE = ("courselayout", "coursebuild", "autograder", "dlnn_reference", "scripts")
"""The instructor, build and grading code (the student package's experiment functions aside)."""

MAX_PARAMETERS = 8


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "demo_class" in parts or "__pycache__" in parts:
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project's modules it imports (relative imports resolved; ``from p import m``
    is an import of the module ``p.m`` when there is one, else of ``p``)."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                origin = ".".join([*base, *([node.module] if node.module else [])])
                targets = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in modules else origin
                           for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import():
    graph = {"a.build": {"a.layout"}, "a.release": {"a.build"}, "a.layout": set()}
    assert cycles(graph) == []
    graph["a.build"].add("a.release")  # `from .release import x` inside a function of build
    assert cycles(graph) == [["a.build", "a.release"]]


def test_no_import_cycle_in_the_project():
    graph = import_graph(_modules())
    assert len(graph) > 100, "the project's modules were not found"
    assert cycles(graph) == []


def test_the_answer_key_and_the_student_package_import_neither_the_build_nor_the_grader():
    graph = import_graph(_modules())
    tools = ("coursebuild", "autograder", "scripts", "tests")
    for name, imported in graph.items():
        if name.startswith(("dlnn_reference", "dlnn_helpers", "courselayout")):
            assert not [m for m in imported if m.startswith(tools)], name
        if name.startswith("dlnn_helpers"):  # released: nothing of the instructor's
            assert not [m for m in imported if m.startswith(("dlnn_reference", "courselayout"))], name


def parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """How many parameters a caller can pass (``self``/``cls`` not counted; ``*args`` and
    ``**kwargs`` one each)."""
    args = function.args
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    if names and names[0] in ("self", "cls"):
        names = names[1:]
    return len(names) + (args.vararg is not None) + (args.kwarg is not None)


def test_the_parameter_count_counts_every_kind_of_parameter():
    tree = ast.parse("def f(a, /, b, *c, d, e=1, **f): pass\nclass C:\n    def m(self, x): pass")
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    assert [parameters(f) for f in functions] == [6, 1]


def test_no_function_takes_more_than_8_parameters_in_the_instructor_code():
    over = {}
    for package in INSTRUCTOR_CODE:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    if parameters(node) > MAX_PARAMETERS:
                        over[f"{path.relative_to(ROOT).as_posix()}:{node.name}"] = parameters(node)
    assert over == {}, f"more than {MAX_PARAMETERS} parameters (group them in a dataclass): {over}"


GRADING = "autograder.grading"
GRADING_LAYERS = {
    "protocol": set(),
    "model": {"protocol"},
    "inside": {"protocol"},
    "inputs": set(),
    "sandbox": {"model", "protocol"},
    "judge": {"model", "protocol", "inside"},
    "outputs": {"model", "protocol", "inputs"},
    "runner": {"model", "protocol", "inside", "inputs", "sandbox", "judge", "outputs"},
}
"""Layer of the grading package -> the layers below it that it may import (and itself).

``protocol`` (records, test-cell parsing, the recorder call) and ``inside`` (what runs in the
sandbox) import no host code; ``model`` only the protocol; the sandbox neither the judge nor the
outputs nor the runner; the judge and the outputs never the sandbox or the runner.  The runner
layer is every module at the top of ``autograder/grading/`` (runner, worker, execution, notebook,
spec, cli, synthetic)."""


def grading_layer(module: str) -> str | None:
    """The layer of a module of the grading package (None: not one of its modules)."""
    if not module.startswith(GRADING + "."):
        return None
    first = module[len(GRADING) + 1:].split(".")[0]
    return first if first in GRADING_LAYERS else "runner"


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """``module -> imported`` for every import of the grading package against its layers."""
    found = []
    for name, imported in sorted(graph.items()):
        layer = grading_layer(name)
        if layer is None:
            continue
        for other in sorted(imported):
            if other == GRADING:
                found.append(f"{name} -> {other} (the package itself)")
                continue
            below = grading_layer(other)
            if below is not None and below != layer and below not in GRADING_LAYERS[layer]:
                found.append(f"{name} ({layer}) -> {other} ({below})")
    return found


def test_the_layer_check_finds_an_import_against_the_layers():
    graph = {f"{GRADING}.model": {f"{GRADING}.protocol.records"},
             f"{GRADING}.protocol.records": set(), f"{GRADING}.runner": {f"{GRADING}.model"}}
    assert layer_violations(graph) == []
    graph[f"{GRADING}.protocol.records"].add(f"{GRADING}.model")  # the protocol reaching up
    graph[f"{GRADING}.inside.recorder"] = {f"{GRADING}.sandbox.staging"}  # inside reaching host
    assert layer_violations(graph) == [
        f"{GRADING}.inside.recorder (inside) -> {GRADING}.sandbox.staging (sandbox)",
        f"{GRADING}.protocol.records (protocol) -> {GRADING}.model (model)",
    ]


def test_the_grading_package_is_in_layers():
    graph = import_graph(_modules())
    layers = {grading_layer(name) for name in graph} - {None}
    assert layers == set(GRADING_LAYERS), "a layer of the grading package is missing or new"
    assert layer_violations(graph) == []


def test_code_that_runs_inside_the_sandbox_imports_nothing_of_the_host():
    """The staged modules see the standard library, numpy, torch and the student package only."""
    graph = import_graph(_modules())
    inside = [name for name in graph if grading_layer(name) == "inside"]
    assert inside, "the grading package has no code that runs inside the sandbox"
    for name in [*inside, f"{GRADING}.protocol.records"]:
        assert not [m for m in graph[name] if m.startswith(("courselayout", "coursebuild", "dlnn_reference"))
                    or (m.startswith(GRADING) and m != f"{GRADING}.protocol.records")], name
