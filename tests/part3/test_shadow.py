"""Shadow scoring without a server: McNemar's test and the rules, the bounded queue, the scorer, the
answers beside the feedback, the challenger a worker keeps, and the labels' decision taken once and
followed by every worker. On a store of penguin versions (scikit-learn, ONNX Runtime; no Keras).
The service's routes: test_shadow_service.py."""

import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest
from shadow_support import answer_of, publish_from

from app import promotion
from app.models import penguins
from app.paired_test import compare
from app.part3.feedback_backends import open_feedback
from app.part3.feedback_sqlite import SqliteFeedbackStore
from app.part3.kept_models import Kept, KeptModels
from app.part3.prediction_ids import PredictionIds
from app.part3.settings import Settings
from app.part3.shadow import Rules, Shadow, judge
from app.part3.shadow_queue import Copy, ShadowAnswer, ShadowQueue, ShadowScorer, key_of
from app.part3.shadow_records import ShadowRecords
from app.store import ModelStore

MODEL = penguins.MODEL
NAME = MODEL.name
RULES = Rules(min_labels=20, max_labels=60, alpha=0.01)


# -- McNemar's exact test and the rules ------------------------------------------------------------
def test_mcnemar_counts_only_the_examples_where_one_model_alone_is_right():
    labels = np.array(["a"] * 50, dtype=object)
    champion = np.array(["a"] * 30 + ["a"] * 10 + ["b"] * 2 + ["b"] * 8, dtype=object)
    challenger = np.array(["a"] * 30 + ["b"] * 10 + ["a"] * 2 + ["c"] * 8, dtype=object)
    result = compare(labels, challenger, champion)
    assert (result.n, result.wins, result.losses) == (50, 2, 10)
    assert (result.first_accuracy, result.second_accuracy) == (0.64, 0.8)
    # Exact one-sided binomial: P(X >= 10), X ~ Binomial(12, 1/2) = 79 / 4096, and the other way round.
    assert result.p_worse == pytest.approx(79 / 4096) and result.p_better == pytest.approx(1 - 13 / 4096)
    assert result.worse(0.05) and not result.worse(0.01) and not result.better(0.05)
    same = compare(labels[:2], champion[:2], champion[:2])
    assert (same.p_better, same.p_worse) == (1.0, 1.0)  # never disagree: no evidence


def comparison(only_champion: int, only_challenger: int, both: int):
    n = both + only_champion + only_challenger
    labels = np.ones(n, dtype=int)
    champion = np.array([1] * both + [1] * only_champion + [0] * only_challenger)
    challenger = np.array([1] * both + [0] * only_champion + [1] * only_challenger)
    return compare(labels, challenger, champion)


def test_the_labels_promote_a_significantly_better_challenger_and_drop_a_worse_one():
    outcome, reason = judge(comparison(0, 12, 10), RULES)
    assert outcome == "promoted" and "significantly better" in reason and "12 only it got right" in reason
    assert judge(comparison(12, 0, 10), RULES)[0] == "dropped"


def test_too_few_labels_decide_nothing_however_uneven():
    outcome, reason = judge(comparison(0, 19, 0), RULES)  # 19 of 20: p ~ 4e-6, but too few labels
    assert outcome is None and "1 more labelled requests (19 of the 20 needed)" in reason


def test_noise_waits_and_a_challenger_never_better_is_dropped_at_the_maximum():
    outcome, reason = judge(comparison(5, 8, 30), RULES)  # 43 labels, 8 against 5: noise
    assert outcome is None and "waits for a significant difference" in reason and "17 more labels" in reason
    outcome, reason = judge(comparison(10, 12, 38), RULES)
    assert outcome == "dropped" and "not significantly better in 60 labels" in reason


# -- the queue and the scorer ------------------------------------------------------------------------
def copy_of(rows: int, model: str = NAME, first: int = 0) -> Copy:
    ids = [f"key{first + index}.signature" for index in range(rows)]
    return Copy(model, 1, ["Adelie"] * rows, np.zeros((rows, 2)), ids)


