"""notebooks/penguins.ipynb run by papermill with small parameters: what it exports loads and predicts."""

import math

import nbformat
import pandas as pd
import pytest

from app.datasets import PENGUIN_FEATURES, load_penguins
from app.penguins import MODEL_NAME, load_latest
from app.store import ModelStore
from tests.notebook_support import run_notebook

PARAMETERS = {"n_neighbors": 5, "test_size": 0.4, "random_state": 7}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Execute the notebook once into a temporary folder and store; the tests read what it left."""
    output, models = run_notebook("penguins", PARAMETERS, tmp_path_factory)
    return output, ModelStore(MODEL_NAME, root=models)


@pytest.mark.slow
def test_the_export_loads_through_the_store_and_predicts(run):
    _, store = run
    assert store.versions() == [1]
    exported = load_latest(store)  # checks the sha256, loads with skops' trusted list
    assert exported.version == 1
    penguin = pd.DataFrame([[40.3, 195]], columns=list(PENGUIN_FEATURES))
    assert exported.pipeline.predict(penguin)[0] == "Adelie"


@pytest.mark.slow
def test_the_metadata_records_the_run(run):
    _, store = run
    metadata = store.get(1).metadata
    assert metadata["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert metadata["features"] == ["bill_length_mm", "flipper_length_mm"]
    assert metadata["parameters"] == {**PARAMETERS, "features": metadata["features"]}
    assert {"scikit-learn", "skops", "numpy"} <= set(metadata["libraries"])
    metrics = metadata["metrics"]
    # 40% of the penguins held out (scikit-learn rounds up): the confusion matrix counts exactly those.
    n_penguins = len(load_penguins())
    assert metrics["n_test"] == sum(map(sum, metrics["confusion_matrix"])) == math.ceil(0.4 * n_penguins)
    assert metrics["n_train"] + metrics["n_test"] == n_penguins
    assert 0.8 < metrics["accuracy"] <= 1


@pytest.mark.slow
def test_the_notebook_draws_its_plots(run):
    output, _ = run
    images = [
        output_
        for cell in nbformat.read(output, as_version=4).cells
        for output_ in cell.get("outputs", [])
        if "image/png" in output_.get("data", {})
    ]
    assert len(images) == 3  # the data, the confusion matrix, the decision boundary
