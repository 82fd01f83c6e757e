"""Where the project keeps its data and its models, and the settings of Parts 1 and 2 and the notebooks.

This is the one module outside app/part3/settings.py that reads the environment (a test checks it):
WORKSHOP_DATA_DIR, WORKSHOP_MODELS_DIR, WORKSHOP_MODELS_URL, WORKSHOP_MODELS_CACHE, WORKSHOP_EPOCHS and
WORKSHOP_MNIST_SOURCE (and XDG_CACHE_HOME, the user's cache folder, and the S3 endpoint), so that a test,
a notebook run by papermill or a container can point the code somewhere else without editing it.
Part 3 reads its own settings, with the same names, through its pydantic-settings class.
"""

import os
import tempfile
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


def models_url() -> str | None:
    """WORKSHOP_MODELS_URL: `s3://bucket/prefix` puts the model store in S3-compatible object storage
    (endpoint and credentials from the usual AWS_* variables, read by boto3); unset: the local folder."""
    return setting("MODELS_URL")


def object_store_endpoint() -> str | None:
    """The S3 endpoint boto3 will use (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL; None: AWS itself)."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def models_location() -> str | Path:
    """Where the model store is: the object store's URL when WORKSHOP_MODELS_URL is set, else models_dir()."""
    return models_url() or models_dir()


def models_cache_dir() -> Path:
    """WORKSHOP_MODELS_CACHE: where the files of an object store's versions are downloaded (checked by
    sha256 before any use). Default: the user's cache folder, or the temporary folder when there is no
    home (a container's user), never the repository."""
    configured = setting("MODELS_CACHE")
    if configured:
        return Path(configured)
    home = os.environ.get("XDG_CACHE_HOME") or (str(Path.home() / ".cache") if Path.home().is_dir() else None)
    if home and os.access(Path(home).parent if not Path(home).exists() else home, os.W_OK):
        return Path(home) / "fastapi-ml-workshop" / "models"
    return Path(tempfile.gettempdir()) / f"fastapi-ml-workshop-models-{os.getuid()}"


def keras_home() -> Path:
    """Where Keras keeps its downloads (Keras' own KERAS_HOME variable)."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


def exercise_models_dir() -> Path:
    """The exercises' own model store, models/exercises/ (inside WORKSHOP_MODELS_DIR when it is set).

    The notebooks publish into models_dir() itself, which app/part1, app/part2 and Part 3 serve; the
    exercises keep theirs apart, so a notebook run never replaces the model a learner's exercise serves."""
    return models_dir() / "exercises"