def test_the_queue_holds_at_most_its_rows_and_counts_what_it_drops():
    queue = ShadowQueue(max_rows=5)
    assert queue.offer(copy_of(3)) and queue.offer(copy_of(2))
    assert not queue.offer(copy_of(1)) and not queue.offer(copy_of(4))
    assert queue.rows == 5 and queue.dropped[NAME] == 5 and queue.waiting.is_set()
    assert [len(copy.ids) for copy in queue.take(max_rows=4)] == [3]  # whole copies, up to the rows asked
    assert [len(copy.ids) for copy in queue.take(max_rows=1)] == [2]  # at least one, even if larger
    assert queue.take(10) == [] and queue.rows == 0 and not queue.waiting.is_set()
    assert not queue.offer(copy_of(6))  # larger than the queue: never held


class Answering:
    """A challenger answering each row's first column as a class index."""

    def predict(self, rows):
        return [MODEL.classes[int(row[0])] for row in rows]


class Failing:
    def predict(self, rows):
        raise RuntimeError("the challenger broke")


def scorer_of(challenger, recorded: list) -> ShadowScorer:
    return ShadowScorer(ShadowQueue(100), lambda name: challenger, recorded.extend, 64, 0.0)


def test_the_scorer_answers_copies_in_one_call_and_records_each_under_its_prediction_key():
    recorded: list[ShadowAnswer] = []
    scorer = scorer_of(Kept(3, Answering()), recorded)
    first = Copy(NAME, 1, ["Adelie", "Adelie"], np.array([[1.0, 0.0], [2.0, 0.0]]), ["a.x", "b.y"])
    second = Copy(NAME, 2, ["Gentoo"], np.array([[0.0, 0.0]]), ["c.z"])
    scorer.score([first, second])
    assert recorded == [
        ShadowAnswer("a", NAME, 1, "Adelie", 3, "Chinstrap"),
        ShadowAnswer("b", NAME, 1, "Adelie", 3, "Gentoo"),
        ShadowAnswer("c", NAME, 2, "Gentoo", 3, "Adelie"),
    ]
    assert scorer.answered[NAME] == 3 and key_of("body.with.dots.signature") == "body.with.dots"


def test_a_failing_challenger_is_counted_never_raised_and_nothing_is_recorded():
    recorded: list = []
    scorer = scorer_of(Kept(3, Failing()), recorded)
    assert scorer.score([copy_of(4)]) == [] and scorer.failed[NAME] == 4 and recorded == []
    gone = scorer_of(None, recorded)  # dropped meanwhile: its copies are let go
    assert gone.score([copy_of(2)]) == [] and recorded == []


def test_the_scorer_thread_answers_what_the_prediction_path_queued_and_stops():
    recorded: list = []
    scorer = scorer_of(Kept(3, Answering()), recorded)
    scorer.start()
    try:
        for index in range(5):
            scorer.queue.offer(copy_of(1, first=index))
        deadline = time.monotonic() + 30
        while len(recorded) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        scorer.stop()
    assert sorted(answer.key for answer in recorded) == [f"key{index}" for index in range(5)]
    assert not any(thread.name == "shadow-scorer" and thread.is_alive() for thread in threading.enumerate())


# -- a store of penguin versions ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained():
    return MODEL.train(MODEL.training_data(), MODEL.parameters())


@pytest.fixture
def store(tmp_path, trained):
    """Version 1, promoted by the real gate."""
    store = ModelStore(NAME, tmp_path)
    promotion.publish(MODEL, trained, store=store)
    return store


def records_of(tmp_path, url: str | None, keep: int = 1000) -> ShadowRecords:
    return open_feedback(Settings(models_dir=tmp_path, queue_url=url, feedback_kept=1000)).shadow_records(keep)


def nothing_stored(records: ShadowRecords) -> bool:
    feedback = records.feedback
    return not feedback.path.exists() if isinstance(feedback, SqliteFeedbackStore) else feedback.client.dbsize() == 0


