"""The promotion gate: whether a newly trained version may serve, and the one way a version is published.

Every publication (a trainer job, a first start, a notebook, an ONNX file trained elsewhere) evaluates
its candidate on the model's frozen holdout (`Model.holdout`: the same examples for every version,
identified by the sha256 of their bytes) and, for a job on labelled feedback, on the live holdout (the
newest labelled feedback, which that job never trained on), then decides (after TFX's Evaluator and
MLflow's `validate_evaluation_results`). The rules, in order; the first that applies decides:

1. smoke:      the saved file, loaded again, must answer like the trained model on the whole holdout
               (and the serving file must give the training library's answers, or nothing is published);
2. floor:      frozen-holdout accuracy at least an absolute floor (the first version of a model needs
               only this);
3. live, when the live holdout has at least `LiveRules.min_labels` labels: McNemar's exact test on the
   answers the candidate and the serving version (its serving file, in ONNX Runtime) give to the same
   labelled requests (app/paired_test.py):
   - significantly worse than the serving version: rejected ("live");
   - more than the forgetting tolerance below the serving version's frozen accuracy: rejected
     ("forgetting": better on the new traffic is no excuse for forgetting the old);
   - significantly better: promoted ("live");
   - neither: a challenger, put in shadow until live labels decide (shadow scoring on), else rule 4;
4. margin:     frozen accuracy within a margin of the serving version's (the serving version is
               evaluated again, through its serving file, if its figures came from another holdout).
               A candidate this margin refuses but the forgetting tolerance accepts, queued because the
               traffic moved, becomes a challenger (shadow scoring on): the holdout cannot see what it
               learned, and the labels that come back can.

A rejected candidate or a challenger is stored but not served (the store's `active` skips both); the
decision, both sets' figures and the rule that decided, in words, are written into the version's
metadata under "gate". The thresholds are arguments (the model declares defaults; the service's
settings override them). Call `publish` under the store's training lock, so the version it compares
with cannot change meanwhile.
"""

import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app import drift, label_audit, paired_test
from app.modelkit import SERVING_FILE, Examples, Holdout, Model, Trained
from app.onnx_export import ServingExportFailed, serving_metadata, write_serving_file
from app.onnx_serving import ServingModel
from app.paired_test import PairedTest
from app.paths import setting
from app.store import CHALLENGER, PROMOTED, REJECTED, ModelStore, Version, is_challenger, is_promoted

__all__ = [
    "CHALLENGER",
    "PROMOTED",
    "REJECTED",
    "Decision",
    "LiveHoldout",
    "LiveRules",
    "decide",
    "decision_of",
    "is_challenger",
    "is_promoted",
    "publish",
    "publish_serving_file",
]


def decision_of(metadata: dict[str, Any]) -> str:
    """PROMOTED, REJECTED or CHALLENGER (versions from before the gate count as promoted)."""
    return (metadata.get("gate") or {}).get("decision", PROMOTED)


@dataclass(frozen=True)
class LiveRules:
    """How the gate judges a candidate on the live holdout (Part 3's settings give them)."""

    min_labels: int = 50  # fewer labels: the live holdout cannot judge, the frozen rules decide
    alpha: float = 0.05  # McNemar's one-sided significance level, each way
    forgetting: float = 0.05  # how far below the serving version's frozen accuracy a live winner may be
    shadow: bool = True  # whether "neither better nor worse" makes a challenger (shadow scoring)


@dataclass(frozen=True)
class LiveHoldout(Examples):
    """The newest labelled feedback, never trained on: the rows after `after`, the newest feedback row
    the candidate's job trained on, through `through`; `n_flagged` rows were left out as contradicting
    what the serving version knows (app/label_audit.py)."""

    after: int | None = None
    through: int | None = None
    n_flagged: int = 0


