"""requirements.txt is exported from uv.lock and must not drift from it."""

import os
import shutil
import subprocess

import pytest

from app.paths import PROJECT_ROOT

EXPORT = ["export", "--format", "requirements-txt", "--all-groups", "--no-emit-project", "--locked"]


def test_requirements_txt_matches_the_lock():
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed")
    exported = subprocess.run([uv, *EXPORT, "--quiet"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    committed = (PROJECT_ROOT / "requirements.txt").read_text()

    # The header names the command that wrote the file; compare what is installed, not the comment.
    def strip(text):
        return [line for line in text.splitlines() if not line.startswith(("# This file", "#    uv "))]

    assert strip(committed) == strip(exported.stdout), (
        "requirements.txt is stale: run `uv export --format requirements-txt --all-groups --no-emit-project "
        "--locked -o requirements.txt`"
    )


def test_tensorflow_cpu_only_on_linux_x86_64():
    text = (PROJECT_ROOT / "requirements.txt").read_text()
    cpu = next(line for line in text.splitlines() if line.startswith("tensorflow-cpu=="))
    full = next(line for line in text.splitlines() if line.startswith("tensorflow=="))
    assert "platform_machine == 'x86_64'" in cpu and "sys_platform == 'linux'" in cpu
    assert "platform_machine != 'x86_64'" in full or "sys_platform != 'linux'" in full
