"""The loop closes by itself, end to end (slow: the service in-process, its trainer a real process).

Penguins (scikit-learn, no Keras): version 1 reads ordinary traffic right. Then the traffic drifts in a
way it cannot read: a client sends centimetres as bare numbers (what was 40.3 mm arrives as 4.03),
and the labels that come back say the true species. Nobody calls /train/: the policy queues one
fine-tune on the feedback (the model retrains on its data plus the feedback), the gate judges it on
the frozen holdout and on the live holdout it never trained on, promotes it, and the service reads the
new traffic again, and the old.
"""

import time

import numpy as np
import pytest
from part3_support import copy_store, running_service, wait_until

from app.models import penguins

pytestmark = pytest.mark.slow
MODEL = penguins.MODEL
FLOOR = 0.8
MIN_LABELS = 150  # labels on the serving version before its live accuracy recommends retraining
LOOP = {  # the policy on, checking often; retraining recommended by the live accuracy on MIN_LABELS labels
    "retrain_policy": "fine-tune-on-feedback",
    "retrain_check_interval": 0.2,
    "retrain_min_interval": 1.0,
    "retrain_min_labels": MIN_LABELS,
    "retrain_accuracy_floor": FLOOR,
    "live_window": MIN_LABELS,
}


def infer(client, rows: np.ndarray) -> tuple[list[str], list[str]]:
    """(prediction ids, answers) of the service for `rows`, by the Open Inference Protocol."""
    tensor = {"name": MODEL.input.name, "shape": list(rows.shape), "datatype": MODEL.input.datatype}
    response = client.post("/v2/models/penguins/infer", json={"inputs": [{**tensor, "data": rows.tolist()}]})
    assert response.status_code == 200, response.text
    outputs = {output["name"]: output["data"] for output in response.json()["outputs"]}
    return outputs["prediction_id"], outputs["label"]


def accuracy_of(client, rows: np.ndarray, labels: np.ndarray, send_labels: bool = True) -> float:
    """What share of `rows` the service answers right; each label goes back as feedback with its input."""
    ids, answers = infer(client, rows)
    truth = [MODEL.classes[label] for label in labels]
    if send_labels:
        for prediction_id, row, label in zip(ids, rows, truth, strict=True):
            sent = {"prediction_id": prediction_id, "label": label, "input": row.tolist()}
            assert client.post("/feedback/", json=sent).status_code == 200
    return float(np.mean([answer == label for answer, label in zip(answers, truth, strict=True)]))


def penguins_state(client) -> dict:
    return client.get("/models/").json()["penguins"]


