"""A practitioner's own model, exactly as the README's "Serve your own model" writes it, in a package of
its own outside the repository (nothing in the repository is edited): the service trains it as a
queued job, the gate promotes it, both workers hot-swap its versions, it answers the Open Inference
Protocol, takes feedback with its input and trains on it, reports drift, rolls back, and a job of it
whose trainer died after publishing is settled as succeeded."""

import re
import sys

import numpy as np
import pytest
from part3_support import copy_store, serving_process, wait_for_job, wait_until

from app.paths import PROJECT_ROOT

pytestmark = pytest.mark.slow


def readme_model() -> str:
    """The README's wine package: the code block that starts with `# wine_model/__init__.py`."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    (code,) = re.findall(r"```python\n# wine_model/__init__\.py\n(.*?)```", readme, re.DOTALL)
    return code


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    folder = tmp_path_factory.mktemp("practitioner")
    (folder / "wine_model").mkdir()
    (folder / "wine_model" / "__init__.py").write_text(readme_model())
    return folder


@pytest.fixture(scope="module")
def service(seeded_store, package, tmp_path_factory):
    models = copy_store(seeded_store, tmp_path_factory.mktemp("wine") / "models")
    env = {
        "PYTHONPATH": str(package),
        "WORKSHOP_MODEL_PACKAGES": "wine_model",
        "WORKSHOP_DRIFT_MIN_WINDOW": "40",
        "WORKSHOP_DRIFT_WINDOW": "80",
    }
    with serving_process(models, workers=2, env=env) as service:
        yield service


@pytest.fixture(scope="module")
def wine(package):
    """The same package, imported here: the rows and labels the tests send."""
    sys.path.insert(0, str(package))
    try:
        import wine_model
    finally:
        sys.path.remove(str(package))
    return wine_model


def both_workers_serve(service, version: int) -> None:
    """Every worker answering /health/ready serves `version` of wine (two distinct pids seen)."""
    seen: dict[int, int | None] = {}

    def every_worker_has_it():
        answer = service.get("/health/ready", headers={"Connection": "close"}).json()  # a new connection: any worker
        seen[answer["pid"]] = answer["models"].get("wine")
        return len(seen) >= 2 and all(number == version for number in seen.values())

    wait_until(every_worker_has_it, f"both workers serve wine version {version}", step=0.05)


def infer(service, rows: np.ndarray) -> dict:
    body = {"inputs": [{"name": "measurements", "shape": list(rows.shape), "datatype": "FP64", "data": rows.tolist()}]}
    response = service.client.post("/v2/models/wine/infer", json=body)
    assert response.status_code == 200, response.text
    return {output["name"]: output["data"] for output in response.json()["outputs"]}


def test_the_first_start_trains_it_as_a_queued_job_through_the_gate(service):
    listing = service.get("/models/").json()["wine"]
    assert listing["trainable"] and listing["input"] == {"name": "measurements", "datatype": "FP64", "shape": [-1, 13]}
    (first,) = listing["versions"]
    assert first["gate"]["decision"] == "promoted" and first["gate"]["floor"] == 0.9 and first["status"] == "active"
    initial = [job for job in service.get("/jobs/").json() if job["kind"] == "initial"]
    assert initial and initial[-1]["status"] == "succeeded" and initial[-1]["versions"] == {"wine": 1}
    both_workers_serve(service, 1)


def test_a_job_with_its_declared_parameters_hot_swaps_on_both_workers(service):
    refused = service.client.post("/models/wine/jobs", json={"kind": "retrain", "parameters": {"c": -1}})
    assert refused.status_code == 422 and "c" in refused.json()["detail"]
    accepted = service.client.post("/models/wine/jobs", json={"kind": "retrain", "parameters": {"c": 0.5}})
    assert accepted.status_code == 202, accepted.text
    job = wait_for_job(service.get, accepted.json()["id"])
    assert (job["status"], job["model"], job["version"], job["promoted"]) == ("succeeded", "wine", 2, True), job
    assert job["parameters"] == {"c": 0.5}
    both_workers_serve(service, 2)


def test_it_answers_the_protocol_takes_feedback_and_trains_on_it(service, wine):
    _, inputs, _, labels = wine.split()
    answered = infer(service, inputs)
    accuracy = np.mean(np.asarray(answered["label"]) == np.asarray(wine.MODEL.classes)[labels])
    assert accuracy >= 0.9 and np.reshape(answered["probabilities"], (-1, 3)).shape == (len(labels), 3)
    for row, label, prediction_id in list(zip(inputs, labels, answered["prediction_id"], strict=True))[:12]:
        sent = service.client.post(
            "/feedback/",
            json={"prediction_id": prediction_id, "label": wine.MODEL.classes[label], "input": row.tolist()},
        )
        assert sent.status_code == 200 and sent.json()["input_kept"], sent.text
    another_row = service.client.post(
        "/feedback/", json={"prediction_id": answered["prediction_id"][20], "label": "class_0", "input": [0.0] * 13}
    )
    assert another_row.status_code == 422 and "not the one predicted" in another_row.json()["detail"]
    accepted = service.client.post("/models/wine/jobs", json={"kind": "fine-tune", "feedback": True})
    # It trains on the oldest 9 of the 12: the newest 30 % (WORKSHOP_LIVE_HOLDOUT_SHARE) is its live holdout.
    assert accepted.status_code == 202 and accepted.json()["n_images"] == 9, accepted.text
    job = wait_for_job(service.get, accepted.json()["id"])
    assert job["status"] == "succeeded" and job["parent"] == 2 and job["promoted"], job
    both_workers_serve(service, job["version"])


def test_it_reports_drift_on_its_columns(service, wine):
    _, inputs, _, _ = wine.split()
    rng = np.random.default_rng(0)
    for _ in range(6):  # every worker's window fills with wines unlike the holdout's
        infer(service, inputs[rng.choice(len(inputs), 40)] * 1.6)

    def drifted():
        drift = service.get("/models/").json()["wine"]["drift"]
        return drift if drift["status"] == "drift" else None

    drift = wait_until(drifted, "a worker reports wine's drift")
    assert drift["signals"]["alcohol"]["significant"] and "proline" in drift["signals"]


def test_it_rolls_back_on_both_workers(service):
    rolled = service.client.post("/models/wine/1/activate")
    assert rolled.status_code == 200 and rolled.json()["active"] == 1, rolled.text
    both_workers_serve(service, 1)


def test_a_job_of_it_whose_trainer_died_after_publishing_is_settled_as_succeeded(package, tmp_path, monkeypatch):
    from app.part3.job_records import SqliteJobRecords
    from app.part3.job_status import now
    from app.part3.recovery import settle
    from app.store import ModelStore

    monkeypatch.syspath_prepend(str(package))
    monkeypatch.setenv("WORKSHOP_MODEL_PACKAGES", "wine_model")
    jobs = SqliteJobRecords(tmp_path / "queue.sqlite3", tmp_path)
    published = jobs.update(jobs.submit("retrain", "wine", {"c": 1.0}).id, status="running", heartbeat_at=now())
    lost = jobs.update(jobs.submit("retrain", "wine", {"c": 1.0}).id, status="running", heartbeat_at=now())

    def save(folder):
        (folder / "model.skops").write_bytes(b"weights")
        return "model.skops"

    version = ModelStore("wine", tmp_path).publish(save, {"data": {"job": published.id}})
    assert settle(jobs, tmp_path, published, "its trainer died").version == version.number
    assert (jobs.get(published.id).status, settle(jobs, tmp_path, lost, "its trainer died").status) == (
        "succeeded",
        "failed",
    )
