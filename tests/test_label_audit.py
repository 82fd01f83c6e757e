"""app/label_audit.py: labels that contradict what a version knows for sure are flagged; labels on new
traffic never are (fast: a synthetic model, its answers given as probabilities)."""

import numpy as np
import pytest

from app import drift, label_audit
from app.modelkit import Model, Tensor

ALPHA, DRIFT_ALPHA = 0.001, 0.01


class Measured(Model):
    """One measurement per row, its drift signal; three classes."""

    name = "measured"
    classes = ("a", "b", "c")
    input = Tensor("x", "FP64", (-1, 1))
    feature_names = ("x",)


MODEL = Measured()
RNG = np.random.default_rng(0)


def answers(labels: np.ndarray, right: float, confidence: float = 0.97) -> np.ndarray:
    """Probabilities answering each label with `confidence`, wrong (the next class) on a `right` share."""
    wrong = RNG.random(len(labels)) >= right
    answered = np.where(wrong, (labels + 1) % 3, labels)
    probabilities = np.full((len(labels), 3), (1 - confidence) / 2)
    probabilities[np.arange(len(labels)), answered] = confidence
    return probabilities


def version_metadata() -> dict:
    """A version's drift reference and label check on a holdout where it is right 97% of the time."""
    inputs = RNG.normal(0, 1, (2000, 1))
    labels = RNG.integers(0, 3, 2000)
    probabilities = answers(labels, right=0.97)
    return {
        "version": 4,
        "drift_reference": drift.reference(MODEL, inputs, probabilities, "holdout"),
        "label_check": label_audit.calibration(probabilities, labels),
    }


METADATA = version_metadata()


def audit(inputs, labels, probabilities, metadata=METADATA):
    return label_audit.audit(MODEL, inputs, labels, probabilities, metadata, ALPHA, DRIFT_ALPHA)


def familiar_traffic(count=300):
    inputs = RNG.normal(0, 1, (count, 1))
    labels = RNG.integers(0, 3, count)
    return inputs, labels, answers(labels, right=0.97)


def test_the_calibration_is_the_median_confidence_and_the_errors_above_it():
    check = METADATA["label_check"]
    assert check["min_confidence"] == pytest.approx(0.97) and check["n"] == 2000
    assert 0 < check["errors"] < 0.06 * 2000


@pytest.mark.parametrize("relabel", [lambda labels: np.full_like(labels, 2), lambda labels: (labels + 1) % 3])
def test_a_relabelling_of_familiar_inputs_is_flagged(relabel):
    inputs, truth, probabilities = familiar_traffic()
    poisoned = relabel(truth)
    verdict = audit(inputs, poisoned, probabilities)
    assert verdict.status == "flagged", verdict.detail
    contradicting = probabilities.argmax(axis=1) != poisoned
    familiar = label_audit.familiar(MODEL, inputs, probabilities, METADATA["drift_reference"])
    assert familiar.mean() > 0.95  # the holdout's range leaves out a few rows in its tails
    assert (verdict.flagged == (familiar & contradicting)).all() and verdict.n_flagged > 0.6 * len(truth)
    assert verdict.p_value < ALPHA and verdict.n_sure == verdict.n_familiar == familiar.sum()
    assert f"version {METADATA['version']}" in verdict.detail and "kept out of training" in verdict.detail


def test_true_labels_of_familiar_inputs_are_consistent_even_where_the_model_errs():
    inputs, truth, probabilities = familiar_traffic()
    verdict = audit(inputs, truth, probabilities)
    assert verdict.status == "consistent" and verdict.n_flagged == 0, verdict.detail
    assert 0 < verdict.n_contradicting < 0.1 * len(truth)  # the model's own mistakes, labelled right


def test_labels_of_new_traffic_are_never_flagged_however_wrong_the_model_is():
    _, truth, _ = familiar_traffic()
    far = RNG.normal(8, 1, (300, 1))  # outside the holdout's range: unfamiliar, one by one
    verdict = audit(far, truth, answers(truth, right=0.0))  # the model confidently wrong on every one
    assert verdict.status == "not judged" and verdict.n_flagged == 0 and verdict.n_familiar == 0
    # Inside the holdout's range one by one, but drifting as a group: nothing is judged either.
    near = RNG.uniform(1.0, 2.0, (300, 1))
    verdict = audit(near, truth, answers(truth, right=0.0))
    assert verdict.status == "not judged" and verdict.n_flagged == 0 and "drift" in verdict.detail


def test_poisoned_familiar_labels_are_flagged_beside_new_traffic_and_only_they():
    inputs, truth, probabilities = familiar_traffic()
    far = RNG.normal(8, 1, (300, 1))
    mixed_inputs = np.concatenate([inputs, far])
    mixed_labels = np.concatenate([np.full_like(truth, 2), truth])
    mixed = np.concatenate([probabilities, answers(truth, right=0.0)])
    verdict = audit(mixed_inputs, mixed_labels, mixed)
    assert verdict.status == "flagged", verdict.detail
    assert verdict.flagged[:300].sum() > 150 and not verdict.flagged[300:].any()


def test_a_version_without_a_label_check_judges_nothing():
    inputs, truth, probabilities = familiar_traffic()
    old = {key: value for key, value in METADATA.items() if key != "label_check"}
    verdict = audit(inputs, np.full_like(truth, 2), probabilities, old)
    assert verdict.status == "not judged" and verdict.n_flagged == 0 and "without a label check" in verdict.detail
    assert audit(inputs[:0], truth[:0], probabilities[:0]).status == "not judged"
    assert set(verdict.describe()) >= {"status", "detail", "n_flagged", "p_value", "expected_error"}
