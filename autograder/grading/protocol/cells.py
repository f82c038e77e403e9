"""Reading the cells of a tutorial: a test cell's check calls, a solution cell's names.

A test cell of the course is a list of calls ``check_x(func_name, literal, key=literal,
other=func_name2)``; :func:`parse_test_cell` reads it into one
:class:`~autograder.grading.protocol.records.CheckCall` each (:data:`TestCall`), which the recorder
call (:mod:`.calls`) runs in the kernel and the judge replays.  :func:`defined_names` reads the
names a solution cell defines.
"""

from __future__ import annotations

import ast
from typing import Any

from . import records
from .records import CheckCall

TestCall = CheckCall
"""One check call of a test cell (the name the spec and the judge use)."""

__all__ = ["TestCall", "defined_names", "parse_test_cell"]


def _literal(node: ast.AST) -> Any:
    """``ast.literal_eval``, plus ``nn.X`` / ``torch.nn.X`` (a :class:`records.TorchClass`)."""
    if isinstance(node, ast.Attribute) and node.attr.isidentifier():
        owner = node.value
        if (isinstance(owner, ast.Name) and owner.id == "nn") or (
                isinstance(owner, ast.Attribute) and owner.attr == "nn"
                and isinstance(owner.value, ast.Name) and owner.value.id == "torch"):
            if records.TorchClass(node.attr).resolve() is not None:
                return records.TorchClass(node.attr)
        raise ValueError("not a literal")
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [_literal(item) for item in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    return ast.literal_eval(node)


def parse_test_cell(source: str) -> list[CheckCall] | None:
    """The calls of a test cell, or None when it is not a plain list of check calls.

    Parameters
    ----------
    source : str
        Full source of the test cell (hidden tests included).
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    calls = []
    for statement in tree.body:
        if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)):
            return None
        call = statement.value
        if not (
            isinstance(call.func, ast.Name)
            and call.func.id.startswith("check_")
            and len(call.args) >= 1
            and isinstance(call.args[0], ast.Name)
        ):
            return None
        try:
            args = tuple(_literal(arg) for arg in call.args[1:])
        except ValueError:
            return None
        settings, students = {}, []
        for keyword in call.keywords:
            if keyword.arg is None:
                return None
            try:
                settings[keyword.arg] = _literal(keyword.value)
            except ValueError:
                # A keyword naming a notebook object the check drives too (backward=ex_backward);
                # a constant (seed=SEED) is not a plain check call.
                if not (isinstance(keyword.value, ast.Name)
                        and keyword.value.id != keyword.value.id.upper()):
                    return None
                students.append((keyword.arg, keyword.value.id))
        calls.append(CheckCall(call.func.id, call.args[0].id, settings, args, tuple(students)))
    return calls or None


def defined_names(source: str) -> list[str]:
    """Top-level functions, classes and assigned names of a code cell (empty if unparsable)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
    return names
