"""A learner's code uses public APIs only: the solutions (hence the starters generated from them) and
Part 1's reference service predict as the workshop teaches, with the pipeline's own `predict`.

A private name (`knn._fit_X`, `from sklearn.x import _helper`) can change in any release without a
word; the workshop must not teach it, nor build its answers on it."""

import ast
from pathlib import Path

import pytest

from app.paths import PROJECT_ROOT

LEARNERS_CODE = sorted((PROJECT_ROOT / "solutions").rglob("*.py"))
PART1_SERVICE = sorted((PROJECT_ROOT / "app" / "part1").rglob("*.py"))
# Built on scikit-learn's private `_fit_X` and `_y`: the lesson is the pipeline's `predict` instead.
PRIVATE_HELPERS = ("FastPenguinPredictor",)


def private_names(tree: ast.AST) -> list[str]:
    """`x._name` attributes and `_name` imports (dunders are Python's own, not private)."""

    def private(name: str) -> bool:
        return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and private(node.attr):
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom):
            module_parts = (node.module or "").split(".")
            found += [f"line {node.lineno}: from {node.module}" for part in module_parts if private(part)]
            found += [f"line {node.lineno}: import {alias.name}" for alias in node.names if private(alias.name)]
    return found


@pytest.mark.parametrize("path", LEARNERS_CODE, ids=lambda path: str(path.relative_to(PROJECT_ROOT)))
def test_the_solutions_use_no_private_name(path: Path):
    found = private_names(ast.parse(path.read_text()))
    assert not found, f"{path.relative_to(PROJECT_ROOT)} uses private names: {found}"


@pytest.mark.parametrize("path", [*LEARNERS_CODE, *PART1_SERVICE], ids=lambda path: str(path.relative_to(PROJECT_ROOT)))
def test_part1_predicts_with_the_pipelines_own_predict(path: Path):
    used = [name for name in PRIVATE_HELPERS if name in path.read_text()]
    assert not used, f"{path.relative_to(PROJECT_ROOT)} uses {used}, built on scikit-learn's private API"


def test_the_private_name_finder_finds_them():
    code = "from sklearn.neighbors._base import x\nfrom a import _b\nknn._fit_X\nobj.__class__\n"
    assert private_names(ast.parse(code)) == [
        "line 1: from sklearn.neighbors._base",
        "line 2: import _b",
        "line 3: ._fit_X",
    ]
