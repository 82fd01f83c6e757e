"""The job store and the runner's bookkeeping, without training anything (fast)."""

import json
import threading

import numpy as np
import pytest

from app.part3.jobs import Job, JobNotFound, JobStore
from app.part3.runner import JobRunner
from app.part3.settings import Settings
from app.store import ModelStore


@pytest.fixture
def settings(tmp_path):
    return Settings(models_dir=tmp_path / "models", poll_interval=0.05)


@pytest.fixture
def jobs(settings):
    return JobStore(settings.jobs_dir)


def test_jobs_come_back_in_submission_order_with_their_data(jobs):
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    first = jobs.submit("fine-tune", 2, images, np.array([1, 2, 3]))
    second = jobs.submit("retrain", 1)
    assert [job.id for job in jobs.all()] == [first.id, second.id]
    assert jobs.next_queued().id == first.id
    stored_images, stored_labels = jobs.load_data(first)
    assert np.array_equal(stored_images, images) and stored_labels.tolist() == [1, 2, 3]
    assert jobs.load_data(second) is None
    assert first.n_images == 3 and second.n_images == 0


def test_a_job_file_is_replaced_whole(jobs):
    job = jobs.submit("retrain", 3)
    jobs.update(job.id, status="running", epoch=2, loss=0.5, accuracy=0.8)
    again = jobs.get(job.id)
    assert (again.status, again.epoch, again.progress) == ("running", 2, "epoch 2 of 3")
    assert [path.name for path in jobs.folder.iterdir() if path.name.startswith(".tmp-")] == []
    assert json.loads((jobs.folder / f"{job.id}.json").read_text())["loss"] == 0.5


@pytest.mark.parametrize("job_id", ["../../etc/passwd", "x" * 32, "A" * 32, "", "0" * 31])
def test_ids_that_are_not_ours_never_become_paths(jobs, job_id):
    with pytest.raises(JobNotFound):
        jobs.get(job_id)
    with pytest.raises(JobNotFound):
        jobs.data_path(job_id)


def test_a_stray_file_in_the_jobs_folder_is_ignored(jobs):
    job = jobs.submit("retrain", 1)
    (jobs.folder / "notes.json").write_text("{not json")
    assert [found.id for found in jobs.all()] == [job.id]


def test_an_abandoned_running_job_is_marked_failed_with_a_reason(jobs, settings):
    job = jobs.submit("fine-tune", 1, np.zeros((1, 28, 28), np.uint8), np.array([0]))
    jobs.update(job.id, status="running")  # as if its worker died mid-training, trainer and all
    JobRunner(jobs, settings).recover_abandoned()
    recovered = jobs.get(job.id)
    assert recovered.status == "failed"
    assert "trainer is gone" in recovered.error
    assert recovered.finished_at is not None


def test_a_live_orphaned_trainer_is_waited_for_not_failed(jobs, settings):
    job = jobs.submit("fine-tune", 1)
    jobs.update(job.id, status="running")
    trainer_lock = jobs.job_lock(job.id)
    trainer_lock.acquire()  # the orphaned trainer, still alive
    runner = JobRunner(jobs, settings)
    recovery = threading.Thread(target=runner.recover_abandoned)
    recovery.start()
    recovery.join(timeout=0.5)
    assert recovery.is_alive(), "recovery must wait while the trainer holds the job's lock"
    jobs.update(job.id, status="succeeded", version=4)  # the trainer finishes and reports
    trainer_lock.release()
    recovery.join(timeout=30)
    assert not recovery.is_alive()
    assert jobs.get(job.id).status == "succeeded"


def test_a_trainer_killed_after_publishing_counts_as_succeeded(jobs, settings):
    job = jobs.submit("fine-tune", 1)
    jobs.update(job.id, status="running")

    def save(folder):
        (folder / "model.keras").write_bytes(b"weights")
        return "model.keras"

    version = ModelStore("mnist", settings.models_dir).publish(save, {"data": {"job": job.id}})
    JobRunner(jobs, settings).recover_abandoned()
    assert (jobs.get(job.id).status, jobs.get(job.id).version) == ("succeeded", version.number)


def test_only_one_runner_at_a_time(jobs, settings):
    held = jobs.runner_lock()
    held.acquire()
    try:
        jobs.submit("retrain", 1)
        assert JobRunner(jobs, settings).run_pending() == 0  # another worker is running jobs
        assert jobs.next_queued() is not None
    finally:
        held.release()


def test_settings_come_from_workshop_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKSHOP_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("WORKSHOP_API_KEY", "")
    monkeypatch.setenv("WORKSHOP_EPOCHS", "3")
    monkeypatch.setenv("WORKSHOP_TRAINING_THREADS", "2")
    settings = Settings()
    assert settings.models_dir == tmp_path and settings.jobs_dir == tmp_path / ".jobs"
    assert settings.api_key is None  # an empty variable means no key
    assert (settings.epochs, settings.first_training_epochs, settings.training_threads) == (3, 3, 2)
    monkeypatch.setenv("WORKSHOP_API_KEY", "s3cret")
    assert "s3cret" not in repr(Settings())
    assert Settings().api_key.get_secret_value() == "s3cret"


def test_the_trainer_never_gets_the_api_key(monkeypatch, jobs, settings):
    monkeypatch.setenv("WORKSHOP_API_KEY", "s3cret")
    environment = JobRunner(jobs, settings)._trainer_environment()
    assert "WORKSHOP_API_KEY" not in environment
    assert environment["WORKSHOP_MODELS_DIR"] == str(settings.models_dir)


def test_job_json_is_what_the_api_returns(jobs):
    job = jobs.submit("retrain", 1)
    assert Job.model_validate_json((jobs.folder / f"{job.id}.json").read_text()) == job


def test_only_the_newest_finished_jobs_are_kept(jobs):
    finished = []
    for n in range(5):
        job = jobs.submit("fine-tune", 1, np.zeros((1, 28, 28), np.uint8), np.array([n]))
        jobs.update(job.id, status="succeeded" if n % 2 else "failed", version=n)
        jobs.log_path(job.id).write_text("the trainer's log")
        finished.append(job.id)
    queued = jobs.submit("retrain", 1)
    running = jobs.submit("retrain", 1)
    jobs.update(running.id, status="running")
    assert jobs.prune(keep=2) == finished[:3]
    assert [job.id for job in jobs.all()] == [*finished[3:], queued.id, running.id]
    files_of = {path.name.split(".")[0] for path in jobs.folder.iterdir() if not path.name.startswith(".")}
    assert files_of == {*finished[3:], queued.id, running.id}, "every file of a removed job goes"
    assert jobs.prune(keep=2) == []


def test_the_runner_prunes_after_the_jobs_it_ran(jobs, settings, monkeypatch):
    runner = JobRunner(jobs, settings.model_copy(update={"jobs_kept": 1}))
    monkeypatch.setattr(runner, "run", lambda job: jobs.update(job.id, status="succeeded", version=1))
    submitted = [jobs.submit("retrain", 1).id for _ in range(3)]
    assert runner.run_pending() == 3
    assert [job.id for job in jobs.all()] == submitted[-1:]
