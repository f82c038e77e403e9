"""A look at the exercise's code itself: what the run-time watch cannot see, flagged for a person.

The checks watch the refused routines *where they run* (:mod:`dlnn_helpers.checks._shortcuts`), and
:mod:`autograder.grading.judge.shortcuts` reads the submitted text for the routines' names.  Code can
still hide from both: a routine reached through a name built at run time and run in another thread
or process, the interpreter's profiling switched off, or a private entry point of torch (a C
function: no Python frame is entered, no patched attribute is reached) bound to a name at import.
None of that is needed to answer an exercise of the course, so this module reads the syntax tree of
each exercise's solution cell (comments and strings are not code; aliases such as
``import torch.optim as o`` and ``from torch import _C as c`` are followed) and reports, with the
line, every place that

* reaches a name it does not spell (``getattr``/``setattr``/``delattr``/``operator.attrgetter``
  with a name that is not a literal, ``importlib.import_module``, ``__import__``, ``eval``,
  ``exec``, ``compile``, ``globals()[...]``, ``vars(...)[...]``, ``__dict__[...]``,
  ``sys.modules[...]``);
* starts threads, processes or executors (``threading``, ``_thread``, ``multiprocessing``,
  ``concurrent.futures``, ``subprocess``, ``asyncio``, ``os.fork`` and the other ``os`` ways to
  start a process);
* changes the interpreter's tracing (``sys.setprofile``, ``sys.settrace``, ``threading``'s
  ``setprofile``/``settrace``, ``sys.monitoring``) or reads the caller's frames (``sys._getframe``);
* touches torch's private internals (an attribute with a leading underscore reached from ``torch``:
  ``torch._C``, ``torch.optim._functional``, ``Variable._execution_engine``), or the course's own
  internals (``dlnn_helpers.checks._shortcuts``), and, in an exercise that refuses ``torch.optim``,
  the functional forms of its optimisers (``torch.optim.adam.adam``).

A finding never changes a score: the grader lists it under "Flagged for review" in ``report.html``
(student, exercise, line, reason) and a person decides.  :func:`look` is pure and cheap (one
:func:`ast.parse` of the cell).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from ..protocol.calls import PREFIX

NAME_LOOKUPS = {
    "getattr": "reaches an attribute through a name built at run time (getattr)",
    "setattr": "changes an attribute through a name built at run time (setattr)",
    "delattr": "deletes an attribute through a name built at run time (delattr)",
    "operator.attrgetter": "reaches an attribute through a name built at run time "
                           "(operator.attrgetter)",
    "operator.methodcaller": "calls a method through a name built at run time "
                             "(operator.methodcaller)",
}
"""Calls that reach a name: flagged when the name they are given is not a literal string."""

DYNAMIC = {
    "importlib.import_module": "imports a module by a name computed at run time "
                               "(importlib.import_module)",
    "importlib.__import__": "imports a module by a name computed at run time (__import__)",
    "__import__": "imports a module by a name computed at run time (__import__)",
    "eval": "runs code held in a string (eval)",
    "exec": "runs code held in a string (exec)",
    "compile": "compiles code held in a string (compile)",
}
"""Calls that run or reach code no reader can see."""

CONCURRENCY_MODULES = {
    "threading": "starts or manages threads (threading)",
    "_thread": "starts threads (_thread)",
    "multiprocessing": "starts processes (multiprocessing)",
    "torch.multiprocessing": "starts processes (torch.multiprocessing)",
    "concurrent": "runs work in an executor (concurrent.futures)",
    "subprocess": "starts another program (subprocess)",
    "asyncio": "runs an event loop (asyncio)",
    "joblib": "runs work in other processes or threads (joblib)",
    "pty": "starts a process (pty)",
}
"""Modules whose use starts threads, processes or executors (any use is flagged)."""

PROCESS_CALLS = ("os.fork", "os.forkpty", "os.system", "os.popen", "os.spawn", "os.exec",
                 "os.posix_spawn", "os.register_at_fork")
"""``os`` functions (and families, by prefix) that start processes."""

TRACING = {
    "sys.setprofile": "changes the interpreter's profiling (sys.setprofile), which the checks use "
                      "to watch the exercise",
    "sys.settrace": "changes the interpreter's tracing (sys.settrace)",
    "sys.getprofile": "reads the interpreter's profiling hook (sys.getprofile)",
    "sys.monitoring": "changes the interpreter's monitoring (sys.monitoring)",
    "threading.setprofile": "changes the profiling of threads (threading.setprofile)",
    "threading.settrace": "changes the tracing of threads (threading.settrace)",
    "threading.setprofile_all_threads": "changes the profiling of every thread",
    "threading.settrace_all_threads": "changes the tracing of every thread",
    "sys._getframe": "reads the frames of its callers (sys._getframe), where the check's own "
                     "variables are",
    "inspect.currentframe": "reads the frames of its callers (inspect.currentframe)",
    "inspect.stack": "reads the frames of its callers (inspect.stack)",
    "sys.modules": "reaches modules through the interpreter's table of modules (sys.modules)",
}
"""Dotted names (and their sub-names) that change or read the interpreter's watch."""

