"""Data flows one way: training (notebooks, trainers, the Part 1/2 services' start-up) publishes to the
model store through the promotion gate (app/promotion.py: `publish`, `publish_serving_file`), for
every model; the Part 3 serving workers only read it.

Read from the code's syntax trees, so a new write anywhere fails here at once, whatever test data
would or would not reach it: every import of every app.part3 module the service can load (nested
ones too) is followed, and none may call a function that writes the store.
"""

import ast
import json
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SERVICE_ENTRY = "app.part3.main"
TRAINER_SIDE = {"app.part3.training_job", "app.part3.trainer_worker"}  # run in the trainer process only
# Calls that write the model store (app/store.py's writing methods, the publishing functions and
# what calls them). `activate` is the one write a serving route makes, below.
STORE_WRITES = {
    "publish",
    "add_serving_file",
    "clean_temporary",
    "training_lock",
    "remove_unfinished_saves",
    "train_and_publish",
    "train_next_version",
    "export_missing_serving_files",
    "activate",
    "update_metadata",
}
# POST /models/{name}/{version}/activate writes the store's ACTIVE pointer (a version number, no
# model data): a rollback must not wait in the queue behind a training. Shadow scoring writes a
# challenger's outcome into its metadata, and pins a promoted one, from a worker (its labels decided,
# or an operator): no model data either.
SERVING_WRITES_ALLOWED = {
    ("app.part3.routes.models", "activate"),
    ("app.part3.shadow", "update_metadata"),
    ("app.part3.shadow", "activate"),
}
# Who may call a publishing step, by receiver: ModelStore.publish only inside the gate; serving files
# are added to old versions by the trainer.
PUBLISHERS = {
    # store.publish; the store's benchmark times publish itself, into a throwaway store, and the
    # benchmark's shadow row publishes its challenger (a copy of the serving version) into its own;
    # copy_store copies versions into another store with the gate's decisions they already carry
    "publish": {"app.promotion", "bench.store_backends", "bench.shadow_challenger", "app.storage.copy_store"},
    "add_serving_file": {"app.part3.training_job"},
}
GATE = {"promotion"}  # `promotion.publish(...)`, `promotion.publish_serving_file(...)`: anyone may call


def module_file(name: str) -> Path | None:
    path = PROJECT_ROOT / Path(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_modules(tree: ast.AST, package: str) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}  # `from app.part3 import x`
    return {name for name in found if name.startswith(package) and module_file(name)}


def called_names(tree: ast.AST) -> set[tuple[str | None, str]]:
    """(receiver, name) of every call: `store.publish(...)` -> ("store", "publish"); `publish()` -> (None, ...)."""
    calls = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute):
                receiver = node.func.value
                calls.add((receiver.id if isinstance(receiver, ast.Name) else "", node.func.attr))
            elif isinstance(node.func, ast.Name):
                calls.add((None, node.func.id))
    return calls


def serving_modules() -> dict[str, ast.AST]:
    """Every app.part3 module the service can import, nested and lazy imports included."""
    seen: dict[str, ast.AST] = {}
    waiting = [SERVICE_ENTRY]
    while waiting:
        name = waiting.pop()
        if name in seen:
            continue
        path = module_file(name)
        assert path is not None, name
        seen[name] = ast.parse(path.read_text(), str(path))
        waiting += imported_modules(seen[name], "app.part3") - seen.keys()
    return seen


def test_the_service_never_imports_the_trainer_side():
    reached = set(serving_modules())
    assert "app.part3.routes.predict" in reached and "app.part3.service" in reached, sorted(reached)
    assert not reached & TRAINER_SIDE, f"the service imports trainer code: {sorted(reached & TRAINER_SIDE)}"


def test_no_serving_module_writes_the_store():
    writes = {
        (name, call)
        for name, tree in serving_modules().items()
        for _, call in called_names(tree)
        if call in STORE_WRITES
    }
    assert writes == SERVING_WRITES_ALLOWED, (
        f"serving code writes the model store: {sorted(writes - SERVING_WRITES_ALLOWED)}; only the trainer "
        "(app/part3/training_job.py) publishes"
    )


def python_sources() -> dict[str, str]:
    """{module or notebook: code} for everything that may write a store: app/, bench/, scripts/,
    solutions/ and the notebooks' code cells."""
    sources = {}
    for folder in ("app", "bench", "scripts", "solutions", "workshop"):
        for path in (PROJECT_ROOT / folder).rglob("*.py"):
            parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
            sources[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path.read_text()
    for notebook in (PROJECT_ROOT / "notebooks").glob("*.ipynb"):
        cells = json.loads(notebook.read_text())["cells"]
        code = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
        sources[f"notebooks/{notebook.name}"] = "\n".join(line for line in code.splitlines() if line[:1] not in "!%")
    return sources


def test_every_writer_publishes_through_the_models_publishing_function():
    strays = []
    for name, code in python_sources().items():
        for receiver, call in called_names(ast.parse(code)):
            if call in PUBLISHERS and receiver not in GATE and name not in PUBLISHERS[call]:
                if not (call == "publish" and receiver is None):  # `from app.promotion import publish`
                    strays.append(f"{name}: {receiver}.{call}()")
    assert not strays, f"the store written around the promotion gate (promotion.publish): {strays}"


def test_the_check_sees_a_write():
    """The checks above read real calls: a serving module that published would be caught."""
    tree = ast.parse("def refresh(store, model):\n    store.publish(lambda folder: 'x', {})\n")
    assert ("store", "publish") in called_names(tree)
    assert "app.part3.kept_models" in serving_modules()
