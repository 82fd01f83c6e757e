"""The promotion gate: whether a newly trained version may serve, and the one way a version is published.

Every publication (a trainer job, a first start, a notebook, an ONNX file trained elsewhere) evaluates
its candidate on the model's frozen holdout (`Model.holdout`: the same examples for every version,
identified by the sha256 of their bytes), then decides (after TFX's Evaluator and MLflow's
`validate_evaluation_results`):

- smoke:  the saved file, loaded again, must answer like the trained model on the whole holdout
          (and the serving file must give the training library's answers, or nothing is published);
- floor:  its accuracy must be at least an absolute floor;
- margin: when a version serves, the candidate must be within a margin of that version's accuracy
          on the same holdout (the serving version is evaluated again, through its serving file, if
          its figures came from another holdout).

A candidate that fails is stored but not served (the store's `active` skips it); the decision, its
figures and the rule that refused it are written into the version's metadata under "gate". The
thresholds are arguments (the model declares defaults; the service's settings override them). Call
`publish` under the store's training lock, so the version it compares with cannot change meanwhile.
"""

import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app import drift
from app.modelkit import SERVING_FILE, Holdout, Model, Trained
from app.onnx_export import ServingExportFailed, serving_metadata, write_serving_file
from app.onnx_serving import ServingModel
from app.paths import setting
from app.store import CHALLENGER, PROMOTED, REJECTED, ModelStore, Version, is_challenger, is_promoted

__all__ = [
    "CHALLENGER",
    "PROMOTED",
    "REJECTED",
    "Decision",
    "decide",
    "is_challenger",
    "is_promoted",
    "publish",
    "publish_serving_file",
]


# -- the rules, as pure functions -------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    decision: str  # PROMOTED or REJECTED
    rule: str | None  # the rule that refused it: "smoke", "floor" or "margin"; None when promoted
    reason: str  # in plain words, for the job record and /models/
    accuracy: float
    active_version: int | None
    active_accuracy: float | None
    floor: float
    margin: float

    @property
    def promoted(self) -> bool:
        return self.decision == PROMOTED


def decide(
    accuracy: float,
    floor: float,
    margin: float,
    active_version: int | None = None,
    active_accuracy: float | None = None,
    smoke_problem: str | None = None,
) -> Decision:
    """Promote when the smoke test passed, accuracy >= floor and, if a version serves,
    accuracy >= its accuracy - margin. The first version of a model only needs the floor."""

    def refused(rule: str, reason: str) -> Decision:
        return Decision(REJECTED, rule, reason, accuracy, active_version, active_accuracy, floor, margin)

    if smoke_problem:
        return refused("smoke", smoke_problem)
    if accuracy < floor:
        return refused("floor", f"holdout accuracy {accuracy:.4f} is below the floor {floor:.4f}")
    if active_version is not None and active_accuracy is not None and accuracy < active_accuracy - margin:
        return refused(
            "margin",
            f"holdout accuracy {accuracy:.4f} is more than the margin {margin:.4f} below "
            f"{active_accuracy:.4f}, the accuracy of version {active_version} that serves now",
        )
    if active_version is None:
        reason = f"holdout accuracy {accuracy:.4f} reaches the floor {floor:.4f}; no version served before"
    else:
        reason = (
            f"holdout accuracy {accuracy:.4f} reaches the floor {floor:.4f} and is within the margin {margin:.4f} "
            f"of version {active_version}'s {active_accuracy:.4f}"
        )
    return Decision(PROMOTED, None, reason, accuracy, active_version, active_accuracy, floor, margin)


def smoke_problem(answers: np.ndarray, reloaded_answers: np.ndarray) -> str | None:
    """Why the reloaded file fails the smoke test, or None when it answers like the trained model."""
    differ = int(np.sum(np.asarray(answers) != np.asarray(reloaded_answers)))
    if differ:
        return f"the saved file, loaded again, answers differently on {differ} of {len(answers)} holdout examples"
    return None


# -- evaluating ---------------------------------------------------------------------------------------
def accuracy_on(holdout: Holdout, answers: np.ndarray) -> float:
    return float(np.mean(np.asarray(answers) == holdout.labels))


def metrics_of(model: Model, holdout: Holdout, answers: np.ndarray) -> dict[str, Any]:
    """Accuracy and confusion matrix (rows: the truth, columns: the answer) on the holdout."""
    size = len(model.classes)
    confusion = np.zeros((size, size), dtype=np.int64)
    np.add.at(confusion, (np.asarray(holdout.labels, dtype=np.int64), np.asarray(answers, dtype=np.int64)), 1)
    return {"accuracy": accuracy_on(holdout, answers), "confusion_matrix": confusion.tolist(), "n_test": len(holdout)}


def reload_answers(model: Model, trained_model: Any, holdout: Holdout) -> np.ndarray:
    """The smoke test's half: save the training file to a scratch folder, load it again, answer (a
    fine-tune starts from that file). The serving file's own check, the same answers in ONNX Runtime,
    runs when the version is written (app/onnx_export.py)."""
    with tempfile.TemporaryDirectory(prefix="gate-") as folder:
        reloaded = model.load(Path(folder) / model.save(trained_model, Path(folder)))
        return model.probabilities(reloaded, holdout.inputs).argmax(axis=-1)


