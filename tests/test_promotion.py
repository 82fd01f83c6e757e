"""app/promotion.py: the gate's rules on their own, and the gate on real penguin models (fast: no Keras).

The digit model's scenarios (a fine-tune on wrong labels, a good one, a forced activation) run
through the service in tests/part3/test_gate.py."""

import numpy as np
import pytest

from app import paired_test, promotion
from app.modelkit import Examples, Holdout
from app.models import penguins
from app.models.penguins import PenguinParameters, Penguins
from app.paired_test import PairedTest
from app.store import ModelStore

MODEL = penguins.MODEL


# -- the rules ------------------------------------------------------------------------------------
def test_the_first_version_needs_only_the_floor():
    first = promotion.decide(0.81, floor=0.8, margin=0.02)
    assert (first.decision, first.rule, first.promoted) == ("promoted", "floor", True)
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


def test_a_promotion_names_the_rule_that_decided_it():
    within = promotion.decide(0.95, floor=0.8, margin=0.02, active_version=3, active_accuracy=0.96)
    assert (within.decision, within.rule) == ("promoted", "margin")


def paired(wins: int, losses: int, ties: int = 100) -> PairedTest:
    """The candidate's paired test against the serving version: `wins` answers right only by the
    candidate, `losses` only by the serving version, `ties` alike (half right)."""
    labels = np.zeros(wins + losses + ties, dtype=np.int64)
    candidate = np.concatenate([np.zeros(wins), np.ones(losses), np.arange(ties) % 2])
    serving = np.concatenate([np.ones(wins), np.zeros(losses), np.arange(ties) % 2])
    return paired_test.compare(labels, candidate, serving)


LIVE = promotion.LiveRules(min_labels=50, alpha=0.05, forgetting=0.05, shadow=True)


def judged(accuracy: float, live: PairedTest | None, rules=LIVE, traffic_moved: str | None = None):
    return promotion.decide(accuracy, 0.8, 0.02, 1, 0.95, live=live, rules=rules, traffic_moved=traffic_moved)


def test_mcnemar_counts_only_the_discordant_pairs_exactly():
    test = paired(10, 0, ties=40)
    assert (test.n, test.wins, test.losses) == (50, 10, 0)
    assert test.p_better == pytest.approx(0.5**10) and test.p_worse == 1.0
    assert paired(6, 2).p_better == pytest.approx((28 + 8 + 1) / 256)  # P(at least 6 of 8 | a fair coin)
    assert paired(0, 0).p_better == paired(0, 0).p_worse == 1.0  # equal models: no evidence either way
    assert test.first_accuracy == pytest.approx((10 + 20) / 50) and test.second_accuracy == pytest.approx(20 / 50)


def test_a_candidate_significantly_better_on_the_live_holdout_is_promoted_though_the_margin_would_refuse_it():
    decision = judged(0.92, paired(30, 5))  # 0.92: more than the margin 0.02 below 0.95, within the tolerance 0.05
    assert (decision.decision, decision.rule) == ("promoted", "live"), decision.reason
    assert "significantly better than version 1" in decision.reason and "0.9200" in decision.reason
    assert decision.live["wins"] == 30 and decision.live["losses"] == 5 and decision.live["p_better"] < 0.05
    # The same live evidence does not excuse forgetting the old traffic beyond the tolerance.
    forgetting = judged(0.89, paired(30, 5))
    assert (forgetting.decision, forgetting.rule) == ("rejected", "forgetting"), forgetting.reason
    # Nor does any live evidence lift a candidate over the floor.
    assert judged(0.7, paired(200, 0)).rule == "floor"


def test_a_candidate_better_only_by_noise_is_never_promoted_on_the_live_holdout():
    for noise in (paired(0, 0), paired(3, 1), paired(9, 5), paired(20, 13)):  # equal models, a few lucky pairs
        assert noise.p_better >= LIVE.alpha
        shadowed = judged(0.95, noise)
        assert (shadowed.decision, shadowed.rule) == ("challenger", "live"), shadowed.reason
        assert "neither significantly better nor worse" in shadowed.reason
        # Without shadow scoring, decided as without a live holdout: here the margin refuses it.
        off = judged(0.92, noise, rules=promotion.LiveRules(shadow=False))
        assert (off.decision, off.rule) == ("rejected", "margin"), off.reason
        assert "decides nothing" in off.reason


def test_a_candidate_significantly_worse_on_the_live_holdout_is_refused_whatever_its_frozen_accuracy():
    decision = judged(0.99, paired(2, 20))
    assert (decision.decision, decision.rule) == ("rejected", "live")
    assert "significantly worse than version 1" in decision.reason


def test_too_few_live_labels_decide_as_the_frozen_rules_do():
    few = paired(10, 0, ties=10)  # 20 labels, fewer than 50
    assert judged(0.94, few).decision == "promoted" and "fewer than the 50" in judged(0.94, few).reason
    assert judged(0.92, few).decision == "rejected" and judged(0.92, few).rule == "margin"
    assert judged(0.92, None).decision == "rejected"


