"""Load the exercise a test file checks, from solutions/ (default) or exercises/ (WORKSHOP_SIDE, a
folder of the project or any path: the maintainers' checks run a freshly generated copy).

tests/exercises/part1/test_ex2_predict.py checks <side>/part1/ex2_predict.py. The `exercise` fixture
imports that file as a fresh module; `client` wraps its `app` in a TestClient entered as a context
manager, so the app's lifespan (start-up training, loading) runs as it does under `fastapi dev`.
"""

import os
from pathlib import Path

import pytest

from app.paths import PROJECT_ROOT
from tests.exercises.expect import CheckClient, code_error
from tests.fresh_modules import import_fresh

SIDE = os.environ.get("WORKSHOP_SIDE", "solutions")


def pytest_collection_modifyitems(items):
    """A `going_further(why, hint=...)` check tells `workshop check` its tier, why and hint (junit properties)."""
    for item in items:
        marker = item.get_closest_marker("going_further")
        if marker is not None:
            item.user_properties.append(("going_further", marker.args[0] if marker.args else "going further"))
            if marker.kwargs.get("hint"):
                item.user_properties.append(("hint", marker.kwargs["hint"]))


def exercise_path(test_file: Path) -> Path:
    return PROJECT_ROOT / SIDE / test_file.parent.name / (test_file.stem.removeprefix("test_") + ".py")


@pytest.fixture(scope="module")
def exercise(request):
    """The exercise module this test file checks; a file that does not import says why, line and caret."""
    path = exercise_path(Path(request.module.__file__))
    try:
        return import_fresh(path, prefix=f"workshop_{Path(SIDE).name}")
    except AssertionError:
        raise
    except Exception as error:  # SyntaxError, ImportError, NameError... from the learner's file
        raise code_error(path, error) from None


@pytest.fixture(scope="module")
def client(exercise):
    with CheckClient(exercise.app) as test_client:
        yield test_client