# -- the rules, as pure functions -------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    decision: str  # PROMOTED, REJECTED or CHALLENGER
    rule: str  # the rule that decided: "smoke", "floor", "live", "forgetting" or "margin"
    reason: str  # in plain words, with both sets' figures, for the job record and /models/
    accuracy: float  # on the frozen holdout
    active_version: int | None
    active_accuracy: float | None  # the serving version's, on the same frozen holdout
    floor: float
    margin: float
    forgetting: float | None = None
    live: dict[str, Any] | None = None  # the paired test on the live holdout (None: no live holdout)

    @property
    def promoted(self) -> bool:
        return self.decision == PROMOTED


def live_words(test: PairedTest, active_version: int | None, rules: LiveRules) -> str:
    return (
        f"live holdout of {test.n} labels: {test.first_accuracy:.4f} against {test.second_accuracy:.4f}, "
        f"{test.wins} answers right only by the candidate and {test.losses} only by version {active_version} "
        f"(McNemar: p = {test.p_better:.2g} that it is better by chance, {test.p_worse:.2g} worse; "
        f"significant below {rules.alpha:g})"
    )


def decide(
    accuracy: float,
    floor: float,
    margin: float,
    active_version: int | None = None,
    active_accuracy: float | None = None,
    smoke_problem: str | None = None,
    live: PairedTest | None = None,
    rules: LiveRules | None = None,
    traffic_moved: str | None = None,
) -> Decision:
    """The rules of the module docstring, in order. `live` is the candidate's paired test against the
    serving version on the live holdout (the candidate first); `traffic_moved` says why the job was
    queued when the traffic moved (the retrain policy's reasons), None otherwise."""
    rules = rules or LiveRules()
    figures = None if live is None else {**asdict(live), "min_labels": rules.min_labels, "alpha": rules.alpha}

    def decided(decision: str, rule: str, reason: str) -> Decision:
        return Decision(
            decision, rule, reason, accuracy, active_version, active_accuracy, floor, margin, rules.forgetting, figures
        )

    if smoke_problem:
        return decided(REJECTED, "smoke", smoke_problem)
    if accuracy < floor:
        return decided(REJECTED, "floor", f"holdout accuracy {accuracy:.4f} is below the floor {floor:.4f}")
    if active_version is None or active_accuracy is None:
        reason = f"holdout accuracy {accuracy:.4f} reaches the floor {floor:.4f}; no version served before"
        return decided(PROMOTED, "floor", reason)
    frozen = f"frozen holdout {accuracy:.4f} against version {active_version}'s {active_accuracy:.4f}"
    forgets = accuracy < active_accuracy - rules.forgetting
    if live is not None and live.n >= rules.min_labels:
        words = live_words(live, active_version, rules)
        if live.worse(rules.alpha):
            return decided(REJECTED, "live", f"significantly worse than version {active_version} on the {words}")
        if forgets:
            return decided(
                REJECTED,
                "forgetting",
                f"holdout accuracy {accuracy:.4f} is more than the forgetting tolerance {rules.forgetting:.4f} "
                f"below {active_accuracy:.4f}, the accuracy of version {active_version} that serves now ({words})",
            )
        if live.better(rules.alpha):
            return decided(
                PROMOTED,
                "live",
                f"significantly better than version {active_version} on the {words}; {frozen}, within the "
                f"forgetting tolerance {rules.forgetting:.4f}",
            )
        if rules.shadow:
            return decided(
                CHALLENGER,
                "live",
                f"neither significantly better nor worse than version {active_version} on the {words}; {frozen}: "
                "a challenger in shadow until the labels of live traffic decide",
            )
        live_note = f"; the {words} decides nothing"
    elif live is not None:
        live_note = f"; live holdout: {live.n} labels, fewer than the {rules.min_labels} it needs to judge"
    else:
        live_note = ""
    if accuracy < active_accuracy - margin:
        refused = (
            f"holdout accuracy {accuracy:.4f} is more than the margin {margin:.4f} below "
            f"{active_accuracy:.4f}, the accuracy of version {active_version} that serves now{live_note}"
        )
        if rules.shadow and traffic_moved and not forgets:
            return decided(
                CHALLENGER,
                "margin",
                f"{refused}; but it is within the forgetting tolerance {rules.forgetting:.4f} and the traffic "
                f"moved ({traffic_moved}): a challenger in shadow until the labels of live traffic decide",
            )
        return decided(REJECTED, "margin", refused)
    reason = (
        f"holdout accuracy {accuracy:.4f} reaches the floor {floor:.4f} and is within the margin {margin:.4f} "
        f"of version {active_version}'s {active_accuracy:.4f}{live_note}"
    )
    return decided(PROMOTED, "margin", reason)


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