def test_a_candidate_refused_by_the_margin_only_because_the_traffic_moved_goes_to_shadow():
    moved = "drift in offset"
    shadowed = judged(0.92, paired(3, 0, ties=10), traffic_moved=moved)
    assert (shadowed.decision, shadowed.rule) == ("challenger", "margin") and moved in shadowed.reason
    assert judged(0.92, None, traffic_moved=moved).decision == "challenger"
    # Beyond the forgetting tolerance, or with shadow scoring off, the margin refuses it.
    assert judged(0.89, None, traffic_moved=moved).decision == "rejected"
    off = promotion.LiveRules(shadow=False)
    assert judged(0.92, None, rules=off, traffic_moved=moved).decision == "rejected"


def test_challengers_are_known_by_their_decision():
    assert promotion.is_challenger({"gate": {"decision": "challenger"}})
    assert not promotion.is_challenger({}) and not promotion.is_challenger({"gate": {"decision": "rejected"}})
    assert not promotion.is_promoted({"gate": {"decision": "challenger"}})
    assert promotion.decision_of({}) == "promoted"


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


def test_thresholds_come_from_the_arguments_then_the_settings_then_the_model(monkeypatch):
    monkeypatch.delenv("WORKSHOP_GATE_FLOOR__PENGUINS", raising=False)
    monkeypatch.delenv("WORKSHOP_GATE_MARGIN__PENGUINS", raising=False)
    assert promotion.thresholds(MODEL) == (MODEL.gate_floor, MODEL.gate_margin)
    monkeypatch.setenv("WORKSHOP_GATE_FLOOR__PENGUINS", "0.3")
    assert promotion.thresholds(MODEL) == (0.3, MODEL.gate_margin)
    assert promotion.thresholds(MODEL, floor=0.9, margin=0.1) == (0.9, 0.1)


# -- the frozen holdouts --------------------------------------------------------------------------
def test_the_penguin_holdout_is_frozen_and_disjoint_from_the_training_rows():
    training_rows, holdout_rows = penguins.split()
    again = MODEL.holdout()
    assert again.sha256 == MODEL.holdout().sha256 and len(again) == len(holdout_rows)
    assert set(training_rows.index).isdisjoint(holdout_rows.index)
    # Every species in both (stratified), as class indices into the model's classes.
    assert set(again.labels) == set(MODEL.training_data().labels) == {0, 1, 2}


def test_the_holdout_hash_changes_with_any_example():
    images = np.zeros((3, 28, 28), np.uint8)
    labels = np.array([1, 2, 3])
    changed = images.copy()
    changed[0, 0, 0] = 1

    def sha(inputs, targets):
        return Holdout.of(Examples(inputs, targets), "").sha256

    assert sha(images, labels) != sha(changed, labels)
    assert sha(images, labels) != sha(images, labels[::-1])


# -- the gate on penguin models -------------------------------------------------------------------
@pytest.fixture
def store(tmp_path):
    return ModelStore(penguins.MODEL_NAME, root=tmp_path)


@pytest.fixture(scope="module")
def good_model():
    return MODEL.train(MODEL.training_data(), PenguinParameters())


@pytest.fixture(scope="module")
def bad_model():
    """Fitted on the training rows with their species shuffled: it learnt nothing."""
    data = MODEL.training_data()
    shuffled = Examples(data.inputs, np.random.default_rng(0).permutation(data.labels))
    return MODEL.train(shuffled, PenguinParameters())


def publish(store, trained, floor=0.8, margin=0.02, model=MODEL):
    with store.training_lock():
        return promotion.publish(model, trained, {}, store=store, floor=floor, margin=margin)


def test_a_good_first_version_is_promoted_and_a_worse_one_stored_but_not_served(store, good_model, bad_model):
    first = publish(store, good_model)
    gate = first.metadata["gate"]
    assert gate["decision"] == "promoted" and gate["rule"] == "floor" and gate["live"] is None
    assert gate["accuracy"] >= 0.9 and gate["n_holdout"] == len(MODEL.holdout())
    assert gate["holdout_sha256"] == MODEL.holdout().sha256
    assert (gate["active_version"], gate["active_accuracy"], gate["floor"], gate["margin"]) == (None, None, 0.8, 0.02)
    assert first.metadata["metrics"]["accuracy"] == gate["accuracy"]
    assert first.metadata["classes"] == list(MODEL.classes) and first.serving_file is not None

    # With a floor the shuffled model passes, the margin over version 1 refuses it.
    worse = publish(store, bad_model, floor=0.2)
    gate = worse.metadata["gate"]
    assert (gate["decision"], gate["rule"]) == ("rejected", "margin"), gate
    assert gate["active_version"] == 1 and gate["active_accuracy"] == first.metadata["gate"]["accuracy"]
    assert store.versions() == [1, 2] and store.active() == 1
    assert publish(store, bad_model).metadata["gate"]["rule"] == "floor"

    again = publish(store, good_model)  # as good as version 1: within the margin
    assert again.metadata["gate"]["decision"] == "promoted" and store.active() == again.number


