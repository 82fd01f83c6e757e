"""app/promotion.py: the gate's rules on their own, and the gate on real penguin models (fast: no Keras).

The digit model's scenarios (a fine-tune on wrong labels, a good one, a forced activation) run
through the service in tests/part3/test_gate.py."""

import dataclasses

import numpy as np
import pytest

from app import penguins, promotion
from app.datasets import PENGUIN_TARGET
from app.store import ModelStore


# -- the rules ------------------------------------------------------------------------------------
def test_the_first_version_needs_only_the_floor():
    first = promotion.decide(0.81, floor=0.8, margin=0.02)
    assert (first.decision, first.rule, first.promoted) == ("promoted", None, True)
    assert "no version served before" in first.reason
    low = promotion.decide(0.79, floor=0.8, margin=0.02)
    assert (low.decision, low.rule) == ("rejected", "floor")
    assert "0.7900 is below the floor 0.8000" in low.reason


def test_a_candidate_must_stay_within_the_margin_of_the_serving_version():
    within = promotion.decide(0.95, floor=0.8, margin=0.02, active_version=3, active_accuracy=0.97)
    assert within.promoted and "version 3" in within.reason
    worse = promotion.decide(0.94, floor=0.8, margin=0.02, active_version=3, active_accuracy=0.97)
    assert (worse.decision, worse.rule) == ("rejected", "margin")
    assert "version 3" in worse.reason and "0.9700" in worse.reason
    # The floor is checked first: a candidate below both is refused by the floor.
    assert promotion.decide(0.5, floor=0.8, margin=0.02, active_version=3, active_accuracy=0.97).rule == "floor"


def test_a_failed_smoke_test_refuses_whatever_the_accuracy():
    refused = promotion.decide(1.0, floor=0.8, margin=0.02, smoke_problem="the saved file answers differently")
    assert (refused.decision, refused.rule, refused.reason) == (
        "rejected",
        "smoke",
        "the saved file answers differently",
    )
    assert promotion.smoke_problem(np.array([1, 2, 3]), np.array([1, 2, 3])) is None
    assert "1 of 3" in promotion.smoke_problem(np.array([1, 2, 3]), np.array([1, 2, 4]))


def test_versions_without_a_gate_entry_count_as_promoted():
    assert promotion.is_promoted({}) and promotion.is_promoted({"gate": {"decision": "promoted"}})
    assert not promotion.is_promoted({"gate": {"decision": "rejected"}})


# -- the frozen holdouts --------------------------------------------------------------------------
def test_the_penguin_holdout_is_frozen_and_disjoint_from_the_training_rows():
    training_rows, holdout_rows = promotion.penguin_split()
    again = promotion.penguin_holdout()
    assert again.sha256 == promotion.penguin_holdout().sha256 and len(again) == len(holdout_rows)
    assert set(training_rows.index).isdisjoint(holdout_rows.index)
    # Every species in both, in the bundled data's proportions (stratified).
    assert set(holdout_rows[PENGUIN_TARGET]) == set(training_rows[PENGUIN_TARGET])


def test_the_holdout_hash_changes_with_any_example():
    images = np.zeros((3, 28, 28), np.uint8)
    labels = np.array([1, 2, 3])
    changed = images.copy()
    changed[0, 0, 0] = 1
    assert promotion.holdout_sha256(images, labels) != promotion.holdout_sha256(changed, labels)
    assert promotion.holdout_sha256(images, labels) != promotion.holdout_sha256(images, labels[::-1])


# -- the gate on penguin models -------------------------------------------------------------------
@pytest.fixture
def store(tmp_path):
    return ModelStore(penguins.MODEL_NAME, root=tmp_path)


@pytest.fixture(scope="module")
def good_pipeline():
    training_rows, _ = promotion.penguin_split()
    return penguins.train(training_rows)


@pytest.fixture(scope="module")
def bad_pipeline():
    """Fitted on the training rows with their species shuffled: it learnt nothing."""
    training_rows, _ = promotion.penguin_split()
    shuffled = training_rows.copy()
    shuffled[PENGUIN_TARGET] = np.random.default_rng(0).permutation(shuffled[PENGUIN_TARGET].to_numpy())
    return penguins.train(shuffled)


def publish(store, pipeline, floor=0.8, margin=0.02):
    with store.training_lock():
        return penguins.publish(pipeline, {}, {}, store=store, floor=floor, margin=margin)


def test_a_good_first_version_is_promoted_and_a_worse_one_stored_but_not_served(store, good_pipeline, bad_pipeline):
    first = publish(store, good_pipeline)
    gate = first.metadata["gate"]
    assert gate["decision"] == "promoted" and gate["rule"] is None
    assert gate["accuracy"] >= 0.9 and gate["n_holdout"] == len(promotion.penguin_holdout())
    assert gate["holdout_sha256"] == promotion.penguin_holdout().sha256
    assert (gate["active_version"], gate["active_accuracy"], gate["floor"], gate["margin"]) == (None, None, 0.8, 0.02)

    # With a floor the shuffled model passes, the margin over version 1 refuses it.
    worse = publish(store, bad_pipeline, floor=0.2)
    gate = worse.metadata["gate"]
    assert (gate["decision"], gate["rule"]) == ("rejected", "margin"), gate
    assert gate["active_version"] == 1 and gate["active_accuracy"] == first.metadata["gate"]["accuracy"]
    assert store.versions() == [1, 2] and store.active() == 1
    assert publish(store, bad_pipeline).metadata["gate"]["rule"] == "floor"

    again = publish(store, good_pipeline)  # as good as version 1: within the margin
    assert again.metadata["gate"]["decision"] == "promoted" and store.active() == again.number


def test_the_serving_version_is_measured_again_when_its_figures_came_from_another_holdout(store, good_pipeline):
    save = lambda folder: penguins.save(good_pipeline, folder)  # noqa: E731
    elsewhere = {"decision": "promoted", "accuracy": 0.5, "holdout_sha256": "another holdout's"}
    for recorded in ({"metrics": {"accuracy": 0.5}}, {"gate": elsewhere}):  # from before the gate; another holdout
        serving = store.publish(save, recorded)
        gate = publish(store, good_pipeline).metadata["gate"]
        # Measured again on this holdout (the same model, so the same figure), not the recorded 0.5.
        assert gate["active_version"] == serving.number and gate["active_accuracy"] == gate["accuracy"] != 0.5
        assert gate["decision"] == "promoted"


def test_a_file_that_reloads_into_a_different_model_fails_the_smoke_test(store, good_pipeline, bad_pipeline):
    swapped = dataclasses.replace(penguins.GATE_KIND, load=lambda path: bad_pipeline)
    with store.training_lock():
        version = promotion.publish(store, swapped, good_pipeline, {}, floor=0.8, margin=0.02)
    assert (version.metadata["gate"]["decision"], version.metadata["gate"]["rule"]) == ("rejected", "smoke")
    assert "loaded again, answers differently" in version.metadata["gate"]["reason"]
    assert store.active() is None