def stored_probabilities(store: ModelStore, model: Model, number: int, inputs: np.ndarray) -> np.ndarray:
    """A stored version's class probabilities for each row: through its serving file (sha256 checked),
    or its training file for a version published before serving files existed."""
    if not len(inputs):
        return np.zeros((0, len(model.classes)))
    if store.get(number).serving_file is None:
        return model.probabilities(store.load(number, model.load), inputs)
    return store.load_serving(number, lambda path: ServingModel(path, model)).probabilities(inputs)


def stored_answers(store: ModelStore, model: Model, number: int, inputs: np.ndarray) -> np.ndarray:
    """The class index a stored version answers for each row (see stored_probabilities)."""
    return stored_probabilities(store, model, number, inputs).argmax(axis=-1)


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


def gate_entry(decision: Decision, holdout: Holdout, live_holdout: LiveHoldout | None = None) -> dict[str, Any]:
    entry = asdict(decision)
    if entry["live"] is not None:
        entry["live"] = {**entry["live"], **live_entry(live_holdout)}
    return {
        **entry,
        "holdout_sha256": holdout.sha256,
        "n_holdout": len(holdout),
        "holdout": holdout.source,
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
def live_test(
    store: ModelStore, model: Model, trained_model: Any, live: LiveHoldout | None, active_version: int | None
) -> PairedTest | None:
    """The candidate (the trained model) against the serving version (its serving file, in ONNX Runtime)
    on the live holdout; None without a live holdout or a serving version."""
    if live is None or active_version is None:
        return None
    if not len(live):
        return paired_test.compare(live.labels, live.labels, live.labels)  # no labels: n = 0
    candidate = model.probabilities(trained_model, live.inputs).argmax(axis=-1)
    return paired_test.compare(live.labels, candidate, stored_answers(store, model, active_version, live.inputs))


def live_entry(live: LiveHoldout | None) -> dict[str, Any]:
    """Where the live holdout came from, beside the paired test's figures (gate["live"])."""
    if live is None:
        return {}
    return {"source": live.source, "after": live.after, "through": live.through, "n_flagged": live.n_flagged}


def publish(
    model: Model,
    trained: Trained,
    metadata: dict[str, Any] | None = None,
    store: ModelStore | None = None,
    floor: float | None = None,
    margin: float | None = None,
    holdout: Holdout | None = None,
    live: LiveHoldout | None = None,
    rules: LiveRules | None = None,
    traffic_moved: str | None = None,
) -> Version:
    """Judge a trained model, then publish it with the decision in its metadata, its training file and
    its serving file (checked against each other): a promoted version serves, a rejected one or a
    challenger is stored only. `floor` and `margin` default as `thresholds` says; `holdout` to
    `model.holdout()`; `live` (a job on feedback: the rows it never trained on), `rules` and
    `traffic_moved` as `decide` says. Raises ServingExportFailed (nothing published) when the serving
    file cannot be made or disagrees. Hold `store.training_lock()` around the call."""
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
        live_test(store, model, trained.model, live, active_version),
        rules,
        traffic_moved,
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
        "label_check": label_audit.calibration(probabilities, holdout.labels),
        "gate": gate_entry(decision, holdout, live_holdout=live),
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
        "label_check": label_audit.calibration(probabilities, holdout.labels),
        "gate": gate_entry(decision, holdout),
        "trained_elsewhere": True,
        **serving_metadata(model),
    }
    return store.publish(save, written, SERVING_FILE)
