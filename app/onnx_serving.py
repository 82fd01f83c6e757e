"""A version's serving file (`model.onnx`) as an ONNX Runtime session: what a Part 3 worker serves,
and what the export check and the gate run.

Each version's `model.onnx` was checked against its training library when it was published
(app/onnx_export.py); running it needs only onnxruntime and NumPy, so a worker never imports
TensorFlow, Keras, scikit-learn or skops. Sessions are opened once per version, warmed with one
call, and shared by every request (ONNX Runtime's `run` is thread-safe and releases the GIL).
"""

from pathlib import Path

import numpy as np
import onnxruntime

from app.modelkit import Model

# One intra-op thread per session: a worker's parallelism is its requests (and its workers), and
# these small graphs gain nothing from splitting one call across cores (bench/RESULTS.md).
INTRA_OP_THREADS = 1
# Rows per run: ONNX Runtime's memory arena grows to the largest call's activations, so a batch of
# 256 images at once raises a worker's peak RSS by ~50 MiB; 64 at a time, ~13 MiB, at the same speed.
MAX_ROWS_PER_RUN = 64


def open_session(path: Path, threads: int = INTRA_OP_THREADS) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class ServingModel:
    """One version of a model in ONNX Runtime: request rows in, class probabilities and labels out."""

    def __init__(self, path: Path, model: Model, threads: int = INTRA_OP_THREADS) -> None:
        self.model = model
        self.session = open_session(path, threads)
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ValueError(f"{model.name}: the serving file takes {len(inputs)} inputs; the service feeds one")
        self.input_name = inputs[0].name
        self.output_name = self.session.get_outputs()[model.probabilities_output].name
        self.classes = np.asarray(model.classes, dtype=object)
        # The first run allocates: not in a request.
        self.probabilities(np.zeros((1, *model.input.row_shape), dtype=model.input.dtype))

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        """(n, len(classes)) probabilities for a batch of rows in the model's input form."""
        feed = self.model.onnx_feed(np.asarray(rows, dtype=self.model.input.dtype))
        parts = [
            self.session.run([self.output_name], {self.input_name: feed[start : start + MAX_ROWS_PER_RUN]})[0]
            for start in range(0, len(feed), MAX_ROWS_PER_RUN)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def labels(self, probabilities: np.ndarray) -> list[str]:
        """Each row's class name (the most probable; the first of equals, as scikit-learn and Keras do)."""
        return self.classes[np.asarray(probabilities).argmax(axis=-1)].tolist()

    def predict(self, rows: np.ndarray) -> list[str]:
        """Each row's class name."""
        return self.labels(self.probabilities(rows))
