"""Fixtures for the reliability and security suites: one seeded model store per session.

The Part 3 tests' helpers (tests/part3/part3_support.py: seeding a store, starting the service in-
process or as a real `fastapi run`, waiting for jobs) are reused, not copied.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "part3"))

from part3_support import copy_store, seed_store  # noqa: E402


@pytest.fixture(scope="session")
def seeded_store(tmp_path_factory):
    """A store with penguins version 1 and a tiny mnist version 1 (trained once per session)."""
    folder = tmp_path_factory.mktemp("reliability-seeded") / "models"
    seed_store(folder)
    return folder


@pytest.fixture(scope="module")
def models_dir(seeded_store, tmp_path_factory):
    """A private copy of the seeded store for one test module."""
    return copy_store(seeded_store, tmp_path_factory.mktemp("reliability") / "models")
