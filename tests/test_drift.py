"""app/drift.py without a service: the input statistics, the reference's size, and the tests'
behaviour on samples of the bundled MNIST subset (no model needed for ink and offset)."""

import numpy as np
import pytest

from app.datasets import bundled_images
from app.models.mnist import drift
from app.models.mnist import styles as digit_styles


@pytest.fixture(scope="module")
def holdout():
    return bundled_images("test")[0]


@pytest.fixture(scope="module")
def unseen():
    return bundled_images("upload")[0]


def input_reference(images) -> dict:
    return {
        "samples": {
            "ink": drift.quantile_sample(drift.ink(images)),
            "offset": drift.quantile_sample(drift.offset(images)),
        }
    }


def input_window(images) -> dict:
    return {"ink": drift.ink(images), "offset": drift.offset(images)}


def test_ink_and_offset_measure_what_they_say():
    image = np.zeros((1, 28, 28), dtype=np.uint8)
    assert drift.ink(image)[0] == 0 and drift.offset(image)[0] == 0  # a blank image has no centre
    image[0, 13:15, 13:15] = 255
    assert drift.ink(image)[0] == pytest.approx(4 / 784)
    assert drift.offset(image)[0] == pytest.approx(0)
    assert drift.offset(digit_styles.shifted(image, 4))[0] == pytest.approx(4 * np.sqrt(2))


def test_the_reference_is_compact_and_counts_the_predicted_classes(holdout):
    probabilities = np.random.default_rng(0).dirichlet(np.ones(10), size=len(holdout))
    reference = drift.reference_for_digits(probabilities, holdout)
    assert reference["n"] == len(holdout) == sum(reference["classes"])
    assert {name: len(values) for name, values in reference["samples"].items()} == dict.fromkeys(
        drift.DIGIT_SIGNALS, 200
    )
    assert reference["classes"] == np.bincount(probabilities.argmax(axis=1), minlength=10).tolist()


def test_windows_of_unseen_mnist_digits_raise_no_alarm(holdout, unseen):
    """Twenty random windows at a 0.01 Bonferroni level: a false alarm would be a 1-in-100 event."""
    reference = input_reference(holdout)
    rng = np.random.default_rng(0)
    smallest = min(
        value["p_value"]
        for _ in range(20)
        for value in drift.compare(
            reference, input_window(unseen[rng.choice(len(unseen), 300, replace=False)])
        ).values()
    )
    assert smallest > 0.01 / 2, smallest


@pytest.mark.parametrize(("style", "signal"), [("inverted", "ink"), ("shifted", "offset"), ("thickened", "ink")])
def test_digits_drawn_differently_are_told_apart(holdout, unseen, style, signal):
    signals = drift.compare(input_reference(holdout), input_window(getattr(digit_styles, style)(unseen[:200])))
    assert signals[signal]["p_value"] < 1e-6, signals


def test_the_classes_test_sees_a_change_in_the_mix_of_answers():
    reference = {"samples": {}, "classes": [50] * 10}
    balanced = drift.compare(reference, {drift.CLASSES_SIGNAL: np.tile(np.arange(10), 20)})
    sevens = drift.compare(reference, {drift.CLASSES_SIGNAL: np.array([7] * 100 + list(range(10)) * 10)})
    assert balanced[drift.CLASSES_SIGNAL]["p_value"] > 0.5
    assert sevens[drift.CLASSES_SIGNAL]["p_value"] < 1e-6


def test_penguin_reference_holds_both_lengths():
    reference = drift.penguin_reference()
    assert set(reference["samples"]) == set(drift.PENGUIN_SIGNALS)
    assert all(0 < len(values) <= 200 for values in reference["samples"].values())
