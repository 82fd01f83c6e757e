"""The feedback store's two backends (SQLite in the models folder, a real Redis): the one the settings
name, concurrent writers, the conflict rule, the claims, and the same answers from both for one random
sequence of calls. Then a distributed service keeping its feedback in Redis, and its 503 without it
(POST /feedback/; GET /models/ answers on)."""

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import redis
from part3_support import copy_store, digit_file, running_service

from app.models import mnist, penguins
from app.part3.feedback_backends import open_feedback
from app.part3.feedback_records import ConflictingFeedback, FeedbackStore
from app.part3.feedback_redis import RedisFeedbackStore
from app.part3.feedback_sqlite import FEEDBACK_FILE, SqliteFeedbackStore
from app.part3.settings import Settings
from app.part3.shadow_queue import ShadowAnswer
from tests.redis_support import RedisServer


def store_at(tmp_path, url: str | None, keep: int = 1000) -> FeedbackStore:
    return open_feedback(Settings(models_dir=tmp_path, queue_url=url, feedback_kept=keep))


def digit(number: int) -> np.ndarray:
    """A digit's row that says which number it is (two pixels: up to 65,535)."""
    row = np.zeros((28, 28), np.uint8)
    row[0, :2] = divmod(number, 256)
    return row


def number_of(row: np.ndarray) -> int:
    return int(row[0, 0]) * 256 + int(row[0, 1])


def test_the_settings_name_the_backend_and_the_503_names_redis_without_its_password(tmp_path):
    assert isinstance(store_at(tmp_path, None), SqliteFeedbackStore)
    remote = store_at(tmp_path, "redis://:hush@127.0.0.1:6390/2")  # nothing connects until it is used
    assert (
        isinstance(remote, RedisFeedbackStore) and remote.where == "the feedback in Redis at redis://127.0.0.1:6390/2"
    )
    assert not (tmp_path / FEEDBACK_FILE).exists()


def test_one_label_per_prediction(tmp_path, feedback_url):
    store = store_at(tmp_path, feedback_url)
    assert store.record("k", "mnist", 1, "7", "7", time.time(), digit(1)) is True
    assert store.record("k", "mnist", 1, "7", "7", time.time(), digit(2)) is False  # a retry: nothing changes
    with pytest.raises(ConflictingFeedback, match="already has feedback with label '7'"):
        store.record("k", "mnist", 1, "7", "3", time.time())
    with pytest.raises(ConflictingFeedback):  # the key is one prediction's, whatever model is named
        store.record("k", "penguins", 1, "Adelie", "Gentoo", time.time())
    assert store.count() == 1 and number_of(store.labelled_rows(mnist.MODEL).inputs[0]) == 1
    assert store.live_accuracy("mnist", 10)[1].accuracy == 1.0


def test_two_clients_recording_at_once_lose_nothing_and_keep_the_newest(tmp_path, feedback_url):
    def at_once(clients: list[FeedbackStore], numbers: list[list[int]]) -> list[bool]:
        start = threading.Barrier(len(clients))

        def send(index: int) -> list[bool]:
            start.wait()
            store = clients[index]
            return [store.record(f"k{n}", "mnist", 1, "1", str(n % 10), time.time(), digit(n)) for n in numbers[index]]

        with ThreadPoolExecutor(len(clients)) as pool:
            return [outcome for batch in pool.map(send, range(len(clients))) for outcome in batch]

    shared = list(range(1000, 1040))  # both send these (retries): each is stored once
    roomy = [store_at(tmp_path, feedback_url, keep=1000) for _ in range(2)]
    assert sum(at_once(roomy, [[*range(0, 120), *shared], [*shared, *range(120, 240)]])) == 280
    rows = roomy[0].labelled_rows(mnist.MODEL)
    assert rows.seqs.tolist() == list(range(1, 281)) and roomy[1].count("mnist") == 280  # no gap, no double
    assert sorted(number_of(row) for row in rows.inputs) == [*range(240), *shared]
    assert [number_of(row) % 10 for row in rows.inputs] == rows.labels.tolist()

    keep = 150
    bounded = [store_at(tmp_path, feedback_url, keep) for _ in range(2)]
    assert all(at_once(bounded, [list(range(2000, 2100)), list(range(3000, 3100))]))
    rows = bounded[1].labelled_rows(mnist.MODEL)
    assert rows.seqs.tolist() == list(range(481 - keep, 481))  # the newest `keep` of the model's 480 remain
    assert len({number_of(row) for row in rows.inputs}) == keep and bounded[0].count("mnist") == keep
    assert bounded[0].live_accuracy("mnist", 1000)[1].n_labels == keep and bounded[1].newest_labelled("mnist") == 480


def test_one_claim_per_interval_across_clients(tmp_path, feedback_url):
    first, second = store_at(tmp_path, feedback_url), store_at(tmp_path, feedback_url)
    assert first.claim("shadow penguins", 3600) and not second.claim("shadow penguins", 3600)
    assert not first.claim("shadow penguins", 3600) and second.claim_retrain("mnist", 3600)  # each name its own
    with ThreadPoolExecutor(4) as pool:
        won = list(pool.map(lambda n: (first, second)[n % 2].claim("race", 3600), range(8)))
    assert sum(won) == 1
    assert first.claim("soon", 0.05) and not second.claim("soon", 0.05)
    time.sleep(0.1)  # past the interval: the next caller claims it
    assert second.claim("soon", 0.05) and not first.claim("soon", 0.05)