def test_the_policy_s_fine_tune_after_a_drift_is_promoted_and_restores_live_accuracy(seeded_store, tmp_path):
    models_dir = copy_store(seeded_store, tmp_path / "models")
    ordinary, holdout = MODEL.training_data(), MODEL.holdout()
    order = np.random.default_rng(0).permutation(len(ordinary))
    drifted_rows, drifted_labels = ordinary.inputs[order] / 10, ordinary.labels[order]  # centimetres, bare
    # This test's trigger is the live accuracy (drift: test_part3_drift.py).
    settings = {**LOOP, "drift_window": 10_000, "drift_min_window": 10_000}
    with running_service(models_dir, **settings) as client:
        before = accuracy_of(client, holdout.inputs[:40], holdout.labels[:40])
        started = time.monotonic()
        during = accuracy_of(client, drifted_rows[:200], drifted_labels[:200])
        assert before >= 0.95 and during < 0.6  # version 1 cannot read the new traffic

        def recovered():  # version 2 active and served here, its job recorded as finished (a moment after)
            state = penguins_state(client)
            finished = state["retrain_policy"]["state"] != "training"
            return state if state["active"] == state["serving"] == 2 and finished else None

        state = wait_until(recovered, "the policy's fine-tune serves")
        seconds = time.monotonic() - started
        version = state["versions"][-1]
        gate = version["gate"]
        assert (version["version"], version["status"], gate["decision"], gate["rule"]) == (
            2,
            "active",
            "promoted",
            "live",
        )
        live = gate["live"]
        # Judged on labels it never trained on: the newest share, after its job's boundary.
        trained_through = version["feedback"]["trained_through"]
        assert live["after"] == trained_through and live["n"] >= 50
        assert live["first_accuracy"] >= 0.85 and live["second_accuracy"] < 0.6 and live["p_better"] < 0.05
        assert gate["accuracy"] >= FLOOR  # the frozen holdout: the old traffic is not forgotten
        (job,) = client.get("/jobs/").json()  # one job, queued by the policy, not by a client
        assert job["kind"] == "fine-tune" and job["retrain_reasons"] and "significantly better" in job["gate_reason"]
        assert state["retrain_policy"]["state"] in ("waiting", "idle")

        # Recovered: new penguins of the drifted kind (never seen in any form) read right, and the old still.
        after = accuracy_of(client, holdout.inputs / 10, holdout.labels)
        old = accuracy_of(client, holdout.inputs, holdout.labels, send_labels=False)
        assert after >= FLOOR and old >= 0.95
        live_after = wait_until(
            lambda: (found := penguins_state(client)["versions"][-1]["live"])["n_labels"] >= len(holdout) and found,
            "version 2's live accuracy",
        )
        assert live_after["accuracy"] >= FLOOR
        print(
            f"\nloop figures: live accuracy before {before:.1%}, during {during:.1%}, after {after:.1%} "
            f"(old traffic {old:.1%}); 200 labelled drifted requests sent, the policy's fine-tune trained on the "
            f"oldest {job['n_images']} feedback rows; {seconds:.0f} s from the first drifted request to version 2 "
            "serving; version 2's gate: "
            f"frozen {gate['accuracy']:.1%} against {gate.get('active_accuracy')}, live {live['first_accuracy']:.1%} "
            f"against {live['second_accuracy']:.1%} on {live['n']} labels"
        )


@pytest.mark.parametrize(
    "relabel",
    [
        pytest.param(lambda labels: np.full_like(labels, MODEL.classes.index("Gentoo")), id="every-label-gentoo"),
        pytest.param(lambda labels: (labels + 1) % len(MODEL.classes), id="every-label-shifted-by-one"),
    ],
)
def test_a_relabelling_of_ordinary_traffic_is_flagged_kept_out_of_training_and_never_serves(
    seeded_store, tmp_path, relabel
):
    models_dir = copy_store(seeded_store, tmp_path / "models")
    ordinary = MODEL.training_data()
    rows, labels = ordinary.inputs[:200], relabel(ordinary.labels[:200])
    with running_service(models_dir, **LOOP) as client:
        accuracy_of(client, rows, labels)  # the labels say version 1 is wrong: retraining is recommended

        def settled():  # every label is in: once the audit has judged them and no job runs, the policy is done
            state = penguins_state(client)
            jobs = client.get("/jobs/").json()
            judged = state["labels"]["status"] == "flagged"
            done = all(job["status"] in ("succeeded", "failed") for job in jobs)
            if judged and done and state["retrain_policy"]["state"] != "training":
                return state, jobs
            return None

        state, jobs = wait_until(settled, "the policy acted on the relabelled feedback")
        assert state["labels"]["n_flagged"] > 0
        if state["serving"] == 1:  # flagged labels count for nothing in the live accuracy the policy reads
            live = state["versions"][0]["live"]
            assert live["n_labels"] == min(LOOP["live_window"], len(rows) - state["labels"]["n_flagged"]), live
        for job in jobs:  # a fine-tune, if any, trained on the labels the audit did not flag only
            assert job["n_flagged"] > 0 and job["n_images"] + job["n_flagged"] <= len(rows)
        # Whatever serves now (version 1, or a fine-tune on the unflagged labels) reads ordinary
        # penguins as they are, never as the relabelling says.
        holdout = MODEL.holdout()
        poisoned = relabel(holdout.labels)
        moved = poisoned != holdout.labels
        assert accuracy_of(client, holdout.inputs, holdout.labels, send_labels=False) >= 0.95
        assert accuracy_of(client, holdout.inputs[moved], poisoned[moved], send_labels=False) <= 0.05
        print(f"\nrelabelled: {state['labels']['detail']}; policy {state['retrain_policy']}; jobs {jobs}")
