"""One training job, as a trainer worker runs it (app/part3/trainer_worker.py: a process of its own,
with capped TensorFlow threads and a lower priority, so a crash or a SIGKILL ends it only and the
API processes keep serving the previous version).

The job's progress (epoch k of n, loss, accuracy) is written to its record after each epoch. The
store's training lock is held from loading the base model to publishing, so no other training
on this machine (a notebook) fine-tunes the same base at the same time; across trainers the
queue's lock already makes it one training at a time.
"""

import logging

import numpy as np

from app import mnist, promotion
from app.datasets import load_mnist
from app.part3.job_records import JobRecords
from app.part3.jobs import Job
from app.part3.settings import Settings
from app.store import ModelStore

log = logging.getLogger("app.part3.trainer")
NICENESS = 10  # below the serving worker's priority: a prediction never waits for a training step


class TrainingRefused(RuntimeError):
    """The job cannot run as asked (e.g. nothing to fine-tune yet)."""


def train(job: Job, jobs: JobRecords, settings: Settings) -> int:
    """Train, evaluate and publish through the promotion gate; returns the new version's number."""
    mnist.limit_threads(settings.training_threads)  # before Keras builds or loads anything
    store = ModelStore(mnist.MODEL_NAME, settings.models_dir)
    uploads = jobs.load_data(job)
    data = load_mnist()  # the base data set for a retrain, and the held-out test images

    def report(epoch: int, logs: dict[str, float]) -> None:
        jobs.update(
            job.id,
            epoch=epoch + 1,
            loss=logs.get("loss"),
            accuracy=logs.get("accuracy"),
            val_loss=logs.get("val_loss"),
            val_accuracy=logs.get("val_accuracy"),
        )

    with store.training_lock():
        if job.kind == "fine-tune":
            parent = store.active()
            if parent is None:
                raise TrainingRefused("there is no model to fine-tune yet; POST /retrain/ to train one from scratch")
            if uploads is None:
                raise TrainingRefused("the job's uploaded images are missing")
            base = store.load(parent, mnist.load)
            images, labels = uploads
            source = "upload"
        else:
            if job.kind == "initial" and (existing := store.latest()) is not None:
                log.info("version %s appeared meanwhile: no first training needed", existing)
                return existing
            parent, base = None, None
            images, labels, source = data.x_train, data.y_train, data.source
            if uploads is not None:  # a retrain learns the base data set and the uploads together
                images = np.concatenate([images, uploads[0]])
                labels = np.concatenate([labels, uploads[1]])
                source = f"{data.source}+upload"
        jobs.update(job.id, parent=parent)
        result = mnist.train(images, labels, base=base, parent=parent, epochs=job.epochs, on_epoch_end=report)
        metrics = mnist.evaluate(result.model, data.x_test, data.y_test)
        version = mnist.publish(
            result,
            metrics,
            parameters={"epochs": job.epochs, "batch_size": mnist.DEFAULT_BATCH_SIZE, "kind": job.kind},
            data={"source": source, "n_images": len(labels), "n_uploaded": job.n_images, "job": job.id},
            store=store,
            floor=settings.gate_floor_mnist,
            margin=settings.gate_margin,
            holdout=promotion.mnist_holdout(data),
        )
    gate = version.metadata["gate"]
    jobs.update(
        job.id,
        metrics={"accuracy": metrics["accuracy"], "n_test": metrics["n_test"]},
        promoted=gate["decision"] == "promoted",
        gate_reason=gate["reason"],
    )
    return version.number
