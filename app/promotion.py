"""The promotion gate: whether a newly trained version may serve.

Every publication (a trainer job, the first start, a notebook) evaluates its candidate on one frozen
holdout set per model, the same examples for every version and identified by the sha256 of their
bytes, then decides (after TFX's Evaluator and MLflow's `validate_evaluation_results`):

- smoke:  the saved file, loaded again, must answer like the trained model on the whole holdout
          (and the serving file must give the training library's answers, or nothing is published);
- floor:  its accuracy must be at least an absolute floor;
- margin: when a version serves, the candidate must be within a margin of that version's accuracy
          on the same holdout (the serving version is evaluated again if its figures came from
          another holdout).

A candidate that fails is stored but not served (the store's `active` skips it); the decision, its
figures and the rule that refused it are written into the version's metadata under "gate". Call
`publish` under the store's training lock, so the version it compares with cannot change meanwhile.
"""

import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

PROMOTED, REJECTED = "promoted", "rejected"
PENGUIN_HOLDOUT_SHARE = 0.25  # the penguins notebook's split, frozen here: every version is measured on it
PENGUIN_HOLDOUT_SEED = 42


@dataclass(frozen=True)
class Holdout:
    inputs: Any  # MNIST: (n, 28, 28) uint8 images; penguins: a DataFrame of rows
    labels: np.ndarray
    sha256: str
    description: str

    def __len__(self) -> int:
        return len(self.labels)


def holdout_sha256(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def mnist_holdout(data=None) -> Holdout:
    """MNIST's test split from the source in use (Keras' 10,000 or the bundled 500 images)."""
    from app.datasets import load_mnist

    data = data or load_mnist()
    labels = np.asarray(data.y_test, dtype=np.int64)
    return Holdout(data.x_test, labels, holdout_sha256(data.x_test, labels), f"{data.source} MNIST test split")


def penguin_split(frame=None):
    """(training rows, holdout rows) of the penguins: stratified and seeded, so always the same rows."""
    from sklearn.model_selection import train_test_split

    from app.datasets import PENGUIN_TARGET, load_penguins

    frame = load_penguins() if frame is None else frame
    return train_test_split(
        frame, test_size=PENGUIN_HOLDOUT_SHARE, random_state=PENGUIN_HOLDOUT_SEED, stratify=frame[PENGUIN_TARGET]
    )


def penguin_holdout() -> Holdout:
    from app.datasets import PENGUIN_FEATURES, PENGUIN_TARGET

    _, rows = penguin_split()
    labels = rows[PENGUIN_TARGET].to_numpy(dtype=str)
    features = rows[list(PENGUIN_FEATURES)].to_numpy(dtype=np.float64)
    return Holdout(rows, labels, holdout_sha256(features, labels.astype("U")), "seeded 25% of data/penguins.csv")


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


def is_promoted(metadata: dict[str, Any]) -> bool:
    """Versions published before the gate existed (no "gate" entry) count as promoted."""
    return (metadata.get("gate") or {}).get("decision", PROMOTED) == PROMOTED


def thresholds(model_name: str) -> tuple[float, float]:
    """(floor, margin) for `model_name` from the service's settings (WORKSHOP_GATE_* variables)."""
    from app.part3.settings import Settings

    settings = Settings()
    return settings.gate_floor(model_name), settings.gate_margin


# -- evaluating and publishing ----------------------------------------------------------------------
@dataclass(frozen=True)
class ModelKind:
    """How the gate handles one model: its holdout, its answers, and the store's save/load hooks."""

    holdout: Callable[[], Holdout]
    answers: Callable[[Any, Any], np.ndarray]  # (model, holdout inputs) -> predicted labels
    save: Callable[[Any, Path], str]  # the training file alone (the smoke test's scratch copy)
    load: Callable[[Path], Any]
    # The published version: the training file and the serving file, checked against each other
    # (app/onnx_export.py raises ServingExportFailed, and nothing is published, when they disagree).
    save_for_serving: Callable[[Any, Path], str]
    serving_file: str


def accuracy_on(holdout: Holdout, answers: np.ndarray) -> float:
    return float(np.mean(np.asarray(answers) == holdout.labels))


def reload_answers(kind: ModelKind, model: Any, holdout: Holdout) -> np.ndarray:
    """The smoke test's half: save the training file to a scratch folder, load it again, answer (a
    fine-tune starts from that file). The serving file's own check, the same answers in ONNX Runtime,
    runs when the version is written (`ModelKind.save_for_serving`)."""
    with tempfile.TemporaryDirectory(prefix="gate-") as folder:
        reloaded = kind.load(Path(folder) / kind.save(model, Path(folder)))
        return kind.answers(reloaded, holdout.inputs)


def active_figures(store, kind: ModelKind, holdout: Holdout) -> tuple[int | None, float | None]:
    """(version, accuracy on `holdout`) of what the store serves now; evaluated again when its
    recorded accuracy came from another holdout (or was never recorded)."""
    number = store.active()
    if number is None:
        return None, None
    gate = store.get(number).metadata.get("gate") or {}
    if gate.get("holdout_sha256") == holdout.sha256 and gate.get("accuracy") is not None:
        return number, float(gate["accuracy"])
    return number, accuracy_on(holdout, kind.answers(store.load(number, kind.load), holdout.inputs))


def evaluate(store, kind: ModelKind, model: Any, floor: float, margin: float, holdout: Holdout | None = None) -> dict:
    """The gate's decision on `model` as the metadata's "gate" entry (nothing is written)."""
    holdout = holdout or kind.holdout()
    answers = kind.answers(model, holdout.inputs)
    active_version, active_accuracy = active_figures(store, kind, holdout)
    decision = decide(
        accuracy_on(holdout, answers),
        floor,
        margin,
        active_version,
        active_accuracy,
        smoke_problem(answers, reload_answers(kind, model, holdout)),
    )
    return {
        **asdict(decision),
        "holdout_sha256": holdout.sha256,
        "n_holdout": len(holdout),
        "holdout": holdout.description,
    }


def publish(
    store,
    kind: ModelKind,
    model: Any,
    metadata: dict[str, Any],
    floor: float | None = None,
    margin: float | None = None,
    holdout: Holdout | None = None,
):
    """Decide, then publish `model` with the decision in its metadata: a promoted version serves, a
    rejected one is stored only. `floor` and `margin` default to the settings' (`thresholds`).
    Hold `store.training_lock()` around the call."""
    if floor is None or margin is None:
        default_floor, default_margin = thresholds(store.name)
        floor = default_floor if floor is None else floor
        margin = default_margin if margin is None else margin
    gate = evaluate(store, kind, model, floor, margin, holdout)
    return store.publish(
        lambda folder: kind.save_for_serving(model, folder), {**metadata, "gate": gate}, kind.serving_file
    )
