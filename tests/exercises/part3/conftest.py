"""Part 3's checks read the learner's Dockerfile and compose.yaml instead of importing a Python file.

tests/exercises/part3/test_ex1_image.py checks <side>/part3/Dockerfile, where <side> is solutions/
(CI) or exercises/ (`uv run workshop check part3/ex1_image`), as for the other parts.
"""

import os

import pytest
import yaml

from workshop.dockerfile import Dockerfile
from app.paths import PROJECT_ROOT
from workshop.cli import SIDE_ENV

PART3 = PROJECT_ROOT / os.environ.get(SIDE_ENV, "solutions") / "part3"


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return Dockerfile.read(PART3 / "Dockerfile")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((PART3 / "compose.yaml").read_text()) or {}
