"""One way down, read from the code's import statements (top-level and inside functions):

- no circle of imports in app/;
- the shared library (app/ outside the parts) imports nothing from app/part1, app/part2 or app/part3;
- the generic layer imports no model and names none: every model is a folder under app/models/ (or a
  package named in WORKSHOP_MODEL_PACKAGES), found by app/registry.py at run time.
"""

import ast
import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
APP = PROJECT_ROOT / "app"
PARTS = ("app.part1", "app.part2", "app.part3")
# Generic over the registry: the store, the gate, the export check, serving, drift, and Part 3 but for
# its routes (the workshop's routes are its adapters onto the generic service, and name their models).
GENERIC = [
    *(APP / name for name in ("modelkit.py", "registry.py", "sklearn_models.py", "store.py", "promotion.py")),
    *(APP / name for name in ("onnx_export.py", "onnx_serving.py", "drift.py", "publish_onnx.py")),
    *sorted((APP / "part3").glob("*.py")),
]
MODEL_NAMES = re.compile(r"mnist|penguin", re.IGNORECASE)


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The app modules a file imports, `from app.x import y` counting app.x.y when y is a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name in MODULES}


MODULES = {module_name(path): path for path in APP.rglob("*.py")}
GRAPH = {name: imports_of(path) - {name} for name, path in MODULES.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_there_is_no_circle_of_imports_in_app():
    assert circles(GRAPH) == []


def test_the_check_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_shared_library_imports_no_part():
    shared = {name for name in GRAPH if not name.startswith(PARTS)}
    strays = {name: sorted(t for t in GRAPH[name] if t.startswith(PARTS)) for name in shared}
    assert not {name: targets for name, targets in strays.items() if targets}


def test_the_generic_layer_imports_no_model_and_names_none():
    for path in GENERIC:
        name = module_name(path)
        assert not [target for target in GRAPH[name] if target.startswith("app.models")], f"{name} imports a model"
        named = [
            f"{number}: {line.strip()}"
            for number, line in enumerate(path.read_text().splitlines(), 1)
            if MODEL_NAMES.search(line)
        ]
        assert not named, f"{path.relative_to(PROJECT_ROOT)} names a model: {named}"
    assert len(GENERIC) > 25
