"""One training job, as a trainer worker runs it (app/part3/trainer_worker.py: a process of its own,
with capped TensorFlow threads and a lower priority, so a crash or a SIGKILL ends it only and the
API processes keep serving the previous version).

The job's progress (epoch k of n, loss, accuracy) is written to its record after each epoch. The
store's training lock is held from loading the base model to publishing, so no other training
on this machine (a notebook) fine-tunes the same base at the same time; across trainers the
queue's lock already makes it one training at a time.

This module, run in a trainer, not a serving worker, also does what a first start needs
(`ensure_first_models`, run by the "initial" job): it trains the penguin model when the store has
none and exports a serving file for every version published before serving files existed.

    python -m app.part3.training_job --export-missing   # give every stored version its model.onnx
"""

import logging
import os
import sys

import numpy as np

from app import mnist, penguins, promotion
from app.datasets import load_mnist, load_penguins
from app.part3.job_records import JobRecords
from app.part3.job_status import Job
from app.part3.settings import Settings
from app.store import ModelStore

log = logging.getLogger("app.part3.training_job")
NICENESS = 10  # below the serving worker's priority: a prediction never waits for a training step


class TrainingRefused(RuntimeError):
    """The job cannot run as asked (e.g. nothing to fine-tune yet)."""


def ensure_penguin_model(store: ModelStore, settings: Settings) -> None:
    """Train the penguin model on the bundled data if the store has none (a fraction of a second)."""
    if store.latest() is not None:
        return
    with store.training_lock():
        if store.latest() is not None:  # another process trained it while we waited
            return
        # Fitted on the training rows only: the gate measures every version on the held-out rest.
        training_rows, holdout_rows = promotion.penguin_split(load_penguins())
        pipeline = penguins.train(training_rows)
        parameters = {"n_neighbors": 11, "n_train": len(training_rows)}
        version = penguins.publish(
            pipeline,
            penguins.evaluate(pipeline, holdout_rows),
            parameters,
            store=store,
            floor=settings.gate_floor_penguins,
            margin=settings.gate_margin,
        )
        log.info(
            "trained penguins version %s on the bundled data: %s", version.number, version.metadata["gate"]["reason"]
        )


# Per model: how to read its training file and write its serving file (app/onnx_export.py).
def _penguin_exporter(pipeline):
    from app.onnx_export import export_penguins, penguin_serving

    return (lambda folder: export_penguins(pipeline, folder)), penguin_serving(len(penguins.features_of(pipeline)))


def _mnist_exporter(model):
    from app.onnx_export import MNIST_SERVING, export_mnist

    return (lambda folder: export_mnist(model, folder)), MNIST_SERVING


EXPORTERS = {penguins.MODEL_NAME: (penguins.load, _penguin_exporter), mnist.MODEL_NAME: (mnist.load, _mnist_exporter)}


def export_missing_serving_files(models_dir) -> dict[str, str]:
    """Export model.onnx for every version that has none (stores made before serving files), each
    checked for parity like a new version. Returns the versions that failed, with why; the rest are
    exported (a failed one stays unservable, and workers keep serving the newest that has one)."""
    failed = {}
    for name, (load, exporter) in EXPORTERS.items():
        store = ModelStore(name, models_dir)
        with store.training_lock():
            for version in store.all_versions():
                if version.serving_file is not None:
                    continue
                try:
                    save, serving_metadata = exporter(store.load(version.number, load))
                    store.add_serving_file(version.number, save, serving_metadata)
                    log.info("exported model.onnx for %s version %s", name, version.number)
                except Exception as error:  # one old version that cannot be exported must not stop the rest
                    log.exception("could not export model.onnx for %s version %s", name, version.number)
                    failed[f"{name} {version.number}"] = f"{type(error).__name__}: {error}"
    return failed


def ensure_first_models(settings: Settings) -> dict[str, str]:
    """What a first start needs from the training side, bar the digit model's first training."""
    ensure_penguin_model(ModelStore(penguins.MODEL_NAME, settings.models_dir), settings)
    return export_missing_serving_files(settings.models_dir)


def train(job: Job, jobs: JobRecords, settings: Settings) -> int:
    """Train, evaluate and publish through the promotion gate; returns the new version's number."""
    mnist.limit_threads(settings.training_threads)  # before Keras builds or loads anything
    if job.kind == "initial":
        ensure_first_models(settings)  # failures are logged; those versions stay unservable
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


def export_missing_main() -> int:
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    failed = export_missing_serving_files(settings.models_dir)
    for version, why in failed.items():
        print(f"{version}: {why}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    if sys.argv[1:] != ["--export-missing"]:
        raise SystemExit("usage: python -m app.part3.training_job --export-missing (jobs run in `workshop trainer`)")
    code = export_missing_main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the result is written; skip TensorFlow's slow interpreter teardown
