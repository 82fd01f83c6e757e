"""app/models/penguins: the workshop's pipeline, its declaration for the service, and skops loading only
trusted types."""

import os

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from app.datasets import PENGUIN_FEATURES, PENGUIN_TARGET, load_penguins
from app.modelkit import Examples
from app.models import penguins
from app.models.penguins import PenguinParameters, build_pipeline, evaluate, train

FEATURES = list(PENGUIN_FEATURES)
MODEL = penguins.MODEL


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return load_penguins()


def grid_and_data(frame: pd.DataFrame) -> pd.DataFrame:
    """A grid past the data's range in both directions (0.5 mm by 1 mm), plus every measured penguin."""
    bills, flippers = np.meshgrid(np.arange(25.0, 70.0, 0.5), np.arange(160.0, 245.0, 1.0))
    grid = pd.DataFrame({FEATURES[0]: bills.ravel(), FEATURES[1]: flippers.ravel()})
    return pd.concat([grid, frame[FEATURES]], ignore_index=True)


def test_the_declaration_trains_the_workshops_pipeline_on_the_species_names(frame):
    trained = MODEL.train(MODEL.training_data(), PenguinParameters())
    assert list(trained.model.classes_) == list(MODEL.classes) == ["Adelie", "Chinstrap", "Gentoo"]
    workshop = train(penguins.split(frame)[0])
    points = grid_and_data(frame)
    assert (trained.model.predict(points) == workshop.predict(points)).all()
    probabilities = MODEL.probabilities(trained.model, points.to_numpy())
    assert probabilities.shape == (len(points), 3)
    assert (np.asarray(MODEL.classes)[probabilities.argmax(axis=1)] == workshop.predict(points)).all()


def test_training_needs_every_class(frame):
    data = MODEL.training_data()
    only_two = data.labels < 2
    with pytest.raises(ValueError, match="needs all of"):
        MODEL.train(Examples(data.inputs[only_two], data.labels[only_two]), PenguinParameters())


def test_skops_round_trip_keeps_the_predictions(tmp_path, frame):
    pipeline = train(frame)
    loaded = MODEL.load(tmp_path / MODEL.save(pipeline, tmp_path))
    assert isinstance(loaded, Pipeline) and list(loaded.classes_) == list(pipeline.classes_)
    points = grid_and_data(frame)
    assert (loaded.predict(points) == pipeline.predict(points)).all()


def test_a_file_with_an_untrusted_type_is_refused(tmp_path, frame):
    # A BallTree is harmless, but it is not on the list: skops refuses what it was not told to trust.
    pipeline = build_pipeline().set_params(knn__algorithm="ball_tree").fit(frame[FEATURES], frame[PENGUIN_TARGET])
    MODEL.save(pipeline, tmp_path)
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException, match="BallTree"):
        MODEL.load(tmp_path / "model.skops")


def test_a_file_that_would_call_a_function_is_refused(tmp_path, frame):
    """The attack pickle allows: a model whose loading or use runs os.system. skops never rebuilds it."""
    hostile = Pipeline([("run", FunctionTransformer(os.system)), *train(frame).steps])
    sio.dump(hostile, tmp_path / "hostile.skops")
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException, match="system"):
        MODEL.load(tmp_path / "hostile.skops")


def test_evaluate_follows_the_fitted_columns(frame):
    """The notebook's `features` parameter may pick other columns."""
    pipeline = train(frame, features=("bill_depth_mm", "flipper_length_mm"))
    metrics = evaluate(pipeline, frame)
    assert 0.5 < metrics["accuracy"] <= 1 and metrics["n_test"] == len(frame)
    assert penguins.features_of(pipeline) == ["bill_depth_mm", "flipper_length_mm"]