def test_answers_join_their_labels_and_the_oldest_go_beyond_the_bound(tmp_path, feedback_url):
    records = records_of(tmp_path, feedback_url, keep=3)
    assert records.labelled(NAME, 2, 1).labels == [] and records.agreement(NAME, 2, 1).answered == 0
    assert records.count(NAME) == 0 and nothing_stored(records)  # reads create nothing
    records.record([ShadowAnswer(f"k{i}", NAME, 1, "Adelie", 2, "Gentoo" if i % 2 else "Adelie") for i in range(5)])
    records.record([ShadowAnswer("k4", NAME, 1, "Adelie", 2, "Chinstrap")])  # answered twice: kept once
    assert records.count(NAME) == 3  # k2, k3, k4
    for key in ("k1", "k3", "k4"):
        records.feedback.record(key, NAME, 1, "Adelie", "Gentoo", time.time())
    labelled = records.labelled(NAME, 2, 1)
    assert (labelled.champion, labelled.challenger, labelled.labels) == (
        ["Adelie", "Adelie"],
        ["Gentoo", "Adelie"],
        ["Gentoo", "Gentoo"],
    )
    assert records.labelled(NAME, 2, champion=7).labels == []  # in shadow of another champion: not these
    assert records.agreement(NAME, 2, 1).answered == 3 and records.agreement(NAME, 2, 1).agreement == 2 / 3


@pytest.fixture(params=["folder", "bucket"])
def any_store(request, tmp_path, trained):
    """Version 1, promoted by the real gate, in a folder or in a bucket (moto on loopback)."""
    root = tmp_path if request.param == "folder" else request.getfixturevalue("bucket_url")
    store = ModelStore(NAME, root, tmp_path / "publisher-cache")
    promotion.publish(MODEL, trained, store=store)
    return store


def test_a_worker_keeps_the_newest_challenger_newer_than_the_active_version(any_store, tmp_path):
    store = any_store
    kept = KeptModels(store.root, tmp_path / "worker-cache")
    kept.refresh()
    assert kept.versions()[NAME] == 1 and kept.challenger(NAME) is None
    publish_from(store, MODEL, 1, "challenger", rotate=True)  # 2
    kept.refresh()
    assert kept.challenger(NAME).version == 2 and kept.versions()[NAME] == 1 and store.active() == 1
    rows = MODEL.holdout().inputs[:20]
    assert kept.challenger(NAME).model.predict(rows) == answer_of(store, MODEL, 2, rows)
    publish_from(store, MODEL, 1, "rejected")  # 3: stored only, not a challenger
    publish_from(store, MODEL, 1, "challenger")  # 4: the newer challenger takes over
    kept.refresh()
    assert kept.challenger(NAME).version == 4 and kept.versions()[NAME] == 1
    store.update_metadata(4, lambda current: {**current, "shadow": {"outcome": "dropped"}})
    kept.refresh()
    assert kept.challenger(NAME).version == 2  # the newest still in shadow
    publish_from(store, MODEL, 1, "promoted")  # 5: active, newer than every challenger
    kept.refresh()
    assert kept.versions()[NAME] == 5 and kept.challenger(NAME) is None


@contextmanager
def requests_to(client):
    """The names of the S3 operations `client` calls in the block (botocore's before-call event)."""
    names: list[str] = []

    def count(model, **_):
        names.append(model.name)

    client.meta.events.register("before-call.s3", count)
    try:
        yield names
    finally:
        client.meta.events.unregister("before-call.s3", count)


def test_an_idle_poll_of_a_bucket_asks_for_one_listing_and_the_pin_per_model(bucket_url, tmp_path, trained):
    store = ModelStore(NAME, bucket_url, tmp_path / "publisher-cache")
    promotion.publish(MODEL, trained, store=store)
    publish_from(store, MODEL, 1, "rejected")  # 2: newer than the active version, read while looking for a challenger
    kept = KeptModels(bucket_url, tmp_path / "worker-cache")
    kept.refresh()
    with requests_to(store.backend.client) as asked:
        assert kept.refresh() == {}
    assert asked == ["ListObjectsV2", "GetObject"] * len(kept.stores), asked  # no manifest read again
    store.update_metadata(2, lambda current: {**current, "gate": {"decision": "promoted"}})
    assert kept.refresh() == {NAME: 2}  # a rewritten manifest has a new ETag: read again at the next poll


def test_a_challenger_whose_serving_file_was_tampered_with_is_never_loaded(store, tmp_path):
    challenger = publish_from(store, MODEL, 1, "challenger")
    challenger.serving_file.write_bytes(challenger.serving_file.read_bytes() + b"\0")
    kept = KeptModels(tmp_path)
    kept.refresh()
    assert kept.challenger(NAME) is None and kept.versions()[NAME] == 1
    number, problem = kept.challenger_problems[NAME]
    assert number == 2 and "sha256" in problem


