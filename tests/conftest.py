"""Settings shared by the whole suite: offline data, short trainings, a private model store."""

import os

# Before anything imports Keras or the apps: the suite never waits on a download, trains for one
# epoch, and keeps TensorFlow's start-up chatter out of the output.
os.environ.setdefault("WORKSHOP_MNIST_SOURCE", "bundled")
os.environ.setdefault("WORKSHOP_EPOCHS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def private_model_store(tmp_path_factory):
    """Every test writes models under a temporary folder, never into the checkout's models/."""
    if "WORKSHOP_MODELS_DIR" not in os.environ:
        os.environ["WORKSHOP_MODELS_DIR"] = str(tmp_path_factory.mktemp("models"))
    yield os.environ["WORKSHOP_MODELS_DIR"]
