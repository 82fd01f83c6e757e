"""The loop's bookkeeping, without training (fast): the live holdout a job on feedback leaves out, the
policy that waits for new labels after a refused fine-tune, and the bound on refused versions."""

import time

import numpy as np
import pytest

from app.models import mnist
from app.part3 import live_holdout
from app.part3.job_records import SqliteJobRecords
from app.part3.kept_models import KeptModels
from app.part3.monitoring import Monitoring
from app.part3.settings import Settings
from app.part3.training_job import prune_rejected
from app.store import ModelStore

NEW_LABELS = 5


class Recommending(Monitoring):
    """The policy's decisions with retraining always recommended (what recommends it: test_feedback.py)."""

    def recommendation(self, name):
        return True, ["drift in offset"]


@pytest.fixture
def loop(tmp_path):
    settings = Settings(
        models_dir=tmp_path,
        retrain_policy="fine-tune-on-feedback",
        retrain_min_interval=0.01,
        retrain_min_new_labels=NEW_LABELS,
        live_holdout_share=0.3,
    )
    jobs = SqliteJobRecords(tmp_path / "queue.sqlite3", tmp_path)
    monitoring = Recommending(settings, kept=KeptModels(tmp_path), jobs=jobs.all, submit=jobs.submit)
    yield monitoring, jobs
    monitoring.feedback.close()


def send(monitoring, count: int, start: int = 0) -> None:
    """`count` digit feedbacks with distinct images (the image's pixels hold its number)."""
    for number in range(start, start + count):
        image = np.full((28, 28), number % 256, np.uint8)
        image[0, 0] = number // 256
        monitoring.feedback.record(f"id{number}", "mnist", 1, "1", str(number % 10), time.time(), image)


def queued(monitoring) -> list:
    time.sleep(0.02)  # past retrain_min_interval
    return monitoring.apply_policy()


def test_a_job_on_feedback_trains_on_the_oldest_rows_and_never_on_its_live_holdout(loop):
    monitoring, jobs = loop
    send(monitoring, 20)
    (job,) = queued(monitoring)
    rows = monitoring.feedback.labelled_rows(mnist.MODEL)
    trained, _ = jobs.examples(job.id)
    assert job.n_images == len(trained) == 14 and job.feedback_boundary == rows.seqs[13]
    assert (trained == rows.inputs[:14]).all()
    send(monitoring, 3, start=20)  # labels that arrive while the job waits join its live holdout
    rows, verdict = monitoring.audited("mnist")
    live = live_holdout.live_part(rows, verdict, job.feedback_boundary)
    assert len(live) == 9 and (live.inputs == rows.inputs[14:]).all() and live.after == job.feedback_boundary
    assert not {row.tobytes() for row in live.inputs} & {row.tobytes() for row in trained}


def test_the_policy_waits_for_new_labels_after_a_fine_tune_the_gate_did_not_promote(loop):
    monitoring, jobs = loop
    send(monitoring, 20)
    (first,) = queued(monitoring)
    assert queued(monitoring) == [] and monitoring.policy_state("mnist")["state"] == "training"
    newest = int(monitoring.feedback.labelled_rows(mnist.MODEL).seqs[-1])
    for decision in ("rejected", "challenger"):
        jobs.update(
            first.id,
            status="succeeded",
            version=2,
            promoted=False,
            gate_decision=decision,
            gate_reason="holdout accuracy 0.8800 is more than the margin",
            feedback_through=newest,
        )
        for _ in range(3):  # however many intervals pass, the same fine-tune does not come back
            assert queued(monitoring) == []
        state = monitoring.policy_state("mnist")
        assert state["state"] == "waiting" and first.id in state["detail"], state
        assert f"waits for {NEW_LABELS} new labels" in state["detail"] and "0 so far" in state["detail"]
    send(monitoring, NEW_LABELS - 1, start=20)
    assert queued(monitoring) == [] and f"{NEW_LABELS - 1} so far" in monitoring.policy_state("mnist")["detail"]
    send(monitoring, 1, start=40)
    (second,) = queued(monitoring)
    assert second.feedback_boundary > first.feedback_boundary and second.n_images > first.n_images
    # After a promoted one too: its version serves, and new labels must say whether it needs another.
    newest = int(monitoring.feedback.labelled_rows(mnist.MODEL).seqs[-1])
    jobs.update(
        second.id, status="succeeded", version=3, promoted=True, gate_decision="promoted", feedback_through=newest
    )
    assert queued(monitoring) == [] and "its version now serves" in monitoring.policy_state("mnist")["detail"]
    send(monitoring, NEW_LABELS, start=50)
    assert len(queued(monitoring)) == 1


