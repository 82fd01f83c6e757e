"""app/drift.py without a service: the digit model's input statistics, the reference's size, and the
tests' behaviour on samples of the bundled MNIST subset (no model needed for ink and offset)."""

import numpy as np
import pytest

from app import drift
from app.datasets import bundled_images
from app.models import mnist, penguins
from app.models.mnist import signals
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
            "ink": drift.quantile_sample(signals.ink(images)),
            "offset": drift.quantile_sample(signals.offset(images)),
        }
    }


def input_window(images) -> dict:
    return {"ink": signals.ink(images), "offset": signals.offset(images)}


def test_ink_and_offset_measure_what_they_say():
    image = np.zeros((1, 28, 28), dtype=np.uint8)
    assert signals.ink(image)[0] == 0 and signals.offset(image)[0] == 0  # a blank image has no centre
    image[0, 13:15, 13:15] = 255
    assert signals.ink(image)[0] == pytest.approx(4 / 784)
    assert signals.offset(image)[0] == pytest.approx(0)
    assert signals.offset(digit_styles.shifted(image, 4))[0] == pytest.approx(4 * np.sqrt(2))


def test_the_reference_is_compact_and_counts_the_predicted_classes(holdout):
    probabilities = np.random.default_rng(0).dirichlet(np.ones(10), size=len(holdout))
    reference = drift.reference(mnist.MODEL, holdout, probabilities, "the bundled test split")
    assert reference["n"] == len(holdout) == sum(reference["classes"])
    assert {name: len(values) for name, values in reference["samples"].items()} == dict.fromkeys(
        ("confidence", "ink", "offset"), 200
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


def test_a_table_models_reference_holds_each_named_column():
    holdout = penguins.MODEL.holdout()
    probabilities = np.eye(3)[holdout.labels]
    reference = drift.reference(penguins.MODEL, holdout.inputs, probabilities, "penguins")
    assert set(reference["samples"]) == {"confidence", *penguins.MODEL.feature_names}
    assert all(0 < len(values) <= 200 for values in reference["samples"].values())
    assert reference["classes"] == np.bincount(holdout.labels, minlength=3).tolist()
