"""The MNIST digit model: the workshop's CNN, declared for the service.

    cnn.py      the Keras CNN: build, train or fine-tune, predict, save, load (the notebook and Part 2 use it)
    signals.py  what drift looks at in a digit image (ink, offset)
    styles.py   digits drawn unlike MNIST's, to show drift

A request is one 28x28 greyscale image as uint8 pixels; the serving file takes [0, 1] floats with one
channel, as the CNN does. The workshop's own routes (`POST /predict/` with a PNG, `/train/`) decode
uploads into that tensor (app/images.py) and call the generic service.
"""

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from app.modelkit import Examples, Holdout, Model, Parameters, Progress, Tensor
from app.models.mnist import cnn, signals
from app.models.mnist.cnn import (  # the CNN's functions, as `mnist.train(...)` for the notebook and Part 2
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    MODEL_FILE,
    MODEL_NAME,
    NUM_CLASSES,
    TrainingResult,
    build_model,
    default_epochs,
    evaluate,
    fit,
    library_versions,
    limit_threads,
    load,
    one_hot,
    predict_classes,
    predict_digits,
    predict_probabilities,
    save,
    shuffled,
    to_model_input,
    train,
    warm_up,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_EPOCHS",
    "MODEL",
    "MODEL_FILE",
    "MODEL_NAME",
    "NUM_CLASSES",
    "TrainingResult",
    "build_model",
    "default_epochs",
    "evaluate",
    "fit",
    "library_versions",
    "limit_threads",
    "load",
    "one_hot",
    "predict_classes",
    "predict_digits",
    "predict_probabilities",
    "save",
    "shuffled",
    "to_model_input",
    "train",
    "warm_up",
]


class DigitParameters(Parameters):
    epochs: int = Field(default_factory=cnn.default_epochs, ge=1, le=100, description="passes over the data")
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, ge=1, le=4096)


class Digits(Model):
    name = MODEL_NAME
    classes = tuple(str(digit) for digit in range(NUM_CLASSES))
    input = Tensor("image", "UINT8", (-1, 28, 28))
    description = "the handwritten digit (0-9) in a 28x28 greyscale image"
    parameters = DigitParameters
    fine_tunes = True
    training_file = MODEL_FILE
    training_imports = ("keras",)

    def onnx_feed(self, inputs: np.ndarray) -> np.ndarray:
        return cnn.to_model_input(inputs)

    def drift_signals(self, inputs: np.ndarray, probabilities: np.ndarray) -> dict[str, np.ndarray]:
        return {"ink": signals.ink(inputs), "offset": signals.offset(inputs)}

    def training_data(self) -> Examples:
        from app.datasets import load_mnist

        data = load_mnist()
        return Examples(data.x_train, data.y_train, data.source)

    def holdout(self) -> Holdout:
        """MNIST's test split from the source in use (Keras' 10,000 or the bundled 500 images)."""
        from app.datasets import load_mnist

        data = load_mnist()
        return Holdout.of(Examples(data.x_test, data.y_test), f"{data.source} MNIST test split")

    def train(self, examples: Examples, parameters: Parameters, base: Any = None, progress: Progress | None = None):
        assert isinstance(parameters, DigitParameters)
        epochs = parameters.epochs

        def report(epoch: int, logs: dict[str, float]) -> None:
            if progress is not None:
                progress(epoch + 1, epochs, logs)

        return cnn.train(
            examples.inputs,
            examples.labels,
            base=base,
            epochs=epochs,
            batch_size=parameters.batch_size,
            on_epoch_end=report,
        )

    def probabilities(self, model: Any, inputs: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [cnn.predict_probabilities(model, inputs[i : i + 512]) for i in range(0, len(inputs), 512)]
        )

    def save(self, model: Any, folder: Path) -> str:
        return cnn.save(model, folder)

    def load(self, path: Path) -> Any:
        return cnn.load(path)

    def export_onnx(self, model: Any, path: Path) -> None:
        model(cnn.to_model_input(np.zeros((1, 28, 28), np.uint8)), training=False)  # Keras exports a called model
        model.export(str(path), format="onnx", verbose=False)

    def parity_inputs(self) -> np.ndarray:
        """The 1,000 MNIST images that ship with the project (data/train_img.zip, the learners' uploads)."""
        from app.images import decode_digits, unzip_images
        from app.paths import DATA_DIR

        entries = unzip_images((DATA_DIR / "train_img.zip").read_bytes(), "train_img.zip")
        return decode_digits([content for _, content in entries], [name for name, _ in entries])

    def library_versions(self) -> dict[str, str]:
        return cnn.library_versions()


MODEL = Digits()
