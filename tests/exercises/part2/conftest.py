"""Part 2 checks: each test file gets its own empty model store, before its exercise is imported."""

import pytest

from tests.part2_support import models_dir  # noqa: F401 (a fixture: each test file's empty store)


@pytest.fixture(scope="module")
def exercise(models_dir, exercise):  # noqa: F811 (the fixture imported above)
    """The shared `exercise` fixture, imported once the store points at this module's folder."""
    return exercise
