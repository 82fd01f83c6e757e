"""The two models as ONNX Runtime sessions: what a Part 3 worker serves.

Each version's `model.onnx` was written and checked against Keras / scikit-learn when it was
published (app/onnx_export.py); a worker needs only onnxruntime and NumPy to run it, so it never
imports TensorFlow, Keras, scikit-learn or skops. Sessions are opened once per version, warmed with
one call, and shared by every request (ONNX Runtime's `run` is thread-safe and releases the GIL).
"""

from pathlib import Path

import numpy as np
import onnxruntime

# One intra-op thread per session: a worker's parallelism is its requests (and its workers), and
# these small graphs gain nothing from splitting one call across cores (bench/RESULTS.md).
INTRA_OP_THREADS = 1
# Images per run: ONNX Runtime's memory arena grows to the largest call's activations, so a batch of
# 256 at once raises a worker's peak RSS by ~50 MiB; 64 at a time, ~13 MiB, at the same speed.
MAX_IMAGES_PER_RUN = 64


def open_session(path: Path, threads: int = INTRA_OP_THREADS) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class DigitModel:
    """The CNN: (n, 28, 28) uint8 pixels in, class probabilities or digits out."""

    def __init__(self, path: Path, threads: int = INTRA_OP_THREADS) -> None:
        self.session = open_session(path, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.digits(np.zeros((1, 28, 28), dtype=np.uint8))  # the first run allocates: not in a request

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        pixels = np.asarray(pixels)
        if pixels.ndim == 2:
            pixels = pixels[None]
        # The model's input, as app.mnist.to_model_input makes it for Keras: [0, 1] floats, one channel.
        inputs = (pixels.astype(np.float32) / np.float32(255.0))[..., None]
        parts = [
            self.session.run(None, {self.input_name: inputs[start : start + MAX_IMAGES_PER_RUN]})[0]
            for start in range(0, len(inputs), MAX_IMAGES_PER_RUN)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def digits(self, pixels: np.ndarray) -> list[int]:
        return self.probabilities(pixels).argmax(axis=-1).tolist()


class PenguinModel:
    """The scaler and the KNN: measurements in, species out (labels as the pipeline was fitted)."""

    def __init__(self, path: Path) -> None:
        self.session = open_session(path)
        self.input_name = self.session.get_inputs()[0].name
        self.label_output = self.session.get_outputs()[0].name  # skl2onnx: label first, then probabilities
        self.predict(40.0, 190.0)

    def predict(self, bill_length_mm: float, flipper_length_mm: float) -> str:
        measurements = np.array([[bill_length_mm, flipper_length_mm]], dtype=np.float64)
        return str(self.session.run([self.label_output], {self.input_name: measurements})[0][0])