# -- the decision, on two workers ---------------------------------------------------------------------
def worker(tmp_path, url: str | None = None, **overrides) -> Shadow:
    settings = Settings(
        models_dir=tmp_path,
        queue_url=url,
        shadow_min_labels=RULES.min_labels,
        shadow_max_labels=RULES.max_labels,
        shadow_alpha=RULES.alpha,
        shadow_check_interval=0.01,
        **overrides,
    )
    kept = KeptModels(tmp_path)
    kept.refresh()
    return Shadow(settings, kept, open_feedback(settings))


def serve_and_label(shadow: Shadow, rows: np.ndarray, truth: list[str]) -> None:
    """What the routes and the feedback do: the champion answers, a copy is queued, the scorer answers
    it, the label comes back."""
    ids = PredictionIds(b"secret", 3600)
    kept = shadow.kept.get(NAME)
    answers = kept.model.predict(rows)
    issued = [ids.issue(NAME, kept.version, answer) for answer in answers]
    shadow.offer(NAME, kept.version, answers, rows, issued)
    assert shadow.scorer.score(shadow.queue.take(10_000))
    for prediction_id, answer, label in zip(issued, answers, truth, strict=True):
        shadow.feedback.record(key_of(prediction_id), NAME, kept.version, answer, label, time.time())


def test_a_better_challenger_is_promoted_once_and_every_worker_serves_it(store, tmp_path, feedback_url):
    publish_from(store, MODEL, 1, "promoted", rotate=True)  # 2: the champion gone wrong
    publish_from(store, MODEL, 1, "challenger")  # 3: right where the champion is wrong
    first, second = worker(tmp_path, feedback_url), worker(tmp_path, feedback_url)
    assert first.kept.challenger(NAME).version == 3 and second.kept.challenger(NAME).version == 3
    rows = MODEL.holdout().inputs[:40]
    truth = answer_of(store, MODEL, 1, rows)
    serve_and_label(first, rows[:15], truth[:15])
    assert first.check() == [] and "5 more labelled requests" in first.report(NAME)["detail"]
    serve_and_label(second, rows[15:], truth[15:])
    first.forget(NAME)
    report = first.report(NAME)
    assert report["n_labels"] == 40 and report["accuracy"] == 1.0 and report["champion_accuracy"] == 0.0
    assert report["agreement"] == 0.0 and report["decision"] == "promoted"
    time.sleep(0.02)  # past the claim first's earlier check took (shadow_check_interval)
    decided = first.check() + second.check()  # both look: one decides
    assert [version.number for version in decided] == [3]
    shadow_entry = store.get(3).metadata["shadow"]
    assert shadow_entry["outcome"] == "promoted" and shadow_entry["by"] == "the live labels"
    assert shadow_entry["n_labels"] == 40 and "significantly better" in shadow_entry["reason"]
    assert store.active() == 3
    for each in (first, second):
        each.kept.refresh()
        assert each.kept.versions()[NAME] == 3 and each.kept.challenger(NAME) is None


def test_a_worse_challenger_is_dropped_and_stops_answering(store, tmp_path, feedback_url):
    publish_from(store, MODEL, 1, "challenger", rotate=True)  # 2: wrong wherever version 1 is right
    shadow = worker(tmp_path, feedback_url)
    rows = MODEL.holdout().inputs[:30]
    serve_and_label(shadow, rows, answer_of(store, MODEL, 1, rows))
    assert [version.number for version in shadow.check()] == [2]
    entry = store.get(2).metadata["shadow"]
    assert entry["outcome"] == "dropped" and "significantly worse" in entry["reason"] and entry["accuracy"] == 0.0
    shadow.kept.refresh()
    assert store.active() == 1 and shadow.kept.challenger(NAME) is None and shadow.report(NAME) is None
    shadow.offer(NAME, 1, ["Adelie"], rows[:1], ["x.y"])
    assert shadow.queue.rows == 0  # no challenger: no copies


def test_an_outcome_is_written_once_even_when_two_deciders_race(store, tmp_path):
    publish_from(store, MODEL, 1, "challenger")
    first, second = worker(tmp_path), worker(tmp_path)
    first.decide(NAME, "dropped", "an operator")
    with pytest.raises(LookupError, match="no longer in shadow"):
        second.decide(NAME, "promoted", "an operator")  # its kept challenger is stale: refused, not re-decided
    assert store.get(2).metadata["shadow"]["outcome"] == "dropped" and store.active() == 1
