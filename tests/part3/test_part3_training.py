"""Training jobs end to end, in-process, with real trainer child processes (slow).

The service here has an API key, so these tests also cover the 401s. Jobs train one epoch on
data/train_img.zip; the point is the bookkeeping (queue order, parents, versions, failures), not
the accuracy.
"""

import logging
import os
import signal

import pytest
from part3_support import API_KEY, digit_file, metric, running_service, training_zip, wait_for_job, wait_until

from app.store import ModelStore

pytestmark = pytest.mark.slow
KEY = {"X-API-Key": API_KEY}
LIFECYCLE = ["queued", "running", "succeeded"]


@pytest.fixture(scope="module")
def client(models_dir):
    with running_service(models_dir, api_key=API_KEY) as client:
        yield client


def served_version(client) -> int:
    return client.post("/predict/", files={"file": digit_file(4)}).json()["version"]


def submit_fine_tune(client, **data) -> dict:
    response = client.post("/train/", files={"files": training_zip()}, data=data, headers=KEY)
    assert response.status_code == 202, response.text
    return response.json()


@pytest.mark.parametrize(
    ("method", "path", "upload"),
    [("post", "/train/", True), ("post", "/retrain/", False), ("post", "/models/mnist/1/activate", False)],
)
@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": API_KEY + " "}, {"X-API-Key": ""}])
def test_model_changing_routes_refuse_a_missing_or_wrong_key(client, models_dir, method, path, upload, headers):
    before = ModelStore("mnist", models_dir).versions()
    files = {"files": digit_file(1)} if upload else None
    response = client.request(method.upper(), path, files=files, headers=headers)
    assert response.status_code == 401, response.text
    assert "X-API-Key" in response.json()["detail"]
    assert API_KEY not in response.text
    assert client.get("/jobs/").json() == []
    assert ModelStore("mnist", models_dir).versions() == before


def test_reading_routes_need_no_key(client):
    for path in ("/", "/info/", "/jobs/", "/models/", "/health/ready", "/metrics", "/upload/", "/docs"):
        assert client.get(path).status_code == 200, path


def test_job_lifecycle_queue_order_and_parents(client, models_dir, caplog):
    caplog.set_level(logging.DEBUG)
    start_version = served_version(client)
    first = submit_fine_tune(client)
    second = submit_fine_tune(client, epochs="2")
    assert first["status"] == second["status"] == "queued"
    assert (first["kind"], first["n_images"]) == ("fine-tune", 1000)
    assert first["url"] == f"/jobs/{first['id']}"

    # Training runs in a child process: predictions keep answering meanwhile.
    assert client.post("/predict/", files={"file": digit_file(7)}).status_code == 200
    seen: list[str] = []
    first_done = wait_for_job(client.get, first["id"], seen)
    second_done = wait_for_job(client.get, second["id"])

    # Forward only, each state once, ending in success (polling may miss a short state, never reorder).
    assert seen == sorted(set(seen), key=LIFECYCLE.index) and seen[-1] == "succeeded", seen
    for job, epochs in ((first_done, 1), (second_done, 2)):
        assert job["status"] == "succeeded", job
        assert (job["epoch"], job["epochs"]) == (epochs, epochs)
        assert isinstance(job["loss"], float) and 0 <= job["accuracy"] <= 1
        assert job["started_at"] <= job["finished_at"]
    # One at a time, in order, each from the newest version.
    assert first_done["parent"] == start_version
    assert second_done["parent"] == first_done["version"] > start_version
    assert first_done["finished_at"] <= second_done["started_at"]
    store = ModelStore("mnist", models_dir)
    assert store.latest() == second_done["version"]
    metadata = store.get(second_done["version"]).metadata
    assert (metadata["parent"], metadata["data"]["job"]) == (first_done["version"], second["id"])
    assert [job["id"] for job in client.get("/jobs/").json()][-2:] == [first["id"], second["id"]]
    # Every worker swaps to the new version on its own; here, the one worker.
    wait_until(lambda: served_version(client) == second_done["version"], "the new version serves")
    assert client.get("/info/").json()["Num of trained models"] == len(store.versions())
    assert API_KEY not in caplog.text


def test_rollback_and_roll_forward(client, models_dir):
    store = ModelStore("mnist", models_dir)
    newest, oldest = store.latest(), store.versions()[0]
    back = client.post(f"/models/mnist/{oldest}/activate", headers=KEY)
    assert back.status_code == 200, back.text
    assert back.json()["active"] == oldest
    assert served_version(client) == oldest  # the answering worker swaps before replying
    assert client.get("/models/").json()["mnist"]["active"] == oldest
    forward = client.post(f"/models/mnist/{newest}/activate", headers=KEY)
    assert forward.json()["active"] == newest and served_version(client) == newest


def test_a_killed_trainer_fails_its_job_and_the_service_keeps_serving(client, models_dir):
    store = ModelStore("mnist", models_dir)
    versions, serving = store.versions(), served_version(client)
    job = submit_fine_tune(client)
    running = wait_until(
        lambda: (body := client.get(f"/jobs/{job['id']}").json())["trainer_pid"] and body, "the trainer starts"
    )
    os.kill(running["trainer_pid"], signal.SIGKILL)
    failed = wait_for_job(client.get, job["id"])
    assert failed["status"] == "failed"
    assert "SIGKILL" in failed["error"]
    assert store.versions() == versions
    assert served_version(client) == serving


def test_retrain_from_scratch_without_uploads(client, models_dir):
    response = client.post("/retrain/", headers=KEY, data={"epochs": "1"})
    assert response.status_code == 202, response.text
    assert (response.json()["kind"], response.json()["n_images"]) == ("retrain", 0)
    done = wait_for_job(client.get, response.json()["id"])
    assert done["status"] == "succeeded", done
    assert done["parent"] is None
    metadata = ModelStore("mnist", models_dir).get(done["version"]).metadata
    assert metadata["parent"] is None and metadata["data"]["source"] == "bundled"
    assert metadata["metrics"]["n_test"] > 0


def test_metrics_count_jobs_by_status_and_training_time(client):
    jobs = client.get("/jobs/").json()
    # A duration is recorded when the trainer process has exited, just after it reported its result.
    text = wait_until(
        lambda: (
            (text := client.get("/metrics").text)
            and metric(text, "workshop_training_duration_seconds_count", kind="retrain", status="succeeded")
            and text
        ),
        "the retrain's duration is recorded",
    )
    for status in ("succeeded", "failed"):
        assert metric(text, "workshop_training_jobs", status=status) == sum(job["status"] == status for job in jobs)
    assert metric(text, "workshop_training_duration_seconds_count", kind="fine-tune", status="succeeded") >= 2
    assert metric(text, "workshop_training_duration_seconds_count", kind="fine-tune", status="failed") >= 1
    assert metric(text, "workshop_training_duration_seconds_sum", kind="retrain", status="succeeded") > 0
