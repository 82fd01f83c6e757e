"""The project's lint, format and type checks (configured in pyproject.toml) pass on the tree."""

import json
import re
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


# Settings are read in one place per program: Part 3's pydantic-settings class, and app/paths.py
# for Parts 1 and 2, the notebooks and the shared library. The others below pass the environment
# on to a process they start, or are programs of their own.
SETTINGS_MODULES = {"app/part3/settings.py", "app/paths.py"}
ENVIRONMENT_ALLOWED = {
    "app/part3/trainer_keeper.py": "hands the service's environment to the trainer it starts",
    "app/part3/training_job.py": "caps the training libraries' threads through their own variables",
    "workshop/cli.py": "hands the learner's environment to the pytest run of `workshop check`",
    "workshop/notebook.py": "hands the notebook's environment to the app it starts",
    "bench/load.py": "the benchmark's load generator: its client choice and the servers' environment",
    "bench/servers.py": "hands the environment to the servers it starts",
    "bench/store_backends.py": "points boto3 at the S3 server it starts",
    "bench/object_store.py": "points boto3 at the S3 server it starts, then restores the environment",
    "bench/apps/kept_digits.py": "a benchmark server: the driver names its model file",
    "bench/apps/workshop_digits.py": "a benchmark server: the driver names its model file",
    "notebooks/monitoring.ipynb": "sets the offline MNIST source for the service it runs in-process",
}
READS_ENVIRONMENT = ("os.environ", "getenv", "environ.get", "environ[")


def code_of(path: Path) -> str:
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        return "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
    return path.read_text()


def test_settings_are_read_in_one_place_per_program():
    files = [
        path for folder in ("app", "workshop", "bench", "solutions") for path in (PROJECT_ROOT / folder).rglob("*.py")
    ]
    files += sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))
    readers = {
        str(path.relative_to(PROJECT_ROOT))
        for path in files
        if any(marker in code_of(path) for marker in READS_ENVIRONMENT)
    }
    strays = readers - SETTINGS_MODULES - set(ENVIRONMENT_ALLOWED)
    assert not strays, (
        f"{sorted(strays)} read the environment: add a field to app/part3/settings.py (Part 3) or use "
        "app.paths.setting (Parts 1-2, notebooks)"
    )
    assert "app/part3/settings.py" not in readers, "pydantic-settings reads the environment itself"


def test_every_path_in_the_readmes_layout_table_exists():
    """The table a newcomer reads first names files that are there (a move updates it)."""
    text = (PROJECT_ROOT / "README.md").read_text()
    table = text[text.index("| path | what it holds |") : text.index("## Working through an exercise")]
    paths = set()
    for row in table.splitlines()[2:]:
        cells = row.split("|")[1:-1]
        if len(cells) != 2:
            continue
        named = re.findall(r"`([\w./-]+)`", cells[0])  # the path column: every name
        named += [path for path in re.findall(r"`([\w./-]+)`", cells[1]) if "/" in path.rstrip("/")]
        paths |= {path for path in named if not path.startswith(("models/", "/"))}  # not routes, nor run time
    assert len(paths) > 20, sorted(paths)
    missing = sorted(path for path in paths if not (PROJECT_ROOT / path).exists())
    assert not missing, f"README.md's layout table names what is not there: {missing}"
