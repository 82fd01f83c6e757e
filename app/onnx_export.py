"""Write a version's serving file (`model.onnx`) and check it against the library that trained it.

Training side only (notebooks, the trainer): the converters import Keras/TensorFlow or scikit-learn.
The services read the file with ONNX Runtime alone (app/part3/onnx_models.py). `app.mnist.publish`
and `app.penguins.publish` call these inside the store's save step, so a version whose export fails
or disagrees with the training library is never published: `ServingExportFailed` says why.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

SERVING_FILE = "model.onnx"
SERVING_RUNTIME = "onnxruntime"
PROBABILITY_TOLERANCE = 1e-4
MIN_PARITY_IMAGES = 1000
PENGUIN_INPUT = "measurements"  # (n, features) float64, the pipeline's columns in order


class ServingExportFailed(RuntimeError):
    """The serving file could not be written, or ONNX Runtime does not give the training library's answers."""


def session(path: Path):
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def compare(
    what: str, expected_classes, actual_classes, expected_probabilities, actual_probabilities, tied=None
) -> None:
    """Raise ServingExportFailed unless every class is the same and every probability within tolerance,
    except on the inputs marked `tied` (whose answer depends on how equal distances are ordered)."""
    expected_classes, actual_classes = np.asarray(expected_classes), np.asarray(actual_classes)
    if tied is not None:
        keep = ~np.asarray(tied)
        expected_classes, actual_classes = expected_classes[keep], actual_classes[keep]
        expected_probabilities, actual_probabilities = expected_probabilities[keep], actual_probabilities[keep]
    differ = np.flatnonzero(expected_classes != actual_classes)
    if len(differ):
        first = differ[0]
        raise ServingExportFailed(
            f"{what}: ONNX Runtime gives another class for {len(differ)} of {len(expected_classes)} inputs "
            f"(input {first}: {actual_classes[first]!r}, the training library {expected_classes[first]!r})"
        )
    gap = float(np.max(np.abs(np.asarray(expected_probabilities) - np.asarray(actual_probabilities)), initial=0.0))
    if not gap <= PROBABILITY_TOLERANCE:
        raise ServingExportFailed(
            f"{what}: probabilities differ by up to {gap:.2g} (at most {PROBABILITY_TOLERANCE:g})"
        )


def serving_metadata(input_shape: list[int | None], input_dtype: str) -> dict[str, Any]:
    """What a version's metadata says about its serving file, beside `serving_file`/`serving_sha256`."""
    return {"serving_runtime": SERVING_RUNTIME, "serving_input": {"shape": input_shape, "dtype": input_dtype}}


# -- MNIST: Keras 3's own ONNX export (it drives tf2onnx) ---------------------------------------
MNIST_SERVING = serving_metadata([None, 28, 28, 1], "float32")


def parity_images() -> np.ndarray:
    """The 1,000 MNIST images that ship with the project, in data/train_img.zip (the learners' uploads)."""
    from app.images import decode_digits, unzip_images
    from app.paths import DATA_DIR

    entries = unzip_images((DATA_DIR / "train_img.zip").read_bytes(), "train_img.zip")
    return decode_digits([content for _, content in entries], [name for name, _ in entries])


def export_mnist(model, folder: Path, images: np.ndarray | None = None) -> str:
    """Write `folder/model.onnx` from a Keras model and check it on >= 1,000 images; returns its name."""
    from app import mnist

    images = parity_images() if images is None else images
    if len(images) < MIN_PARITY_IMAGES:
        raise ServingExportFailed(f"the parity check needs at least {MIN_PARITY_IMAGES} images, got {len(images)}")
    inputs = mnist.to_model_input(images)
    path = Path(folder) / SERVING_FILE
    try:
        # The training library's answers (which also calls the model once, as its export needs).
        expected = np.concatenate(
            [np.asarray(model(inputs[i : i + 500], training=False)) for i in range(0, len(inputs), 500)]
        )
        model.export(str(path), format="onnx", verbose=False)
        runtime = session(path)
        actual = runtime.run(None, {runtime.get_inputs()[0].name: inputs})[0]
    except ServingExportFailed:
        raise
    except Exception as error:
        raise ServingExportFailed(f"mnist: exporting to ONNX failed ({type(error).__name__}: {error})") from error
    compare("mnist", expected.argmax(axis=-1), actual.argmax(axis=-1), expected, actual)
    return SERVING_FILE


# -- penguins: skl2onnx, the scaler and the KNN in one graph --------------------------------------
def penguin_serving(n_features: int) -> dict[str, Any]:
    return serving_metadata([None, n_features], "float64")


def tied_neighbours(pipeline, measurements: np.ndarray) -> np.ndarray:
    """Which inputs have a tie for the k-th nearest neighbour (the k-th and k+1-th equally distant).

    For those, which neighbour counts is a matter of order: scikit-learn's KD tree (or argpartition)
    and ONNX's TopK (the lower training row first) may pick differently, and neither is wrong. The
    parity check compares every other input; a model with no such ties (the workshop's) is compared
    on all of them.
    """
    knn = pipeline.steps[-1][1]
    if not hasattr(knn, "kneighbors") or knn.n_neighbors >= knn.n_samples_fit_:
        return np.zeros(len(measurements), dtype=bool)
    scaled = pipeline[:-1].transform(measurements) if len(pipeline.steps) > 1 else measurements
    distances, _ = knn.kneighbors(np.asarray(scaled), n_neighbors=knn.n_neighbors + 1)
    return np.isclose(distances[:, -2], distances[:, -1], rtol=1e-9, atol=1e-12)


def export_penguins(pipeline, folder: Path, frame: "pd.DataFrame | None" = None) -> str:
    """Write `folder/model.onnx` from the fitted scaler + KNN and check it on every penguin in `frame`
    (data/penguins.csv by default) but those with tied neighbours (see tied_neighbours); returns its name.

    Double-precision input (the pipeline computes in float64), no ZipMap (plain label and
    probability tensors), the species names kept as string labels.
    """
    from app.datasets import load_penguins
    from app.penguins import features_of

    features = features_of(pipeline)
    frame = load_penguins() if frame is None else frame
    path = Path(folder) / SERVING_FILE
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import DoubleTensorType

        onnx_model = convert_sklearn(
            pipeline,
            initial_types=[(PENGUIN_INPUT, DoubleTensorType([None, len(features)]))],
            # CDist (an ONNX Runtime contrib op) for the distances: many times faster than the
            # default Scan loop (bench/RESULTS.md).
            options={id(pipeline.steps[-1][1]): {"zipmap": False, "optim": "cdist"}},
        )
        path.write_bytes(onnx_model.SerializeToString())
        runtime = session(path)
        labels, probabilities = runtime.run(None, {PENGUIN_INPUT: frame[features].to_numpy(np.float64)})
    except Exception as error:
        raise ServingExportFailed(f"penguins: exporting to ONNX failed ({type(error).__name__}: {error})") from error
    inputs = frame[features]
    tied = tied_neighbours(pipeline, inputs)
    compare("penguins", pipeline.predict(inputs), labels, pipeline.predict_proba(inputs), probabilities, tied)
    return SERVING_FILE
