"""Trainings killed with SIGKILL at chosen points of their work, then a restart.

The trainer is the service's long-lived child process (`python -m app.part3.trainer_worker`);
faults/sitecustomize.py, put on the trainer's PYTHONPATH only, makes it stop at a named point
(training, evaluating, saving: model file written but not yet renamed into place, published: version
complete but job not updated) so the kill
lands exactly there; one more trial kills at a random moment of its start-up. After each kill: the
job is settled (failed with the reason, or succeeded if its version was complete), the service
serves the previous complete version, the store holds no half-written version and nothing temporary
is left. After a restart the same holds. A last trial kills the whole service (worker and trainer)
during a save, then starts it again.
"""

import contextlib
import os
import random
import signal
import time
from pathlib import Path

import pytest
from bad_requests import digit_png
from part3_support import API_KEY, ServiceProcess, copy_store, running_service, wait_for_job, wait_until
from reliability_support import leftovers, store_state

from app.store import ModelStore, sha256_of

pytestmark = pytest.mark.slow
KEY = {"X-API-Key": API_KEY}
FAULTS = Path(__file__).resolve().parent / "faults"
PAUSED_POINTS = ["training", "evaluating", "saving", "published"]
CLEANUP_WAIT = 60.0  # seconds: the next trainer tidies up when it starts, right after the job is settled


def fault_environment(point: str | None, markers: Path) -> dict[str, str]:
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(FAULTS), os.environ.get("PYTHONPATH")]))}
    if point:
        env |= {"WORKSHOP_FAULT_PAUSE_AT": point, "WORKSHOP_FAULT_DIR": str(markers)}
    return env


def submit(post) -> dict:
    files = [("files", (f"img{n}_{n}.png", digit_png(n), "image/png")) for n in range(10)]
    response = post("/train/", files=files, data={"epochs": "1"}, headers=KEY)
    assert response.status_code == 202, response.text
    return response.json()


def served_version(client) -> int:
    return client.post("/predict/", files={"file": ("x.png", digit_png(2), "image/png")}).json()["version"]


def complete(store: ModelStore) -> bool:
    """Every version the store lists has its file, matching its metadata's sha256."""
    return all(sha256_of(v.model_file) == v.metadata["sha256"] for v in store.all_versions())


def kill_trainer_at(point: str | None, client, markers: Path, rng: random.Random) -> dict:
    """Start a fine-tune whose trainer stops at `point` (or, for None, runs on), SIGKILL it there."""
    (markers / "pause-at").write_text(point or "")  # read by the trainer when it reaches each point
    job = submit(client.post)
    running = wait_until(
        lambda: (body := client.get(f"/jobs/{job['id']}").json())["trainer_pid"] and body, "the trainer starts"
    )
    if point is None:
        time.sleep(rng.uniform(0.0, 3.0))  # somewhere in the job: loading data, the base model, training
        pid = running["trainer_pid"]
    else:
        marker = markers / f"{point}.reached"
        pid = int(wait_until(lambda: marker.exists() and marker.read_text(), f"the trainer reaches {point}"))
        marker.unlink()
        assert pid == running["trainer_pid"]
    os.kill(pid, signal.SIGKILL)
    return wait_for_job(client.get, job["id"])


