"""One training job, as a trainer worker runs it (app/part3/trainer_worker.py: a process of its own,
with capped threads and a lower priority, so a crash or a SIGKILL ends it only and the API processes
keep serving the previous version). Generic over the registry (app/registry.py): a job names its
model, and the model's declaration says how it trains.

    retrain     from scratch on the model's base data set, plus the job's examples if any
    fine-tune   from the version that serves, on the job's examples (a model that cannot continue a
                version, e.g. nearest neighbours, retrains on its base data set plus the examples);
                on labelled feedback (the policy's, POST /train/feedback/): from the newest challenger
                if there is one, the feedback mixed with a replay of the model's base data set, and
                judged by the gate on the live holdout too (live_holdout.py)
    initial     the first start: trains every trainable model the store lacks, and exports a serving
                file for every version published before serving files existed

After each publication the oldest versions the gate rejected beyond WORKSHOP_REJECTED_KEPT are removed
(never the serving version or its parent). The job's progress (epoch k of n, loss, accuracy) is written
to its record after each epoch. The store's training lock is held from loading the base model to
publishing, so no other training on this machine (a notebook) fine-tunes the same base at the same time;
across trainers the queue's lock already makes it one training at a time.

    python -m app.part3.training_job --export-missing   # give every stored version its model.onnx
"""

import functools
import logging
import os
import sys
from typing import Any

import numpy as np

from app import promotion, registry
from app.modelkit import Examples, Model
from app.onnx_export import serving_metadata, write_serving_file
from app.part3 import live_holdout
from app.part3.feedback_backends import open_feedback
from app.part3.feedback_records import FeedbackStore
from app.part3.job_records import JobRecords
from app.part3.job_status import Job
from app.part3.settings import Settings
from app.store import ModelStore, in_shadow

log = logging.getLogger("app.part3.training_job")
NICENESS = 10  # below the serving worker's priority: a prediction never waits for a training step


class TrainingRefused(RuntimeError):
    """The job cannot run as asked (e.g. nothing to fine-tune yet)."""


def limit_threads(threads: int) -> None:
    """Cap the threads the training libraries use (before any of them is imported)."""
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ.setdefault(variable, str(threads))
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")


def export_missing_serving_files(settings: Settings) -> dict[str, str]:
    """Export model.onnx for every version that has none (stores made before serving files), each
    checked for parity like a new version. Returns the versions that failed, with why; the rest are
    exported (a failed one stays unservable, and workers keep serving the newest that has one)."""
    failed = {}
    for model in registry.models().values():
        store = settings.store(model.name)
        if not model.trainable or all(version.serving_file is not None for version in store.all_versions()):
            continue
        with store.training_lock():
            for version in store.all_versions():
                if version.serving_file is not None:
                    continue
                try:
                    trained = store.load(version.number, model.load)
                    save = functools.partial(write_serving_file, model, trained)
                    store.add_serving_file(version.number, save, serving_metadata(model))
                    log.info("exported model.onnx for %s version %s", model.name, version.number)
                except Exception as error:  # one old version that cannot be exported must not stop the rest
                    log.exception("could not export model.onnx for %s version %s", model.name, version.number)
                    failed[f"{model.name} {version.number}"] = f"{type(error).__name__}: {error}"
    return failed


def needs_training(store: ModelStore, model: Model) -> bool:
    return model.trainable and store.latest() is None


def replayed(model: Model, feedback: Examples, share: float, seed: int) -> Examples:
    """The feedback mixed with a replay sample of the data the serving version learned from
    (`Model.training_data()`), the sample `share` of the mix, so a fine-tune learns the new traffic
    without forgetting the old."""
    if share <= 0:
        return feedback
    base = model.training_data()
    count = min(len(base), round(len(feedback) * share / (1 - share)))
    chosen = np.random.default_rng(seed).choice(len(base), count, replace=False)
    return feedback + Examples(base.inputs[chosen], base.labels[chosen], f"a replay of {count} from {base.source}")


def newest_challenger(store: ModelStore, active: int) -> int | None:
    """The newest challenger still in shadow published after the serving version: a fine-tune on
    feedback continues from it rather than from the serving version, so what it learned is not thrown
    away (a challenger its labels dropped is not continued)."""
    return next((n for n in reversed(store.versions()) if n > active and in_shadow(store.get(n).metadata)), None)


def live_holdout_for(
    job: Job, settings: Settings, store: ModelStore, model: Model, parent: int | None
) -> promotion.LiveHoldout | None:
    """The gate's live holdout for a job on feedback: every labelled row after the newest any of the
    job, its base and the serving version trained on, less the labels the audit flags against the
    serving version (answering through its serving file). None when nothing serves yet."""
    active = store.active()
    if active is None:
        return None
    serving = store.get(active).metadata
    bases = [serving] + ([store.get(parent).metadata] if parent is not None else [])
    after = max(b for b in [job.feedback_boundary, *map(live_holdout.trained_through, bases)] if b is not None)
    feedback: FeedbackStore = open_feedback(settings)
    try:
        rows, verdict = live_holdout.audited(
            feedback,
            model,
            serving,
            lambda inputs: promotion.stored_probabilities(store, model, active, inputs),
            settings,
        )
    finally:
        feedback.close()
    return live_holdout.live_part(rows, verdict, after)


def feedback_entry(job: Job, store: ModelStore, continued: int | None) -> dict[str, Any]:
    """What a version trained on feedback records: the job's boundary, the newest feedback row it or a
    version it continues trained on (no later live holdout may hold it), the labels left out."""
    through = [job.feedback_boundary]
    if continued is not None:
        through.append(live_holdout.trained_through(store.get(continued).metadata))
    return {
        "boundary": job.feedback_boundary,
        "trained_through": max(row for row in through if row is not None),
        "n_flagged": job.n_flagged,
    }


