"""First start on an empty store, readiness, and later starts (slow: one real first training)."""

import contextlib

import pytest
from fastapi.testclient import TestClient
from part3_support import digit_file, running_service, service_settings, wait_for_job, wait_until

from app.part3.main import create_app
from app.store import ModelStore
from tests.redis_support import RedisServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def empty_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("empty") / "models"


def test_two_workers_on_an_empty_store_train_once_and_become_ready(empty_dir):
    with contextlib.ExitStack() as stack:
        # Two apps on one folder: what two workers or two containers on one volume do.
        workers = [stack.enter_context(TestClient(create_app(service_settings(empty_dir)))) for _ in range(2)]
        first = workers[0]
        assert first.get("/health/live").status_code == 200
        not_ready = first.get("/health/ready")
        assert not_ready.status_code == 503
        assert not_ready.headers["retry-after"]
        assert not_ready.json()["models"]["mnist"] is None
        assert "mnist" in not_ready.json()["detail"]
        early = first.post("/predict/", files={"file": digit_file(2)})
        assert early.status_code == 503 and "not loaded" in early.json()["detail"]

        jobs = wait_until(lambda: first.get("/jobs/").json(), "the first training is queued")
        assert [job["kind"] for job in jobs] == ["initial"]
        waiting = first.get("/health/ready").json()
        if waiting["models"]["mnist"] is None:  # still training: readiness says which job to follow
            assert f"the first mnist training (job {jobs[0]['id']})" in waiting["detail"]
        done = wait_for_job(first.get, jobs[0]["id"])
        assert done["status"] == "succeeded", done
        for worker in workers:
            wait_until(lambda worker=worker: worker.get("/health/ready").status_code == 200, "ready")
            assert worker.get("/health/ready").json()["models"] == {"penguins": 1, "mnist": done["version"]}
            assert worker.post("/predict/", files={"file": digit_file(2)}).json()["version"] == done["version"]
        assert [job["kind"] for job in first.get("/jobs/").json()] == ["initial"]  # one job for both
    assert ModelStore("mnist", empty_dir).versions() == [done["version"]]
    assert ModelStore("penguins", empty_dir).versions() == [1]


def test_a_later_start_loads_the_saved_versions_without_training(empty_dir):
    before = {name: ModelStore(name, empty_dir).versions() for name in ("penguins", "mnist")}
    with TestClient(create_app(service_settings(empty_dir))) as client:
        wait_until(lambda: client.get("/health/ready").status_code == 200, "ready")
        assert client.get("/health/ready").json()["models"] == {name: numbers[-1] for name, numbers in before.items()}
        assert len(client.get("/jobs/").json()) == 1  # still only the first start's job
    assert {name: ModelStore(name, empty_dir).versions() for name in before} == before


def test_an_api_started_before_its_redis_waits_for_it_and_says_why(models_dir, tmp_path):
    """Distributed mode: the feedback secret and the jobs are in Redis; a replica that starts first is
    not ready, names Redis, and becomes ready once Redis answers (no restart needed)."""
    redis_server = RedisServer(tmp_path / "redis")  # not started yet: its port refuses connections
    with running_service(models_dir, wait_ready=False, queue_url=redis_server.url) as client:
        detail = wait_until(
            lambda: (
                (answer := client.get("/health/ready")).status_code == 503
                and "unreachable" in (answer.json()["detail"] or "")
                and answer.json()["detail"]
            ),
            "the replica says Redis is unreachable",
        )
        assert f"redis://127.0.0.1:{redis_server.port}" in detail, detail
        redis_server.start()
        try:
            wait_until(lambda: client.get("/health/ready").status_code == 200, "the replica is ready once Redis is up")
        finally:
            redis_server.stop()