@pytest.fixture(scope="module")
def markers(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fault-markers")


class RestartableService:
    """The in-process service on one store, which a test can stop and start again."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = models_dir
        self._running = contextlib.ExitStack()
        self.client = self._running.enter_context(running_service(models_dir, api_key=API_KEY))

    def restart(self) -> None:
        self._running.close()
        self._running = contextlib.ExitStack()
        self.client = self._running.enter_context(running_service(self.models_dir, api_key=API_KEY))

    def stop(self) -> None:
        self._running.close()


@pytest.fixture(scope="module")
def service(models_dir, markers):
    with pytest.MonkeyPatch.context() as patch:  # the service passes its environment on to its trainer
        patch.setenv("PYTHONPATH", fault_environment(None, markers)["PYTHONPATH"])
        patch.setenv("WORKSHOP_FAULT_DIR", str(markers))
        service = RestartableService(models_dir)
        yield service
        service.stop()


@pytest.mark.parametrize("point", [None, *PAUSED_POINTS], ids=["random start-up moment", *PAUSED_POINTS])
def test_a_trainer_killed_at_any_point_leaves_the_previous_version_serving(point, service, models_dir, markers):
    client = service.client
    store = ModelStore("mnist", models_dir)
    before, serving = store_state(models_dir), served_version(client)
    assert serving == store.active()

    job = kill_trainer_at(point, client, markers, random.Random(f"kill-{point}"))

    wait_until(lambda: not leftovers(models_dir), "the next trainer removes what the killed one left", CLEANUP_WAIT)
    assert complete(store)
    if point == "published":  # its version was whole before the kill: the job counts it, nothing is lost
        assert job["status"] == "succeeded", job
        assert job["version"] == store.latest() == serving + 1
        assert store.get(job["version"]).metadata["data"]["job"] == job["id"]
        wait_until(lambda: served_version(client) == job["version"], "the new version serves")
    else:
        assert job["status"] == "failed", job
        assert "SIGKILL" in job["error"], job["error"]
        assert store_state(models_dir) == before  # no new, changed or half-written version
        assert served_version(client) == serving
    assert not list((models_dir / ".jobs").glob(f"{job['id']}.npz")), "the job's uploaded data is discarded"


def test_after_a_restart_the_last_complete_version_serves_and_the_killed_jobs_stay_failed(service, models_dir):
    jobs = service.client.get("/jobs/").json()
    state, serving = store_state(models_dir), served_version(service.client)
    service.restart()
    assert served_version(service.client) == serving
    assert service.client.get("/jobs/").json() == jobs
    assert store_state(models_dir) == state
    assert not leftovers(models_dir)
    killed = [job for job in jobs if job["status"] == "failed"]
    assert len(killed) == len(PAUSED_POINTS)  # every kill but the one after publishing
    assert all("SIGKILL" in job["error"] for job in killed)


def test_the_whole_service_killed_during_a_save_restarts_clean(seeded_store, tmp_path_factory):
    """A power cut, as a container sees one: worker and trainer die together mid-save."""
    models_dir = copy_store(seeded_store, tmp_path_factory.mktemp("crash") / "models")
    markers = tmp_path_factory.mktemp("crash-markers")
    env = {"WORKSHOP_API_KEY": API_KEY, **fault_environment("saving", markers)}
    store = ModelStore("mnist", models_dir)
    before = store_state(models_dir)

    service = ServiceProcess(models_dir, env=env)
    try:
        wait_until(lambda: (r := service.answers("/health/ready")) is not None and r.status_code == 200, "ready")
        serving = served_version(service.client)
        job = submit(service.client.post)
        marker = markers / "saving.reached"
        trainer = int(wait_until(lambda: marker.exists() and marker.read_text(), "the trainer is saving"))
        half_written = leftovers(models_dir)
        assert half_written, "the save should be under way in a temporary folder"
        os.kill(trainer, signal.SIGKILL)
        os.killpg(service.process.pid, signal.SIGKILL)
        service.process.wait()
    finally:
        service.stop()
    assert leftovers(models_dir) == half_written  # what a crash leaves: the store ignores it...
    assert store.versions() == [serving]

    restarted = ServiceProcess(models_dir, env={"WORKSHOP_API_KEY": API_KEY})
    try:
        wait_until(lambda: (r := restarted.answers("/health/ready")) is not None and r.status_code == 200, "ready")
        assert served_version(restarted.client) == serving
        failed = wait_for_job(restarted.get, job["id"])
        assert failed["status"] == "failed" and failed["error"], failed
        wait_until(lambda: not leftovers(models_dir), "the restart's trainer removes the crashed save", CLEANUP_WAIT)
        assert store_state(models_dir) == before  # ...and a restart removes it
        assert complete(store)
    finally:
        restarted.stop()