def stored_answers(store: ModelStore, model: Model, number: int, inputs: np.ndarray) -> np.ndarray:
    """The class index a stored version answers for each row: through its serving file (sha256 checked),
    or its training file for a version published before serving files existed."""
    if store.get(number).serving_file is None:
        return model.probabilities(store.load(number, model.load), inputs).argmax(axis=-1)
    serving = store.load_serving(number, lambda path: ServingModel(path, model))
    return serving.probabilities(inputs).argmax(axis=-1)


def active_figures(store: ModelStore, model: Model, holdout: Holdout) -> tuple[int | None, float | None]:
    """(version, accuracy on `holdout`) of what the store serves now; evaluated again (`stored_answers`)
    when its recorded accuracy came from another holdout (or was never recorded)."""
    number = store.active()
    if number is None:
        return None, None
    gate = store.get(number).metadata.get("gate") or {}
    if gate.get("holdout_sha256") == holdout.sha256 and gate.get("accuracy") is not None:
        return number, float(gate["accuracy"])
    return number, accuracy_on(holdout, stored_answers(store, model, number, holdout.inputs))


def gate_entry(decision: Decision, holdout: Holdout, **extra: Any) -> dict[str, Any]:
    return {
        **asdict(decision),
        "holdout_sha256": holdout.sha256,
        "n_holdout": len(holdout),
        "holdout": holdout.source,
        **extra,
    }


def thresholds(model: Model, floor: float | None = None, margin: float | None = None) -> tuple[float, float]:
    """(floor, margin) for `model`: those given, else WORKSHOP_GATE_FLOOR__<NAME> and
    WORKSHOP_GATE_MARGIN__<NAME> (the names Part 3's settings read), else the model's declaration."""
    if floor is None:
        floor = float(setting(f"GATE_FLOOR__{model.name.upper()}") or model.gate_floor)
    if margin is None:
        margin = float(setting(f"GATE_MARGIN__{model.name.upper()}") or model.gate_margin)
    return floor, margin


# -- publishing ---------------------------------------------------------------------------------------
def publish(
    model: Model,
    trained: Trained,
    metadata: dict[str, Any] | None = None,
    store: ModelStore | None = None,
    floor: float | None = None,
    margin: float | None = None,
    holdout: Holdout | None = None,
) -> Version:
    """Judge a trained model, then publish it with the decision in its metadata, its training file and
    its serving file (checked against each other): a promoted version serves, a rejected one is stored
    only. `floor` and `margin` default as `thresholds` says; `holdout` to `model.holdout()`. Raises
    ServingExportFailed (nothing published) when the serving file cannot be made or disagrees. Hold
    `store.training_lock()` around the call."""
    store = store or ModelStore(model.name)
    holdout = holdout or model.holdout()
    floor, margin = thresholds(model, floor, margin)
    probabilities = model.probabilities(trained.model, holdout.inputs)
    answers = probabilities.argmax(axis=-1)
    active_version, active_accuracy = active_figures(store, model, holdout)
    decision = decide(
        accuracy_on(holdout, answers),
        floor,
        margin,
        active_version,
        active_accuracy,
        smoke_problem(answers, reload_answers(model, trained.model, holdout)),
    )

    def save(folder: Path) -> str:
        write_serving_file(model, trained.model, folder)
        return model.save(trained.model, folder)

    written = {
        "parent": None,  # a fine-tune's metadata names the version it started from
        "history": trained.history,
        **(metadata or {}),
        "classes": list(model.classes),
        "features": list(model.feature_names),
        "metrics": {**metrics_of(model, holdout, answers), **((metadata or {}).get("metrics") or {})},
        "libraries": model.library_versions(),
        "drift_reference": drift.reference(model, holdout.inputs, probabilities, holdout.source),
        "gate": gate_entry(decision, holdout),
        **serving_metadata(model),
    }
    return store.publish(save, written, SERVING_FILE)


def publish_serving_file(
    model: Model,
    onnx_file: Path,
    holdout: Holdout,
    metadata: dict[str, Any] | None = None,
    store: ModelStore | None = None,
    floor: float | None = None,
    margin: float | None = None,
) -> Version:
    """Publish an ONNX file trained elsewhere (a serve-only model) through the gate: it is judged on a
    labelled `holdout` against the floor and the serving version, as a trained model is. The smoke rule
    refuses a file ONNX Runtime cannot open or run on the holdout's rows."""
    store = store or ModelStore(model.name)
    floor, margin = thresholds(model, floor, margin)
    try:
        probabilities = ServingModel(Path(onnx_file), model).probabilities(holdout.inputs)
        if probabilities.shape != (len(holdout), len(model.classes)):
            raise ValueError(f"it answers shape {probabilities.shape}, not ({len(holdout)}, {len(model.classes)})")
    except Exception as error:
        raise ServingExportFailed(
            f"{model.name}: {onnx_file} does not run ({type(error).__name__}: {error})"
        ) from error
    answers = probabilities.argmax(axis=-1)
    active_version, active_accuracy = active_figures(store, model, holdout)
    decision = decide(accuracy_on(holdout, answers), floor, margin, active_version, active_accuracy)

    def save(folder: Path) -> str:
        shutil.copyfile(onnx_file, Path(folder) / SERVING_FILE)
        return SERVING_FILE

    written = {
        **(metadata or {}),
        "classes": list(model.classes),
        "features": list(model.feature_names),
        "metrics": metrics_of(model, holdout, answers),
        "drift_reference": drift.reference(model, holdout.inputs, probabilities, holdout.source),
        "gate": gate_entry(decision, holdout),
        "trained_elsewhere": True,
        **serving_metadata(model),
    }
    return store.publish(save, written, SERVING_FILE)
