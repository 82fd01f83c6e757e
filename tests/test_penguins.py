"""app.penguins: the NumPy fast path gives scikit-learn's answers; skops loads only trusted types."""

import os

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from app.datasets import PENGUIN_FEATURES, PENGUIN_TARGET, load_penguins
from app.penguins import FastPenguinPredictor, build_pipeline, evaluate, load, publish, save, train
from app.store import ModelStore

FEATURES = list(PENGUIN_FEATURES)


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    return load_penguins()


def grid_and_data(frame: pd.DataFrame) -> pd.DataFrame:
    """A grid past the data's range in both directions (0.5 mm by 1 mm), plus every measured penguin:
    the measured points are where equal distances, and so tie-breaks, happen."""
    bills, flippers = np.meshgrid(np.arange(25.0, 70.0, 0.5), np.arange(160.0, 245.0, 1.0))
    grid = pd.DataFrame({FEATURES[0]: bills.ravel(), FEATURES[1]: flippers.ravel()})
    return pd.concat([grid, frame[FEATURES]], ignore_index=True)


@pytest.mark.parametrize(
    ("n_neighbors", "n_rows"),
    [(11, None), (1, None), (4, None), (6, 40)],  # even k: tied votes; 40 rows: a sparse neighbourhood
    ids=["workshop", "k=1", "k=4", "k=6 on 40 penguins"],
)
def test_the_fast_predictor_equals_scikit_learn(penguins, n_neighbors, n_rows):
    frame = penguins.sample(n_rows, random_state=0) if n_rows else penguins
    pipeline = train(frame, n_neighbors=n_neighbors)
    points = grid_and_data(frame)
    expected = pipeline.predict(points)
    fast = FastPenguinPredictor(pipeline)
    actual = np.array([fast.predict(bill, flipper) for bill, flipper in points.itertuples(index=False)])
    mismatches = points[actual != expected]
    assert mismatches.empty, f"{len(mismatches)} of {len(points)} differ, e.g.\n{mismatches.head()}"
    assert len(set(expected)) == 3  # the grid crosses every species' region


def test_the_fast_predictor_refuses_what_it_does_not_implement(penguins):
    pipeline = build_pipeline().set_params(knn__weights="distance").fit(penguins[FEATURES], penguins[PENGUIN_TARGET])
    with pytest.raises(ValueError, match="uniform weights"):
        FastPenguinPredictor(pipeline)


def test_skops_round_trip_keeps_the_predictions(tmp_path, penguins):
    pipeline = train(penguins)
    file_name = save(pipeline, tmp_path)
    loaded = load(tmp_path / file_name)
    assert isinstance(loaded, Pipeline)
    assert list(loaded.classes_) == list(pipeline.classes_)
    points = grid_and_data(penguins)
    assert (loaded.predict(points) == pipeline.predict(points)).all()


def test_a_file_with_an_untrusted_type_is_refused(tmp_path, penguins):
    # A BallTree is harmless, but it is not on the list: skops refuses what it was not told to trust.
    pipeline = build_pipeline().set_params(knn__algorithm="ball_tree").fit(penguins[FEATURES], penguins[PENGUIN_TARGET])
    save(pipeline, tmp_path)
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException, match="BallTree"):
        load(tmp_path / "model.skops")


def test_a_file_that_would_call_a_function_is_refused(tmp_path, penguins):
    """The attack pickle allows: a model whose loading or use runs os.system. skops never rebuilds it."""
    hostile = Pipeline([("run", FunctionTransformer(os.system)), *train(penguins).steps])
    sio.dump(hostile, tmp_path / "hostile.skops")
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException, match="system"):
        load(tmp_path / "hostile.skops")


def test_evaluate_and_publish_follow_the_fitted_columns(tmp_path, penguins):
    """The notebook's `features` parameter may pick other columns: the metadata must say which."""
    features = ("bill_depth_mm", "flipper_length_mm")
    pipeline = train(penguins, features=features)
    metrics = evaluate(pipeline, penguins)
    assert 0.5 < metrics["accuracy"] <= 1 and metrics["n_test"] == len(penguins)
    version = publish(pipeline, metrics, {"features": list(features)}, store=ModelStore("penguins", root=tmp_path))
    assert version.metadata["features"] == list(features)