def test_the_policy_says_why_it_stops(loop, tmp_path):
    monitoring, _ = loop
    state = monitoring.policy_state("mnist")
    assert state == {"state": "stopped", "detail": "retraining is recommended but no feedback with its input came"}
    assert monitoring.policy_state("penguins")["state"] == "stopped"
    off = Monitoring(Settings(models_dir=tmp_path), kept=monitoring.kept, jobs=list, submit=None)
    assert off.policy_state("mnist")["state"] == "off" and off.apply_policy() == []


def gate(decision: str, parent: int | None = None) -> dict:
    return {"gate": {"decision": decision}, "parent": parent}


def test_refused_versions_are_bounded_and_the_serving_version_its_parent_and_a_challenger_survive(tmp_path):
    store = ModelStore("digits", root=tmp_path)

    def publish(metadata):
        return store.publish(lambda folder: (folder / "m").write_text("m") and "m", metadata).number

    publish(gate("promoted"))  # 1
    publish(gate("rejected"))  # 2: the serving version's parent (a version once forced into service)
    publish(gate("promoted", parent=2))  # 3: serves
    for decision in ("rejected", "challenger", "rejected", "rejected", "rejected", "rejected"):
        publish(gate(decision))  # 4 to 9; 5 is a challenger
    assert store.active() == 3
    assert prune_rejected(store, keep=2) == [4, 6, 7]
    assert store.versions() == [1, 2, 3, 5, 8, 9]
    assert prune_rejected(store, keep=2) == []  # bounded: nothing more to remove
    store.activate(8)  # a rejected version served on purpose, and now the serving version
    publish(gate("rejected"))  # 10
    assert prune_rejected(store, keep=1) == [2, 9] and store.versions() == [1, 3, 5, 8, 10]


class Drifting(Monitoring):
    """A worker whose traffic drifts from the serving version's holdout, with `labels` live labels."""

    labels: dict = {}

    def drift(self, name):
        signal = {"p_value": 1e-30, "statistic": 0.9, "significant": True}
        return {"status": "drift", "signals": {"offset": signal}, "threshold": 0.0025, "window": 120}

    def live(self, name):
        return {1: self.labels} if self.labels else {}


@pytest.mark.parametrize(
    ("labels", "recommended"),
    [
        ({}, True),  # no labels yet: drift alone says the model sees what it was not made for
        ({"accuracy": 0.95, "n_labels": 10}, True),  # too few labels to say it copes
        ({"accuracy": 0.95, "n_labels": 80}, False),  # it copes with the drifted traffic (e.g. once the loop recovered)
        ({"accuracy": 0.40, "n_labels": 80}, True),
    ],
)
def test_drift_recommends_retraining_unless_live_labels_show_the_version_copes(tmp_path, labels, recommended):
    settings = Settings(models_dir=tmp_path, retrain_min_labels=50, retrain_accuracy_floor=0.8)
    kept = KeptModels(tmp_path)
    kept.versions = lambda: {"mnist": 1, "penguins": 1}
    monitoring = Drifting(settings, kept=kept, jobs=list, submit=None)
    monitoring.labels = labels
    answer, reasons = monitoring.recommendation("mnist")
    assert answer is recommended and (any("drift in offset" in reason for reason in reasons) or not recommended)
    if labels.get("accuracy") == 0.40:
        assert any("below the floor of 80.0%" in reason for reason in reasons)