def prune_rejected(store: ModelStore, keep: int) -> list[int]:
    """Remove the oldest refused versions (the gate rejected them, or shadow scoring dropped them)
    beyond the newest `keep`; never the serving version, its parent or a challenger still in shadow.
    Returns the numbers removed."""
    active = store.active()
    protected = {active, store.get(active).metadata.get("parent") if active is not None else None}
    rejected = [
        version.number
        for version in store.all_versions()
        if not promotion.is_promoted(version.metadata)
        and not in_shadow(version.metadata)
        and version.number not in protected
    ]
    removed = rejected[: max(0, len(rejected) - keep)]
    for number in removed:
        store.remove(number)
        log.info(
            "removed %s version %s: it was refused and %d newer refused versions are kept",
            store.name,
            number,
            keep,
        )
    return removed


def train_model(job: Job, jobs: JobRecords, settings: Settings, model: Model, kind: str, asked: dict[str, Any]) -> int:
    """Train, evaluate and publish one model through the promotion gate; returns the new version's number.
    A job on labelled feedback (`feedback_boundary` set) fine-tunes from the newest challenger if there is
    one, mixes in a replay of the serving version's data, and is judged on the live holdout too."""
    parameters = settings.training_parameters(model, asked)
    store = settings.store(model.name)
    uploads = jobs.examples(job.id)
    extra = None if uploads is None else Examples(*uploads, source="upload")
    on_feedback = job.feedback_boundary is not None

    def report(step: int, steps: int, logs: dict[str, float]) -> None:
        jobs.update(
            job.id,
            epoch=step,
            epochs=steps,
            loss=logs.get("loss"),
            accuracy=logs.get("accuracy"),
            val_loss=logs.get("val_loss"),
            val_accuracy=logs.get("val_accuracy"),
        )

    with store.training_lock():
        # Every publisher holds this lock, so nothing is being published now: what a killed one left
        # (files uploaded without their manifest, a temporary folder) is dead.
        if removed := store.clean_temporary(older_than=0):
            log.warning("removed what an interrupted publication of %s left: %s", model.name, removed)
        parent, base = None, None
        if kind == "fine-tune":
            parent = store.active()
            if parent is None:
                raise TrainingRefused(
                    f"there is no {model.name} model to fine-tune yet; train one from scratch first (a retrain)"
                )
            if extra is None:
                raise TrainingRefused("the job's uploaded examples are missing")
            if model.fine_tunes:
                parent = (on_feedback and newest_challenger(store, parent)) or parent
                base = store.load(parent, model.load)
                examples = replayed(model, extra, settings.replay_share, seed=job.sequence) if on_feedback else extra
            else:
                examples = model.training_data() + extra
        elif kind == "initial" and (existing := store.latest()) is not None:
            log.info("%s version %s appeared meanwhile: no first training needed", model.name, existing)
            return existing
        else:
            examples = model.training_data() if extra is None else model.training_data() + extra
        jobs.update(job.id, parent=parent)
        trained = model.train(examples, parameters, base=base, progress=report)
        continued = parent if base is not None else None  # the version whose training the new one carries on
        live = live_holdout_for(job, settings, store, model, continued) if on_feedback else None
        version = promotion.publish(
            model,
            trained,
            {
                "parent": parent,
                "parameters": {**parameters.model_dump(), "kind": job.kind},
                "data": {
                    "source": examples.source,
                    "n_examples": len(examples),
                    "n_uploaded": job.n_images,
                    "job": job.id,
                },
                **({"feedback": feedback_entry(job, store, continued)} if on_feedback else {}),
            },
            store=store,
            floor=settings.floor_for(model),
            margin=settings.margin_for(model),
            live=live,
            rules=promotion.LiveRules(
                settings.gate_live_min_labels, settings.gate_live_alpha, settings.gate_forgetting, settings.shadow
            ),
            traffic_moved="; ".join(job.retrain_reasons) if job.retrain_reasons else None,
        )
        prune_rejected(store, settings.rejected_kept)
    gate = version.metadata["gate"]
    metrics = version.metadata["metrics"]
    jobs.update(
        job.id,
        metrics={"accuracy": metrics["accuracy"], "n_test": metrics["n_test"]},
        promoted=gate["decision"] == promotion.PROMOTED,
        gate_decision=gate["decision"],
        gate_reason=gate["reason"],
        feedback_through=live.through if live is not None else None,
    )
    return version.number


def first_models(job: Job, jobs: JobRecords, settings: Settings) -> int | None:
    """The "initial" job: every trainable model without a version is trained, then serving files are
    exported for older versions (failures logged; those versions stay unservable)."""
    version = None
    trained: dict[str, int] = {}
    for model in registry.models().values():
        if needs_training(settings.store(model.name), model):
            asked = job.parameters.get(model.name, {})  # each model's, as the service validated them
            version = trained[model.name] = train_model(job, jobs, settings, model, "initial", asked)
    export_missing_serving_files(settings)
    if trained:
        jobs.update(job.id, versions=trained)
    return version


def train(job: Job, jobs: JobRecords, settings: Settings) -> int | None:
    """Run one job; returns the version it published (the last one, for the first start's job)."""
    if job.kind == "initial":
        return first_models(job, jobs, settings)
    model = registry.get(job.model or "")
    if not model.trainable:
        raise TrainingRefused(f"{model.name} is serve-only: it is trained elsewhere and published as an ONNX file")
    return train_model(job, jobs, settings, model, job.kind, job.parameters)


def export_missing_main() -> int:
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    failed = export_missing_serving_files(settings)
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
