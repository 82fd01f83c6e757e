"""Where the project keeps its data and its models.

Every path can be overridden from the environment so that a test, a notebook run by papermill or a
container can point the code somewhere else without editing it.
"""

import os
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent  # the `app` package
PROJECT_ROOT = APP_DIR.parent
DATA_DIR = Path(os.environ.get("WORKSHOP_DATA_DIR", PROJECT_ROOT / "data"))


def models_dir() -> Path:
    """The model store's root; read at call time so tests can point it at a temporary folder."""
    return Path(os.environ.get("WORKSHOP_MODELS_DIR", PROJECT_ROOT / "models"))


def exercise_models_dir() -> Path:
    """The exercises' own model store, models/exercises/ (inside WORKSHOP_MODELS_DIR when it is set).

    The notebooks publish into models_dir() itself, which app/part1, app/part2 and Part 3 serve; the
    exercises keep theirs apart, so a notebook run never replaces the model a learner's exercise serves."""
    return models_dir() / "exercises"
