"""Where the project keeps its data and its models, and the settings of Parts 1 and 2 and the notebooks.

This is the one module outside app/part3/settings.py that reads the environment (a test checks it):
WORKSHOP_DATA_DIR, WORKSHOP_MODELS_DIR, WORKSHOP_EPOCHS and WORKSHOP_MNIST_SOURCE, so that a test,
a notebook run by papermill or a container can point the code somewhere else without editing it.
Part 3 reads its own settings, with the same names, through its pydantic-settings class.
"""

import os
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent  # the `app` package
PROJECT_ROOT = APP_DIR.parent
PREFIX = "WORKSHOP_"


def setting(name: str, default: str | Path | None = None) -> str | None:
    """The environment variable WORKSHOP_<name> (read at call time, so a test can set it), else `default`."""
    value = os.environ.get(PREFIX + name)
    return value if value else (None if default is None else str(default))


DATA_DIR = Path(setting("DATA_DIR", PROJECT_ROOT / "data") or "")


def models_dir() -> Path:
    """The model store's root; read at call time so tests can point it at a temporary folder."""
    return Path(setting("MODELS_DIR", PROJECT_ROOT / "models") or "")


def keras_home() -> Path:
    """Where Keras keeps its downloads (Keras' own KERAS_HOME variable)."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


def exercise_models_dir() -> Path:
    """The exercises' own model store, models/exercises/ (inside WORKSHOP_MODELS_DIR when it is set).

    The notebooks publish into models_dir() itself, which app/part1, app/part2 and Part 3 serve; the
    exercises keep theirs apart, so a notebook run never replaces the model a learner's exercise serves."""
    return models_dir() / "exercises"