FUNCTIONAL_OPTIMISERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad", "adadelta", "adamax",
                         "nadam", "radam", "asgd", "rprop", "lbfgs", "sparse_adam")
"""Modules of ``torch.optim`` whose same-named function is the optimiser's functional form."""

PRIVATE_ANYWHERE = ("_C", "_execution_engine", "_EngineBase", "_ImperativeEngine", "_VariableFunctions",
                    "_functional")
"""Private attribute names of torch's internals, flagged on whatever object they are reached."""


@dataclass(frozen=True)
class Finding:
    """One place of a cell a person should look at."""

    line: int
    """Line in the cell (1-based)."""
    reason: str
    """What the code does, in plain words."""

    def message(self) -> str:
        """``line N: reason`` (the line is always named)."""
        return f"line {self.line}: {self.reason}"


class _Reader(ast.NodeVisitor):
    """Walks one cell, with a table of the names its imports and assignments bind."""

    def __init__(self, refused: tuple[str, ...]) -> None:
        self.refused = refused
        self.aliases: dict[str, str] = {}
        self.findings: list[Finding] = []

    # -- names -----------------------------------------------------------------------------------

    def dotted(self, node: ast.AST) -> str | None:
        """The full dotted name of ``node`` (aliases followed), or None."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value)
            return None if base is None else f"{base}.{node.attr}"
        if (isinstance(node, ast.Call) and len(node.args) >= 2 and not node.keywords
                and self.dotted(node.func) in ("getattr", "builtins.getattr")
                and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
            base = self.dotted(node.args[0])  # getattr(torch, "optim"): a spelled name
            return None if base is None else f"{base}.{node.args[1].value}"
        return None

    def flag(self, node: ast.AST, reason: str) -> None:
        self.findings.append(Finding(getattr(node, "lineno", 0), reason))

    def judge_name(self, node: ast.AST, name: str) -> None:
        """Flag a dotted name reached by the code (an import, an attribute, a call's target)."""
        parts = name.split(".")
        for module, reason in CONCURRENCY_MODULES.items():
            if name == module or name.startswith(module + "."):
                self.flag(node, reason)
                return
        if name.startswith(PROCESS_CALLS):
            self.flag(node, f"starts a process ({name})")
            return
        for traced, reason in TRACING.items():
            if name == traced or name.startswith(traced + "."):
                self.flag(node, reason)
                return
        if parts[0] == "torch":
            private = next((p for p in parts[1:] if p.startswith("_") and not
                            (p.startswith("__") and p.endswith("__"))), None)
            if private is not None:
                self.flag(node, f"reaches torch's private internals ({name}), which the checks "
                                "cannot watch")
                return
            if ("torch.optim" in self.refused and len(parts) >= 4 and parts[1] == "optim"
                    and parts[2] == parts[3] and parts[2] in FUNCTIONAL_OPTIMISERS):
                self.flag(node, f"uses the functional form of a torch.optim optimiser ({name})")
                return
        if parts[0] == "dlnn_helpers" and any(p.startswith("_") and not p.startswith("__")
                                              for p in parts[1:]):
            self.flag(node, f"reaches the course's checks' internals ({name})")
            return
        if parts[0].startswith(PREFIX):
            self.flag(node, f"reaches the grader's recorder ({name})")
            return
        last = parts[-1]
        if last in PRIVATE_ANYWHERE and len(parts) > 1:
            self.flag(node, f"reaches torch's private internals (.{last}), which the checks "
                            "cannot watch")

    # -- bindings --------------------------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.aliases[alias.asname] = alias.name
            else:
                root = alias.name.split(".")[0]
                self.aliases[root] = root
            self.judge_name(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module:
            return
        for alias in node.names:
            full = f"{node.module}.{alias.name}" if alias.name != "*" else node.module
            if alias.name != "*":
                self.aliases[alias.asname or alias.name] = full
            self.judge_name(node, full)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.generic_visit(node)
        source = self.dotted(node.value)
        for target in node.targets:
            if isinstance(target, ast.Name):
                if source is not None and ("." in source or source in self.aliases.values()):
                    self.aliases[target.id] = source
                else:
                    self.aliases.pop(target.id, None)

    # -- uses ------------------------------------------------------------------------------------

    def visit_Attribute(self, node: ast.Attribute) -> None:
        name = self.dotted(node)
        if name is not None:
            self.judge_name(node, name)
            return  # the whole chain is judged once
        if node.attr in PRIVATE_ANYWHERE:
            self.flag(node, f"reaches torch's private internals (.{node.attr}), which the checks "
                            "cannot watch")
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in self.aliases and self.aliases[node.id] != node.id:
            self.judge_name(node, self.aliases[node.id])
        elif node.id == "__builtins__":
            self.flag(node, "reaches the interpreter's built-in functions by name (__builtins__)")

    def visit_Call(self, node: ast.Call) -> None:
        name = self.dotted(node.func)
        if name is not None:
            plain = name.removeprefix("builtins.")
            if plain in NAME_LOOKUPS:
                if plain in ("getattr", "setattr", "delattr"):
                    given = node.args[1:2]
                elif plain == "operator.methodcaller":
                    given = node.args[:1]
                else:
                    given = node.args
                if not given or any(not (isinstance(n, ast.Constant) and isinstance(n.value, str))
                                    for n in given):
                    self.flag(node, NAME_LOOKUPS[plain])
            elif plain in DYNAMIC:
                self.flag(node, DYNAMIC[plain])
            elif (isinstance(node.func, ast.Attribute) and node.func.attr == "__getattribute__"
                  and not all(isinstance(a, ast.Constant) for a in node.args[-1:])):
                self.flag(node, "reaches an attribute through a name built at run time "
                                "(__getattribute__)")
            elif (isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                  and _namespace(node.func.value)):
                self.flag(node, f"reaches a name through {_namespace(node.func.value)}")
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        where = _namespace(node.value)
        if where:
            self.flag(node, f"reaches a name through {where}")
        self.generic_visit(node)


def _namespace(node: ast.AST) -> str:
    """``globals()``, ``vars(...)``, ``locals()`` or ``x.__dict__`` when ``node`` is one ('')."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
            "globals", "vars", "locals"):
        return f"{node.func.id}()[...]"
    if isinstance(node, ast.Attribute) and node.attr == "__dict__":
        return "__dict__[...]"
    return ""


def _without_magics(source: str) -> str:
    """IPython lines (``%magic``, ``!shell``) blanked: what remains is Python."""
    return "".join("\n" if line.lstrip().startswith(("%", "!")) else line
                   for line in source.splitlines(keepends=True))


def look(source: str, refused: tuple[str, ...] = ()) -> list[Finding]:
    """What a person should look at in one solution cell, in line order (empty: nothing).

    Parameters
    ----------
    source : str
        The cell's code as graded.
    refused : tuple of str
        The routines its exercise refuses (``_shortcuts.ROUTINES`` keys); ``"torch.optim"`` adds
        the functional forms of the optimisers.

    Returns
    -------
    list of Finding
        One per line and reason.  A cell that does not parse gives none (its test fails anyway).
    """
    try:
        tree = ast.parse(_without_magics(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    reader = _Reader(tuple(refused))
    try:
        reader.visit(tree)
    except RecursionError:
        return [Finding(1, "the code is nested too deeply to be read")]
    unique = dict.fromkeys(reader.findings)
    return sorted(unique, key=lambda f: (f.line, f.reason))


MAX_SHOWN = 6
"""Findings of one cell listed in the report (the rest are counted)."""


def review(calls: list, solutions: dict[str, str], solution_names: dict[str, list[str]],
           table: dict[str, tuple[str, tuple[str, ...]]]) -> str:
    """What the report says a person should look at in the code of a test's exercises ('').

    Parameters
    ----------
    calls : list of CheckCall
        The test cell's check calls (their ``students`` name the exercises).
    solutions : dict
        Solution cell grade id -> the submitted source (as graded).
    solution_names : dict
        Solution cell grade id -> the names the reference defines there.
    table : dict
        Check name -> (exercise, refused routines): ``shortcuts.declared()``.

    Returns
    -------
    str
        ``"<exercise> (cell <id>), line N: reason; ..."``, or '' when nothing was found.
    """
    from ..protocol.cells import defined_names

    students: dict[str, tuple[str, ...]] = {}
    for call in calls:
        refused = tuple(table.get(call.check, ("", ()))[1])
        for name in call.students:
            students[name] = tuple(dict.fromkeys(students.get(name, ()) + refused))
    said = []
    for grade_id, source in solutions.items():
        names = set(solution_names.get(grade_id, [])) | set(defined_names(source))
        exercises = [name for name in students if name in names]
        if not exercises:
            continue
        refused = tuple(dict.fromkeys(r for name in exercises for r in students[name]))
        findings = look(source, refused)
        if not findings:
            continue
        where = f"{', '.join(exercises)} (cell {grade_id})"
        shown = "; ".join(f.message() for f in findings[:MAX_SHOWN])
        more = len(findings) - MAX_SHOWN
        said.append(f"{where}, {shown}" + (f"; and {more} more" if more > 0 else ""))
    return "; ".join(said)
