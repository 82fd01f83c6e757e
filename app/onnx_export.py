"""Write a version's serving file (`model.onnx`) and check it against the library that trained it.

Training side only (notebooks, the trainer): the model's `export_onnx` imports its converter (Keras'
own export, skl2onnx). The gate calls `write_serving_file` inside the store's save step, so a version
whose export fails or disagrees with the training library is never published:
`ServingExportFailed` says why. Services read the file with ONNX Runtime alone (app/onnx_serving.py).
"""

from pathlib import Path
from typing import Any

import numpy as np

from app.modelkit import SERVING_FILE, Model
from app.onnx_serving import ServingModel

SERVING_RUNTIME = "onnxruntime"
PROBABILITY_TOLERANCE = 1e-4


class ServingExportFailed(RuntimeError):
    """The serving file could not be written, or ONNX Runtime does not give the training library's answers."""


def compare(
    what: str,
    expected_classes: np.ndarray,
    actual_classes: np.ndarray,
    expected_probabilities: np.ndarray,
    actual_probabilities: np.ndarray,
    ignored: np.ndarray | None = None,
) -> None:
    """Raise ServingExportFailed unless every class is the same and every probability within tolerance,
    except on the rows marked `ignored` (whose answer is legitimately a matter of order)."""
    expected_classes, actual_classes = np.asarray(expected_classes), np.asarray(actual_classes)
    expected_probabilities, actual_probabilities = np.asarray(expected_probabilities), np.asarray(actual_probabilities)
    if ignored is not None:
        keep = ~np.asarray(ignored, dtype=bool)
        expected_classes, actual_classes = expected_classes[keep], actual_classes[keep]
        expected_probabilities, actual_probabilities = expected_probabilities[keep], actual_probabilities[keep]
    differ = np.flatnonzero(expected_classes != actual_classes)
    if len(differ):
        first = differ[0]
        raise ServingExportFailed(
            f"{what}: ONNX Runtime gives another class for {len(differ)} of {len(expected_classes)} inputs "
            f"(input {first}: {actual_classes[first]!r}, the training library {expected_classes[first]!r})"
        )
    gap = float(np.max(np.abs(expected_probabilities - actual_probabilities), initial=0.0))
    if not gap <= PROBABILITY_TOLERANCE:
        raise ServingExportFailed(
            f"{what}: probabilities differ by up to {gap:.2g} (at most {PROBABILITY_TOLERANCE:g})"
        )


def serving_metadata(model: Model) -> dict[str, Any]:
    """What a version's metadata says about its serving file, beside `serving_file`/`serving_sha256`."""
    return {"serving_runtime": SERVING_RUNTIME, "serving_input": model.input.describe()}


def check_parity(model: Model, trained_model: Any, path: Path) -> None:
    """ServingExportFailed unless the ONNX file at `path` answers like the training library on the
    model's parity rows."""
    inputs = model.parity_inputs()
    expected = np.asarray(model.probabilities(trained_model, inputs))
    actual = ServingModel(path, model).probabilities(inputs)
    ignored = model.parity_ignored(trained_model, inputs)
    compare(model.name, expected.argmax(axis=-1), actual.argmax(axis=-1), expected, actual, ignored)


def write_serving_file(model: Model, trained_model: Any, folder: Path) -> str:
    """Write `folder/model.onnx` from a trained model and check it; returns its name."""
    path = Path(folder) / SERVING_FILE
    try:
        model.export_onnx(trained_model, path)
        check_parity(model, trained_model, path)
    except ServingExportFailed:
        raise
    except Exception as error:
        raise ServingExportFailed(
            f"{model.name}: exporting to ONNX failed ({type(error).__name__}: {error})"
        ) from error
    return SERVING_FILE