# -- the same answers from both backends ------------------------------------------------------------
MODELS = {model.name: model for model in (mnist.MODEL, penguins.MODEL)}


def random_row(rng: random.Random, name: str) -> np.ndarray | None:
    if rng.random() < 0.3:
        return None
    if name == "mnist":
        return np.array([rng.randrange(256) for _ in range(28 * 28)], np.uint8).reshape(28, 28)
    return np.array([rng.uniform(30, 60), rng.uniform(170, 230)])


def outcome(record, *arguments):
    try:
        return record(*arguments)
    except ConflictingFeedback as error:
        return ("conflict", str(error))


def readings(store: FeedbackStore, rng: random.Random, seen: int) -> list:
    """What a caller may read, with the same random arguments for each backend."""
    found: list = [store.count()]
    for name, model in MODELS.items():
        left_out = rng.sample(range(1, seen + 2), min(seen + 1, rng.randrange(4)))
        after, through = rng.choice([None, rng.randrange(seen + 2)]), rng.choice([None, rng.randrange(seen + 2)])
        rows = store.labelled_rows(model, after, through)
        found += [
            store.count(name),
            store.live_accuracy(name, rng.randrange(1, 12), left_out),
            rows.inputs.tobytes(),
            rows.labels.tolist(),
            rows.seqs.tolist(),
            store.newest_labelled(name),
            store.labelled_since(name, rng.choice([None, rng.randrange(seen + 2)])),
        ]
    return found


def test_both_backends_answer_alike_for_one_random_sequence_of_calls(tmp_path, redis_server):
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    stores = [store_at(tmp_path, None, keep=25), store_at(tmp_path, redis_server.url, keep=25)]
    shadows = [store.shadow_records(keep=15) for store in stores]
    plan = random.Random(2026)
    keys = [f"k{n}" for n in range(80)]
    for step in range(400):
        name = plan.choice(list(MODELS))
        classes = MODELS[name].classes
        if plan.random() < 0.2:
            answers = [
                ShadowAnswer(
                    plan.choice(keys), name, plan.randrange(1, 3), plan.choice(classes), 3, plan.choice(classes)
                )
                for _ in range(plan.randrange(1, 6))
            ]
            for shadow in shadows:
                shadow.record(answers)
        else:
            key, version, predicted, label = plan.choice(keys), plan.randrange(1, 3), *plan.sample(classes, 2)
            row, now = random_row(plan, name), time.time()
            label = plan.choice([predicted, label])
            call = (key, name, version, predicted, label, now, row)
            results = [outcome(store.record, *call) for store in stores]
            assert results[0] == results[1], (step, results)
        if step % 10 == 9:
            seed = plan.random()
            assert readings(stores[0], random.Random(seed), step) == readings(stores[1], random.Random(seed), step), (
                step
            )
            for name in MODELS:
                for champion in (1, 2):
                    sqlite, remote = (shadow.labelled(name, 3, champion) for shadow in shadows)
                    assert sqlite == remote and shadows[0].agreement(name, 3, champion) == shadows[1].agreement(
                        name, 3, champion
                    )
                assert shadows[0].count(name) == shadows[1].count(name)
    assert 0 < stores[0].count() <= 50 and len(shadows[0].labelled("mnist", 3, 1).labels) > 0  # the plan reached both


# -- a distributed service ---------------------------------------------------------------------------
def test_a_distributed_service_keeps_its_feedback_in_redis_and_answers_503_without_it(seeded_store, tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    models = copy_store(seeded_store, tmp_path / "models")
    try:
        with running_service(models, queue_url=server.url) as client:
            first, second = (client.post("/predict/", files={"file": digit_file(7)}).json() for _ in range(2))
            sent = client.post("/feedback/", json={"prediction_id": first["prediction_id"], "label": 7})
            assert sent.status_code == 200 and sent.json()["recorded"] is True, sent.text
            live = next(v["live"] for v in client.get("/models/").json()["mnist"]["versions"] if v["version"] == 1)
            assert live["n_labels"] == 1 and live["accuracy"] == float(first["result"] == "7")
            assert store_at(tmp_path, server.url).count("mnist") == 1 and not (models / FEEDBACK_FILE).exists()
            server.stop()
            refused = client.post("/feedback/", json={"prediction_id": second["prediction_id"], "label": 7})
            assert refused.status_code == 503, refused.text
            assert f"the feedback in Redis at {server.url} is unreachable" in refused.json()["detail"]
            listed = client.get("/models/")  # answers on, the figures that come from the feedback unknown
            assert listed.status_code == 200, listed.text
            policy = listed.json()["mnist"]["retrain_policy"]
            assert policy["state"] == "unknown" and f"the feedback in Redis at {server.url}" in policy["detail"]
            assert client.get("/metrics").status_code == 200
            server.start()  # its append-only file kept the first label; the second one can come now
            again = client.post("/feedback/", json={"prediction_id": second["prediction_id"], "label": 7})
            assert again.status_code == 200 and again.json()["recorded"] is True, again.text
            assert store_at(tmp_path, server.url).count("mnist") == 2
    finally:
        server.stop()
