"""The project's lint, format and type checks (configured in pyproject.toml) pass on the tree."""

import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_the_tree_passes(command):
    done = subprocess.run(
        [sys.executable, "-m", *command], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"`{' '.join(command)}` failed:\n{done.stdout}\n{done.stderr}"


# The packages a reader navigates by file name. `main.py` is each stage's entry point by FastAPI's
# convention (`fastapi run app/part3/main.py`), like a package's __init__ and __main__.
PACKAGES = ("app", "workshop", "bench")
ENTRY_POINTS = {"__init__.py", "__main__.py", "main.py"}


def test_no_two_modules_share_a_name():
    """`jobs.py` in two folders makes a reader open the wrong one: each module's name is unique."""
    seen: dict[str, list[str]] = {}
    for package in PACKAGES:
        for module in sorted((PROJECT_ROOT / package).rglob("*.py")):
            if module.name not in ENTRY_POINTS:
                seen.setdefault(module.name, []).append(str(module.relative_to(PROJECT_ROOT)))
    shared = {name: paths for name, paths in seen.items() if len(paths) > 1}
    assert not shared, f"modules sharing a name (rename one after what it is for): {shared}"
