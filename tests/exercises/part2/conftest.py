"""Part 2 checks: each test file gets its own empty model store, before its exercise is imported."""

import pytest


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKSHOP_MODELS_DIR", str(path))
        yield path


@pytest.fixture(scope="module")
def exercise(models_dir, exercise):
    """The shared `exercise` fixture, imported once the store points at this module's folder."""
    return exercise
