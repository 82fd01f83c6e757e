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
