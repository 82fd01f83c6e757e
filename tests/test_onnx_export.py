"""The serving file (model.onnx) gates publication: ONNX Runtime must give the training library's
answers, and a version whose export disagrees is never published (app/onnx_export.py)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from app import onnx_export, promotion
from app.datasets import PENGUIN_FEATURES, PENGUIN_TARGET, load_penguins
from app.modelkit import Trained
from app.models import penguins
from app.models.penguins import Penguins, knn
from app.onnx_export import ServingExportFailed
from app.onnx_serving import ServingModel, open_session
from app.store import ModelStore, sha256_of

MODEL = penguins.MODEL


def test_a_published_penguin_version_carries_a_serving_file_that_answers_as_scikit_learn(tmp_path):
    frame = load_penguins()
    pipeline = penguins.train(frame)
    version = promotion.publish(MODEL, Trained(pipeline), store=ModelStore("penguins", tmp_path))
    assert version.metadata["serving_file"] == "model.onnx"
    assert version.metadata["serving_sha256"] == sha256_of(version.serving_file)
    assert version.metadata["serving_runtime"] == "onnxruntime"
    assert version.metadata["serving_input"] == {"name": "measurements", "datatype": "FP64", "shape": [-1, 2]}
    served = ServingModel(version.serving_file, MODEL)
    expected = pipeline.predict(frame[list(PENGUIN_FEATURES)])
    assert served.predict(frame[list(PENGUIN_FEATURES)].to_numpy()) == list(expected)


class OnlyThese(Penguins):
    """The penguin declaration, with the export check on the rows given."""

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows

    def parity_inputs(self) -> np.ndarray:
        return self.rows


def tied_pipeline(order: list[int]) -> tuple[Pipeline, pd.DataFrame]:
    """k=3 around (40, 200): two Adelie neighbours, then a Chinstrap and a Gentoo at the same distance."""
    points = [
        (0, 0.5, "Adelie"),
        (0, -0.5, "Adelie"),
        (1, 0, "Chinstrap"),
        (-1, 0, "Gentoo"),
        (5, 5, "Gentoo"),
        (6, 6, "Gentoo"),
    ]
    frame = pd.DataFrame(
        [(40 + points[i][0], 200 + points[i][1], points[i][2]) for i in order],
        columns=[*PENGUIN_FEATURES, PENGUIN_TARGET],
    )
    pipeline = Pipeline(
        [("scaler", StandardScaler(with_mean=False, with_std=False)), ("knn", KNeighborsClassifier(n_neighbors=3))]
    )
    pipeline.fit(frame[list(PENGUIN_FEATURES)], frame[PENGUIN_TARGET])
    query = pd.DataFrame([(40.0, 200.0, "Adelie")], columns=[*PENGUIN_FEATURES, PENGUIN_TARGET])
    return pipeline, query


def test_a_knn_tie_that_onnx_topk_breaks_otherwise_is_found_and_left_out_of_the_comparison(tmp_path):
    """scikit-learn and ONNX's TopK (the lower training row first) may pick different neighbours among
    equally distant ones: the same data in another row order gives another answer on the tied input,
    in ONNX Runtime only. Such inputs are found (tied_neighbours) and not compared; the rest must agree."""
    answers = {}
    for order in ([0, 1, 2, 3, 4, 5], [3, 2, 1, 0, 4, 5]):
        pipeline, query = tied_pipeline(order)
        rows = query[list(PENGUIN_FEATURES)]
        assert knn.tied_neighbours(pipeline, rows).tolist() == [True]
        assert pipeline.predict_proba(rows)[0].tolist() == pytest.approx([2 / 3, 1 / 3, 0])
        folder = tmp_path / "".join(map(str, order))
        folder.mkdir()
        onnx_export.write_serving_file(OnlyThese(rows.to_numpy()), pipeline, folder)  # the tie is not compared
        runtime = open_session(folder / "model.onnx")
        answers[tuple(order)] = runtime.run(None, {"measurements": rows.to_numpy()})[1][0]
    assert answers[(0, 1, 2, 3, 4, 5)].tolist() == pytest.approx([2 / 3, 1 / 3, 0])
    assert answers[(3, 2, 1, 0, 4, 5)].tolist() == pytest.approx([2 / 3, 0, 1 / 3])  # TopK took the Gentoo
    with pytest.raises(ServingExportFailed, match="probabilities differ"):  # what a strict comparison would say
        onnx_export.compare(
            "tied", ["Adelie"], ["Adelie"], np.array([[2 / 3, 1 / 3, 0]]), answers[(3, 2, 1, 0, 4, 5)][None]
        )


def test_on_the_workshops_penguins_even_the_tied_ones_get_the_same_class(tmp_path):
    frame = load_penguins()
    pipeline = penguins.train(frame)
    inputs = frame[list(PENGUIN_FEATURES)]
    tied = knn.tied_neighbours(pipeline, inputs)
    assert tied.sum() > 0  # repeated measurements tie
    onnx_export.write_serving_file(MODEL, pipeline, tmp_path)
    labels, probabilities = open_session(tmp_path / "model.onnx").run(None, {"measurements": inputs.to_numpy()})
    assert list(labels) == list(pipeline.predict(inputs))
    expected = pipeline.predict_proba(inputs)
    assert np.abs(probabilities - expected)[~tied].max() <= onnx_export.PROBABILITY_TOLERANCE


def test_a_version_whose_serving_file_disagrees_is_not_published(tmp_path, monkeypatch):
    frame = load_penguins()
    pipeline = penguins.train(frame)
    other = penguins.train(frame, n_neighbors=1)  # a different model's answers in the serving file
    real_export = Penguins.export_onnx
    monkeypatch.setattr(Penguins, "export_onnx", lambda self, model, path: real_export(self, other, path))
    store = ModelStore("penguins", tmp_path)
    with pytest.raises(ServingExportFailed, match="penguins: ONNX Runtime gives another class"):
        promotion.publish(MODEL, Trained(pipeline), store=store)
    assert store.versions() == [] and not [path for path in store.path.iterdir() if path.name != ".training.lock"]


def test_compare_refuses_another_class_or_a_probability_gap():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8]])
    onnx_export.compare("m", [0, 1], [0, 1], probabilities, probabilities + 5e-5)
    with pytest.raises(ServingExportFailed, match="another class for 1 of 2"):
        onnx_export.compare("m", [0, 1], [0, 0], probabilities, probabilities)
    with pytest.raises(ServingExportFailed, match="probabilities differ"):
        onnx_export.compare("m", [0, 1], [0, 1], probabilities, probabilities + 2e-4)


@pytest.mark.slow  # builds Keras models
def test_a_digit_version_is_published_only_when_onnx_runtime_agrees_on_1000_images(tmp_path):
    from app.models import mnist

    store = ModelStore("mnist", tmp_path)
    model, other = mnist.build_model(seed=1), mnist.build_model(seed=2)
    images = mnist.MODEL.parity_inputs()
    assert len(images) == 1000
    other(mnist.to_model_input(images[:1]))
    model.export = lambda path, **options: other.export(path, **options)  # another model's serving file
    with pytest.raises(ServingExportFailed, match="mnist: ONNX Runtime gives another class|probabilities differ"):
        promotion.publish(mnist.MODEL, Trained(model), store=store, floor=0.0)
    assert store.versions() == []

    version = promotion.publish(mnist.MODEL, Trained(other), store=store, floor=0.0)
    assert version.metadata["serving_input"] == {"name": "image", "datatype": "UINT8", "shape": [-1, 28, 28]}
    served = ServingModel(version.serving_file, mnist.MODEL).probabilities(images)
    assert np.abs(served - mnist.predict_probabilities(other, images)).max() <= onnx_export.PROBABILITY_TOLERANCE
