"""Fixtures for the Part 3 service's tests: one seeded model store per session, copied per module."""

import pytest
from part3_support import copy_store, seed_store


@pytest.fixture(scope="session")
def seeded_store(tmp_path_factory):
    """A store with penguins version 1 and a tiny mnist version 1 (trained once per session)."""
    folder = tmp_path_factory.mktemp("seeded") / "models"
    seed_store(folder)
    return folder


@pytest.fixture(scope="module")
def models_dir(seeded_store, tmp_path_factory):
    """A private copy of the seeded store for one test module."""
    return copy_store(seeded_store, tmp_path_factory.mktemp("part3") / "models")
