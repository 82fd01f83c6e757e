"""notebooks/mnist.ipynb run by papermill with tiny parameters: what it exports loads and predicts."""

import json

import nbformat
import numpy as np
import pytest

from app.datasets import MNIST_SOURCE_ENV
from app.images import decode_digit
from app.models import mnist
from app.paths import DATA_DIR
from app.store import ModelStore
from tests.notebook_support import run_notebook

PARAMETERS = {"epochs": 1, "batch_size": 64, "source": "bundled", "limit": 400, "seed": 3}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Execute the notebook once into a temporary folder and store; the tests read what it left.

    As a learner runs it: `-p source bundled` and no WORKSHOP_MNIST_SOURCE. Keras' cache holds an
    mnist.npz that fails Keras' checksum, so anything that asks Keras for MNIST ("auto") would start a
    download, and fail here: the run shows the notebook never does, its publish cell included."""
    keras_home = tmp_path_factory.mktemp("keras-home")
    (keras_home / "datasets").mkdir()
    np.savez(keras_home / "datasets" / "mnist.npz", x_train=np.zeros((1, 28, 28), np.uint8))
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(MNIST_SOURCE_ENV, raising=False)
        patch.setenv("KERAS_HOME", str(keras_home))  # the kernel papermill starts inherits both
        output, models = run_notebook("mnist", PARAMETERS, tmp_path_factory)
    return nbformat.read(output, as_version=4), ModelStore(mnist.MODEL_NAME, root=models)


def printed(notebook) -> str:
    return "".join(
        output.get("text", "")
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("name") == "stdout"
    )


def line_after(text: str, marker: str) -> str:
    """The JSON list printed after `marker`."""
    rest = text[text.index(marker) + len(marker) :]
    return rest[rest.index("[") : rest.index("]") + 1]


def test_the_export_loads_through_the_store_and_predicts(run):
    _, store = run
    assert store.versions() == [1]
    model = store.load(1, mnist.load)  # checks the sha256, loads in safe mode
    images = [decode_digit((DATA_DIR / "test_image" / f"test_img{digit}.png").read_bytes()) for digit in range(10)]
    digits = mnist.predict_digits(model, images)
    assert len(digits) == 10 and all(0 <= digit <= 9 for digit in digits)


def test_the_metadata_records_the_run(run):
    _, store = run
    metadata = store.get(1).metadata
    assert metadata["version"] == 1 and metadata["parent"] is None and len(metadata["sha256"]) == 64
    assert metadata["data"] == {"source": "bundled", "requested": "bundled", "size": 400, "n_test": 80}
    assert metadata["parameters"] == {**{k: v for k, v in PARAMETERS.items() if k != "source"}, "validation_split": 0.1}
    assert {"keras", "numpy"} <= set(metadata["libraries"])
    metrics = metadata["metrics"]
    assert metrics["n_test"] == sum(map(sum, metrics["confusion_matrix"])) == 80
    assert 0 <= metrics["accuracy"] <= 1 and metrics["n_train"] == 400
    assert len(metadata["history"]["loss"]) == 1


def test_the_notebook_says_which_data_it_used_and_shows_the_validation_split_flaw(run):
    notebook, _ = run
    text = printed(notebook)
    assert "MNIST source: bundled" in text
    # Sorted by label, Keras' validation_split keeps the last digits for validation; shuffled, all kinds.
    sorted_split = json.loads(line_after(text, "validates on digits"))
    assert set(sorted_split) <= {8, 9}
    shuffled_counts = json.loads(line_after(text, "validation images per digit after shuffling:"))
    assert sum(count > 0 for count in shuffled_counts) >= 5


def test_the_notebook_draws_its_plots(run):
    notebook, _ = run
    images = [o for cell in notebook.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 3  # the training curves, the confusion matrix, the sample predictions


def test_the_notebook_publishes_a_serving_file_and_shows_its_parity(run):
    notebook, store = run
    assert store.get(1).serving_file.exists() and store.get(1).metadata["serving_runtime"] == "onnxruntime"
    assert "1000 images: the same digits" in printed(notebook)


def test_the_run_with_the_bundled_source_downloads_nothing(run):
    """The promotion gate measures the new version on the notebook's own source, not on Keras' MNIST."""
    notebook, store = run
    assert store.get(1).metadata["gate"]["holdout"] == "bundled MNIST test split"
    streams = "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []))
    assert "Downloading data from" not in streams
