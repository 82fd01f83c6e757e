"""Training for the Part 2 services: a count that stays right across threads, and train -> publish.

`train_next_version` is exercise 4's lesson, written once for the services: it holds the store's
training lock from choosing the base model to publishing the result, so two trainings requested
together run one after the other and the second fine-tunes the first's result instead of both
fine-tuning the same base (and one of them being lost).
"""

import threading
from typing import Any

import numpy as np

from app import promotion
from app.datasets import load_mnist
from app.models import mnist
from app.store import CorruptModel, ModelStore, Version


class TrainingCounter:
    """How many trainings are under way: `with counter:` around each one, `counter.count` to read.

    The workshop's `num_train += 1` on a global is a read, an add and a write, which two threads can
    interleave and lose a count; a lock makes each change whole. The `with` block also takes the count
    back down when a training fails, where the workshop's would stay up for good.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    @property
    def count(self) -> int:
        return self._count

    def __enter__(self) -> "TrainingCounter":
        with self._lock:
            self._count += 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._count -= 1


def epoch_printer(epochs: int):
    """An `on_epoch_end` for mnist.train that prints one line per epoch: under `fastapi dev` the
    console shows the model training, as the workshop promises (Keras itself is kept quiet)."""

    def show(epoch: int, logs: dict[str, float]) -> None:
        print(f"training: epoch {epoch + 1}/{epochs}, accuracy {logs.get('accuracy', float('nan')):.3f}", flush=True)

    return show


def load_base(store: ModelStore) -> tuple[int | None, Any]:
    """The version the store serves and a fresh copy of its model to fine-tune, or (None, None).

    A copy loaded from disk: the model that answers predictions is never changed by a training."""
    parent = store.active()
    if parent is None:
        return None, None
    try:
        return parent, store.load(parent, mnist.load)
    except CorruptModel:  # never fine-tune a tampered file: the newest version that is intact
        return store.load_newest_loadable(mnist.load, below=parent)


def train_and_publish(
    store: ModelStore,
    images: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    base: Any = None,
    parent: int | None = None,
    epochs: int | None = None,
) -> Version:
    """Fine-tune `base` (or train a new model) and publish the result as the store's next version.

    Without images it trains on MNIST."""
    if images is None or labels is None:
        mnist_data = load_mnist()
        images, labels = mnist_data.x_train, mnist_data.y_train
        data = {"source": mnist_data.source, "size": int(len(labels))}
    else:
        data = {"source": "upload", "size": int(len(labels))}
    epochs = epochs or mnist.default_epochs()
    result = mnist.train(images, labels, base=base, parent=parent, epochs=epochs, on_epoch_end=epoch_printer(epochs))
    return publish_trained(store, result, data, epochs, fine_tuned=base is not None)


def publish_trained(
    store: ModelStore, result: mnist.TrainingResult, data: dict[str, Any], epochs: int, fine_tuned: bool
) -> Version:
    """Publish a trained model as the store's next version, through the promotion gate, with how it was
    trained. Every version is evaluated on the same held-out test images (the gate's holdout), so the
    accuracies in the versions' metadata compare."""
    parameters = {"epochs": epochs, "batch_size": mnist.DEFAULT_BATCH_SIZE, "fine_tuned": fine_tuned}
    return promotion.publish(
        mnist.MODEL, result, {"parent": result.parent, "parameters": parameters, "data": data}, store
    )


def train_next_version(
    store: ModelStore,
    images: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    from_scratch: bool = False,
) -> Version:
    """Train the store's next version, one training at a time across threads and processes."""
    with store.training_lock():
        parent, base = (None, None) if from_scratch else load_base(store)
        return train_and_publish(store, images, labels, base=base, parent=parent)