def test_the_serving_version_is_measured_again_when_its_figures_came_from_another_holdout(store, good_model):
    def save(folder):
        return MODEL.save(good_model.model, folder)

    elsewhere = {"decision": "promoted", "accuracy": 0.5, "holdout_sha256": "another holdout's"}
    for recorded in ({"metrics": {"accuracy": 0.5}}, {"gate": elsewhere}):  # from before the gate; another holdout
        serving = store.publish(save, recorded)  # a training file only, as before serving files
        gate = publish(store, good_model).metadata["gate"]
        # Measured again on this holdout (the same model, so the same figure), not the recorded 0.5.
        assert gate["active_version"] == serving.number and gate["active_accuracy"] == gate["accuracy"] != 0.5
        assert gate["decision"] == "promoted"


def test_a_file_that_reloads_into_a_different_model_fails_the_smoke_test(store, good_model, bad_model):
    class Forgetful(Penguins):
        def load(self, path):
            return bad_model.model

    version = publish(store, good_model, model=Forgetful())
    assert (version.metadata["gate"]["decision"], version.metadata["gate"]["rule"]) == ("rejected", "smoke")
    assert "loaded again, answers differently" in version.metadata["gate"]["reason"]
    assert store.active() is None


def test_an_onnx_file_trained_elsewhere_is_judged_like_a_trained_model(store, good_model, bad_model, tmp_path):
    good, bad = tmp_path / "good.onnx", tmp_path / "bad.onnx"
    MODEL.export_onnx(good_model.model, good)
    MODEL.export_onnx(bad_model.model, bad)
    holdout = MODEL.holdout()
    first = promotion.publish_serving_file(MODEL, good, holdout, store=store, floor=0.8, margin=0.02)
    assert first.metadata["gate"]["decision"] == "promoted" and first.metadata["trained_elsewhere"]
    assert first.model_file == first.serving_file and store.active() == first.number
    refused = promotion.publish_serving_file(MODEL, bad, holdout, store=store, floor=0.2, margin=0.02)
    assert refused.metadata["gate"]["rule"] == "margin" and store.active() == first.number
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a graph")
    with pytest.raises(promotion.ServingExportFailed, match="does not run"):
        promotion.publish_serving_file(MODEL, broken, holdout, store=store)
    assert store.versions() == [1, 2]


def live_holdout(labels_of=lambda labels: labels) -> promotion.LiveHoldout:
    """The penguins of the training rows as labelled feedback after row 10 (the holdout's are frozen)."""
    data = MODEL.training_data()
    return promotion.LiveHoldout(data.inputs, labels_of(data.labels), "feedback", after=10, through=10 + len(data))


def test_the_live_holdout_pits_the_candidate_against_the_serving_file_and_its_figures_are_recorded(
    store, good_model, bad_model
):
    publish(store, bad_model, floor=0.2)  # version 1 serves: it learnt nothing
    live = live_holdout()
    with store.training_lock():
        better = promotion.publish(MODEL, good_model, {}, store=store, floor=0.2, margin=0.02, live=live)
    gate = better.metadata["gate"]
    assert (gate["decision"], gate["rule"], store.active()) == ("promoted", "live", better.number), gate["reason"]
    figures = gate["live"]
    answers = {
        "candidate": MODEL.probabilities(good_model.model, live.inputs).argmax(axis=1),
        "serving": promotion.stored_answers(store, MODEL, 1, live.inputs),  # version 1's model.onnx
    }
    assert figures["n"] == len(live) and (figures["after"], figures["through"]) == (10, 10 + len(live))
    assert figures["first_accuracy"] == pytest.approx(np.mean(answers["candidate"] == live.labels))
    assert figures["second_accuracy"] == pytest.approx(np.mean(answers["serving"] == live.labels))
    assert figures["wins"] > figures["losses"] and figures["p_better"] < figures["alpha"]
    assert "live holdout of" in gate["reason"] and f"{gate['accuracy']:.4f}" in gate["reason"]


def test_an_equal_candidate_goes_to_shadow_and_is_never_served(store, good_model):
    first = publish(store, good_model)
    with store.training_lock():
        same = promotion.publish(MODEL, good_model, {}, store=store, live=live_holdout())
    gate = same.metadata["gate"]
    assert (gate["live"]["wins"], gate["live"]["losses"]) == (0, 0)
    assert (gate["decision"], gate["rule"]) == ("challenger", "live") and promotion.is_challenger(same.metadata)
    assert store.active() == first.number and not store.promoted(same.number)
    with store.training_lock():
        off = promotion.LiveRules(shadow=False)
        again = promotion.publish(MODEL, good_model, {}, store=store, live=live_holdout(), rules=off)
    assert again.metadata["gate"]["decision"] == "promoted" and again.metadata["gate"]["rule"] == "margin"


def test_every_publication_records_how_sure_the_version_is_on_its_holdout(store, good_model):
    check = publish(store, good_model).metadata["label_check"]
    probabilities = MODEL.probabilities(good_model.model, MODEL.holdout().inputs)
    assert check["min_confidence"] == pytest.approx(np.median(probabilities.max(axis=1)))
    assert check["n"] >= len(MODEL.holdout()) / 2 and 0 <= check["errors"] <= check["n"]
