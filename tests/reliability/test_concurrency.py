"""Concurrency on the Part 3 service (in-process; its trainer is a real child process). That jobs
submitted together keep one order is checked on both record backends in
tests/part3/test_part3_job_store.py; here:

- 8 fine-tune requests at once: 8 jobs, run one at a time in submission order, 8 new versions,
  each the parent of the next; every job's images and id end up in its version's metadata.
- 2,000 predictions from several threads while 3 new versions are published: no errors, and every
  answer names a version the store has (and the answers move on to the new versions).
"""

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from bad_requests import digit_png
from part3_support import API_KEY, running_service, wait_for_job, wait_until

from app import promotion
from app.models import mnist
from app.store import ModelStore

KEY = {"X-API-Key": API_KEY}
FINE_TUNES = 8
PREDICTIONS = 2000
PUBLISHES = 3
CLIENT_THREADS = 4


@pytest.fixture(scope="module")
def client(models_dir):
    with running_service(models_dir, api_key=API_KEY) as client:
        yield client


def labelled_uploads(count: int, offset: int) -> list[tuple[str, tuple[str, bytes, str]]]:
    """`count` of the ten test images, renamed with their label as training files."""
    return [("files", (f"img{offset}{n:03d}_{n % 10}.png", digit_png(n % 10), "image/png")) for n in range(count)]


def served_digit_version(client) -> int:
    return client.post("/predict/", files={"file": ("x.png", digit_png(4), "image/png")}).json()["version"]


@pytest.mark.slow
def test_eight_fine_tunes_at_once_make_eight_chained_versions(client, models_dir):
    store = ModelStore("mnist", models_dir)
    start = store.active()
    barrier = threading.Barrier(FINE_TUNES)

    def submit(n: int):
        uploads = labelled_uploads(10 + n, n)  # a different number of images per job, to trace each
        barrier.wait()  # all eight requests in flight together
        return client.post("/train/", files=uploads, data={"epochs": "1"}, headers=KEY)

    with ThreadPoolExecutor(FINE_TUNES) as pool:
        responses = list(pool.map(submit, range(FINE_TUNES)))
    assert [r.status_code for r in responses] == [202] * FINE_TUNES, [r.text for r in responses]
    accepted = [r.json() for r in responses]
    assert len({job["id"] for job in accepted}) == FINE_TUNES

    finished = {job["id"]: wait_for_job(client.get, job["id"]) for job in accepted}
    assert all(job["status"] == "succeeded" for job in finished.values()), finished
    in_order = [job for job in client.get("/jobs/").json() if job["id"] in finished]
    assert len(in_order) == FINE_TUNES
    # One at a time, in submission order, each fine-tuning the version the previous one published.
    assert [job["parent"] for job in in_order] == [start] + [job["version"] for job in in_order[:-1]]
    assert [job["version"] for job in in_order] == list(range(start + 1, start + FINE_TUNES + 1))
    for before, after in itertools.pairwise(in_order):
        assert before["finished_at"] <= after["started_at"]
    assert store.versions()[-FINE_TUNES:] == [job["version"] for job in in_order]
    for job in in_order:  # nothing lost: each version names its job, its parent and the images it learnt
        metadata = store.get(job["version"]).metadata
        assert metadata["data"]["job"] == job["id"]
        assert metadata["parent"] == job["parent"]
        assert metadata["data"]["n_uploaded"] == job["n_images"]
    assert sorted(job["n_images"] for job in in_order) == [10 + n for n in range(FINE_TUNES)]
    wait_until(lambda: served_digit_version(client) == start + FINE_TUNES, "the last version serves")


@pytest.mark.slow
def test_predictions_keep_answering_while_versions_are_published(client, models_dir):
    store = ModelStore("mnist", models_dir)
    model = store.load(store.active(), mnist.load)
    done = 0
    done_lock = threading.Lock()

    def predict(n: int):
        nonlocal done
        if n % 4 == 0:  # a penguin now and then: the other model must keep answering too
            response = client.get("/predict/", params={"bill": "40.3", "flipper": "195"})
            version = None
        else:
            response = client.post("/predict/", files={"file": (f"{n}.png", digit_png(n % 10), "image/png")})
            version = response.json().get("version") if response.status_code == 200 else None
        with done_lock:
            done += 1
        return response.status_code, version

    def publish_during_predictions():
        for k in range(1, PUBLISHES + 1):
            wait_until(lambda k=k: done >= k * PREDICTIONS // (PUBLISHES + 1), "predictions go on")
            metadata = {"parent": store.active(), "parameters": {"republished": k}}
            number = promotion.publish(mnist.MODEL, mnist.TrainingResult(model), metadata, store).number
            # wait until the service serves it, so the predictions that follow see it
            wait_until(
                lambda number=number: client.get("/health/ready").json()["models"]["mnist"] == number,
                "the new version serves",
            )

    with ThreadPoolExecutor(1) as background, ThreadPoolExecutor(CLIENT_THREADS) as pool:
        publisher = background.submit(publish_during_predictions)
        answers = list(pool.map(predict, range(PREDICTIONS)))
        publisher.result()  # its errors, if any, fail the test here

    assert len(answers) == PREDICTIONS
    errors = [status for status, _ in answers if status != 200]
    assert not errors, f"{len(errors)} errors: {sorted(set(errors))}"
    existing = set(store.versions())
    seen = {version for _, version in answers if version is not None}
    assert seen <= existing, seen - existing
    assert len(seen) >= PUBLISHES, f"the answers should move on with each new version, saw {seen}"
