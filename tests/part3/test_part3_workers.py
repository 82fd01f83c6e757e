"""Two real workers (`fastapi run --workers 2`) on one store: one training at a time across them,
a job's status the same from both, and both serving each new version without a restart (slow).

Which worker answers is the kernel's choice, so every request here opens a new connection and the
X-Worker-PID header tells who answered; loops go on until both workers have been seen.
"""

import pytest
from part3_support import ServiceProcess, copy_store, digit_file, metric, training_zip, wait_until

pytestmark = pytest.mark.slow
NEW_CONNECTION = {"Connection": "close"}


@pytest.fixture(scope="module")
def service(seeded_store, tmp_path_factory):
    folder = tmp_path_factory.mktemp("workers")
    models_dir = copy_store(seeded_store, folder / "models")
    service = ServiceProcess(models_dir, workers=2, env={"PROMETHEUS_MULTIPROC_DIR": str(folder / "prometheus")})
    try:
        yield service
    finally:
        service.stop()


def ask(service, method: str, path: str, **kwargs):
    response = service.client.request(method, path, headers=NEW_CONNECTION, **kwargs)
    return int(response.headers["x-worker-pid"]), response


def from_both_workers(service, method: str, path: str, accept=lambda response: True, **kwargs) -> dict:
    """{pid: response} once two different workers have answered acceptably."""
    answers = {}

    def both():
        pid, response = ask(service, method, path, **kwargs)
        if accept(response):
            answers[pid] = response
        return len(answers) >= 2

    wait_until(both, f"two workers answer {path}", step=0.05)
    return answers


@pytest.fixture(scope="module")
def workers(service):
    wait_until(lambda: service.answers("/health/live"), "the service listens")
    ready = from_both_workers(service, "GET", "/health/ready", accept=lambda r: r.status_code == 200)
    for pid, response in ready.items():
        assert response.json()["pid"] == pid
        assert response.json()["models"] == {"penguins": 1, "mnist": 1}
    return sorted(ready)


def test_two_workers_train_one_at_a_time_and_both_serve_the_result(service, workers):
    submitted = [ask(service, "POST", "/train/", files={"files": training_zip()}) for _ in range(2)]
    for _, response in submitted:
        assert response.status_code == 202, response.text
    first_id, second_id = (response.json()["id"] for _, response in submitted)

    def finished(job_id):
        _, response = ask(service, "GET", f"/jobs/{job_id}")
        return response.json() if response.json()["status"] in ("succeeded", "failed") else None

    first = wait_until(lambda: finished(first_id), "the first job ends")
    second = wait_until(lambda: finished(second_id), "the second job ends")
    assert first["status"] == second["status"] == "succeeded", (first, second)
    # One training at a time across the workers, in order, each from the newest version.
    assert first["finished_at"] <= second["started_at"]
    assert (first["parent"], second["parent"]) == (1, first["version"])

    # The job's status reads the same from both workers.
    answers = from_both_workers(service, "GET", f"/jobs/{second_id}")
    assert [response.json() for response in answers.values()] == [second, second]

    # Both workers serve the new version, without a restart.
    serving = from_both_workers(
        service,
        "POST",
        "/predict/",
        files={"file": digit_file(5)},
        accept=lambda r: r.json()["version"] == second["version"],
    )
    assert sorted(serving) == workers
    models = from_both_workers(service, "GET", "/health/ready")
    assert all(response.json()["models"]["mnist"] == second["version"] for response in models.values())


def test_metrics_add_up_every_workers_samples(service, workers):
    version = str(ask(service, "GET", "/health/ready")[1].json()["models"]["mnist"])

    def predictions():
        return metric(
            ask(service, "GET", "/metrics")[1].text, "workshop_predictions_total", model="mnist", version=version
        )

    before = predictions()
    answered_by = []

    def both_predicted():
        answered_by.append(ask(service, "POST", "/predict/", files={"file": digit_file(len(answered_by) % 10)})[0])
        return set(answered_by) == set(workers)

    wait_until(both_predicted, "both workers predict", step=0.01)
    scrapes = from_both_workers(service, "GET", "/metrics")
    for response in scrapes.values():  # either worker reports the total of both
        assert metric(response.text, "workshop_predictions_total", model="mnist", version=version) == before + len(
            answered_by
        )
        assert metric(response.text, "workshop_training_jobs", status="succeeded") == 2
        assert (
            metric(response.text, "workshop_training_duration_seconds_count", kind="fine-tune", status="succeeded") == 2
        )


def test_feedback_is_taken_by_any_worker_and_both_report_the_same_live_accuracy(service, workers):
    for _ in range(100):  # until a prediction of one worker gets its feedback through the other
        predicted_by, prediction = ask(service, "GET", "/predict/", params={"bill": "40.3", "flipper": "195"})
        body = {"prediction_id": prediction.json()["prediction_id"], "label": "Adelie"}
        taken_by, feedback = ask(service, "POST", "/feedback/", json=body)
        assert feedback.status_code == 200, feedback.text
        if taken_by != predicted_by:
            break
    assert taken_by != predicted_by, "the kernel sent every request to one worker"

    def same_live_accuracy():
        answers = from_both_workers(service, "GET", "/models/")
        lives = [
            next(v["live"] for v in r.json()["penguins"]["versions"] if v["version"] == 1) for r in answers.values()
        ]
        return lives[0] == lives[1] and lives[0]["n_labels"] >= 1 and lives[0]

    assert wait_until(same_live_accuracy, "both workers report the same live accuracy")["accuracy"] == 1.0
