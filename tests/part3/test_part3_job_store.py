"""The job records (both backends: SQLite and a real Redis), the queue's lock and the settling of
jobs whose trainer died, without training anything (fast)."""

import os
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import numpy as np
import pytest
import redis
from huey.exceptions import TaskLockedException

from app.part3.job_records import RedisJobRecords, SqliteJobRecords
from app.part3.job_status import Job, JobNotFound, now
from app.part3.recovery import fail_silent_jobs, settle
from app.part3.settings import Settings
from app.part3.trainer_keeper import TrainerKeeper
from app.part3.training_queue import TrainingQueue
from app.store import ModelStore


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.slow)])  # redis: a server
def settings(request, tmp_path):
    url = None
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
        redis.Redis.from_url(server.url).flushall()  # each test starts from an empty Redis
        url = server.url
    return Settings(models_dir=tmp_path / "models", poll_interval=0.05, queue_url=url, heartbeat_timeout=5)


@pytest.fixture
def queue(settings):
    return TrainingQueue(settings)


@pytest.fixture
def jobs(queue):
    return queue.records


def test_the_backend_follows_the_settings(settings, jobs):
    assert isinstance(jobs, RedisJobRecords if settings.queue_url else SqliteJobRecords)


def test_jobs_come_back_in_submission_order_with_their_data(jobs):
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    first = jobs.submit("fine-tune", "mnist", {"epochs": 2}, images, np.array([1, 2, 3]))
    second = jobs.submit("retrain", "mnist", {"epochs": 1})
    assert [job.id for job in jobs.all()] == [first.id, second.id]
    assert first.sequence < second.sequence
    assert jobs.next_queued().id == first.id
    stored_images, stored_labels = jobs.examples(first.id)
    assert np.array_equal(stored_images, images) and stored_labels.tolist() == [1, 2, 3]
    assert jobs.examples(second.id) is None
    assert first.n_images == 3 and second.n_images == 0
    assert (jobs.count("queued"), jobs.count("running")) == (2, 0)


def test_redis_keeps_a_jobs_examples_itself_and_no_folder_is_written(settings, jobs):
    """Distributed: a trainer on another machine reads the examples from Redis, not from a shared folder."""
    job = jobs.submit("fine-tune", "mnist", {"epochs": 1}, np.ones((2, 28, 28), np.uint8), np.array([4, 5]))
    assert jobs.examples(job.id)[1].tolist() == [4, 5]
    assert settings.jobs_dir.exists() is not bool(settings.queue_url)
    jobs.discard_data(job.id)
    assert jobs.examples(job.id) is None


def test_an_update_changes_only_its_fields_and_reads_back_the_same(jobs):
    job = jobs.submit("retrain", "mnist", {"epochs": 3})
    jobs.update(job.id, status="running", epoch=2, loss=0.5, accuracy=0.8)
    again = jobs.get(job.id)
    assert (again.status, again.epoch, again.progress, again.loss) == ("running", 2, "epoch 2 of 3", 0.5)
    assert again.sequence == job.sequence and again.submitted_at == job.submitted_at
    assert jobs.update(job.id, when=lambda current: current.status == "queued", status="failed").status == "running"


def test_extra_fields_are_kept(jobs):
    job = jobs.submit("fine-tune", "mnist", {"epochs": 1})
    jobs.update(job.id, status="succeeded", version=3, promoted=False, gate_reason="accuracy fell")
    body = jobs.get(job.id).model_dump()
    assert (body["promoted"], body["gate_reason"]) == (False, "accuracy fell")


def test_concurrent_updates_lose_nothing(jobs):
    job = jobs.submit("fine-tune", "mnist", {"epochs": 1}, np.zeros((1, 28, 28), np.uint8), np.array([0]))
    fields = [f"field_{n}" for n in range(16)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda name: jobs.update(job.id, **{name: 1}), fields))
    assert all(getattr(jobs.get(job.id), name) == 1 for name in fields)


def test_submissions_from_many_threads_keep_one_order(jobs):
    with ThreadPoolExecutor(8) as pool:
        submitted = list(pool.map(lambda n: jobs.submit("retrain", "mnist", {"epochs": 1}), range(24)))
    listed = jobs.all()
    assert sorted(job.id for job in listed) == sorted(job.id for job in submitted)
    assert [job.sequence for job in listed] == sorted(job.sequence for job in submitted)
    assert len({job.sequence for job in listed}) == 24


def test_one_pending_first_training_however_many_ask(jobs):
    with ThreadPoolExecutor(6) as pool:
        asked = list(pool.map(lambda n: jobs.submit("initial", None, unless_pending=True), range(6)))
    assert len({job.id for job in asked}) == 1
    jobs.update(asked[0].id, status="failed", error="no")
    again = jobs.submit("initial", None, unless_pending=True)  # the first one failed: a new one may go
    assert again.id != asked[0].id and len(jobs.all()) == 2


def test_a_pending_job_stands_for_its_own_model_and_kind_only(jobs):
    digits = jobs.submit("fine-tune", "mnist", unless_pending=True)
    assert jobs.submit("fine-tune", "mnist", unless_pending=True).id == digits.id
    penguins = jobs.submit("fine-tune", "penguins", unless_pending=True)
    retrain = jobs.submit("retrain", "mnist", unless_pending=True)
    assert len({digits.id, penguins.id, retrain.id}) == 3 and len(jobs.all()) == 3
    assert (penguins.model, retrain.kind) == ("penguins", "retrain")


@pytest.mark.parametrize("job_id", ["../../etc/passwd", "x" * 32, "A" * 32, "", "0" * 31])
def test_ids_that_are_not_ours_never_become_paths(jobs, job_id):
    with pytest.raises(JobNotFound):
        jobs.get(job_id)
    with pytest.raises(JobNotFound):
        jobs.examples(job_id)


def test_only_the_newest_finished_jobs_are_kept(jobs):
    finished = []
    for n in range(5):
        job = jobs.submit("fine-tune", "mnist", {"epochs": 1}, np.zeros((1, 28, 28), np.uint8), np.array([n]))
        jobs.update(job.id, status="succeeded" if n % 2 else "failed", version=n)
        finished.append(job.id)
    queued = jobs.submit("retrain", "mnist", {"epochs": 1})
    running = jobs.submit("retrain", "mnist", {"epochs": 1})
    jobs.update(running.id, status="running")
    assert jobs.prune(keep=2) == finished[:3]
    assert [job.id for job in jobs.all()] == [*finished[3:], queued.id, running.id]
    assert all(jobs.examples(job_id) is None for job_id in finished[:3]), "a removed job's data goes"
    assert jobs.prune(keep=2) == []


def test_a_silent_running_job_is_failed_with_the_reason(jobs, settings):
    job = jobs.submit("fine-tune", "mnist", {"epochs": 1}, np.zeros((1, 28, 28), np.uint8), np.array([0]))
    old = now() - timedelta(seconds=settings.heartbeat_timeout + 1)
    jobs.update(job.id, status="running", started_at=old, heartbeat_at=old, trainer="elsewhere:42")
    fresh = jobs.submit("retrain", "mnist", {"epochs": 1})
    jobs.update(fresh.id, status="running", started_at=now(), heartbeat_at=now())
    listed = {job.id: job for job in fail_silent_jobs(jobs, settings.models_dir, settings.heartbeat_timeout)}
    assert listed[job.id].status == "failed" and "elsewhere:42" in listed[job.id].error
    assert "heartbeat" in jobs.get(job.id).error and jobs.get(job.id).finished_at is not None
    assert jobs.examples(job.id) is None
    assert jobs.get(fresh.id).status == "running", "a trainer that beats in time keeps its job"


def test_a_job_whose_version_was_published_before_its_trainer_died_succeeded(jobs, settings):
    job = jobs.submit("fine-tune", "mnist", {"epochs": 1})
    job = jobs.update(job.id, status="running", heartbeat_at=now())

    def save(folder):
        (folder / "model.keras").write_bytes(b"weights")
        return "model.keras"

    version = ModelStore("mnist", settings.models_dir).publish(save, {"data": {"job": job.id}})
    settled = settle(jobs, settings.models_dir, job, "gone")
    assert (settled.status, settled.version) == ("succeeded", version.number)


def test_settling_leaves_a_job_its_trainer_updated_meanwhile(jobs, settings):
    job = jobs.update(
        jobs.submit("retrain", "mnist", {"epochs": 1}).id, status="running", heartbeat_at=now() - timedelta(seconds=60)
    )
    jobs.update(job.id, heartbeat_at=now())  # the trainer was only slow
    assert settle(jobs, settings.models_dir, job, "gone").status == "running"


def test_the_training_lock_is_held_by_one_at_a_time(queue):
    lock = queue.training_lock
    lock.acquire()
    try:
        with pytest.raises(TaskLockedException):
            TrainingQueue(queue.settings).training_lock.acquire()  # another trainer's view
    finally:
        lock.release()
    TrainingQueue(queue.settings).training_lock.acquire()


def test_a_redis_lock_expires_unless_its_holder_refreshes_it(redis_server, tmp_path):
    """Relies on Huey's private key layout (training_queue.refresh_lock): fails if it changes."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    queue = TrainingQueue(Settings(models_dir=tmp_path, queue_url=redis_server.url, heartbeat_timeout=30))
    queue.training_lock.acquire()
    key = queue.huey.storage.result_key(queue.training_lock._key)
    client.expire(key, 2)
    queue.refresh_lock()
    assert 2 < client.ttl(key) <= 30
    assert queue.huey.is_locked("training")


def test_settings_come_from_workshop_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKSHOP_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("WORKSHOP_API_KEY", "")
    monkeypatch.setenv("WORKSHOP_QUEUE_URL", "")
    monkeypatch.setenv("WORKSHOP_EPOCHS", "3")
    monkeypatch.setenv("WORKSHOP_TRAINING_THREADS", "2")
    settings = Settings()
    assert settings.models_dir == tmp_path and settings.queue_file.parent == tmp_path
    assert settings.api_key is None and settings.queue_url is None  # empty variables mean unset
    assert (settings.epochs, settings.training_threads) == (3, 2)
    monkeypatch.setenv("WORKSHOP_API_KEY", "s3cret")
    assert "s3cret" not in repr(Settings())
    assert Settings().api_key.get_secret_value() == "s3cret"


def test_the_trainer_never_gets_the_api_key(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKSHOP_API_KEY", "s3cret")
    settings = Settings(models_dir=tmp_path)
    environment = TrainerKeeper(SqliteJobRecords(tmp_path / "q", tmp_path), settings).environment()
    assert "WORKSHOP_API_KEY" not in environment
    assert environment["WORKSHOP_MODELS_DIR"] == str(settings.models_dir)
    assert environment["WORKSHOP_MODELS_URL"] == ""


def test_the_trainer_gets_this_services_object_store(monkeypatch, tmp_path):
    monkeypatch.delenv("WORKSHOP_MODELS_URL", raising=False)
    settings = Settings(models_dir=tmp_path, models_url="s3://models/team", models_cache=tmp_path / "cache")
    environment = TrainerKeeper(SqliteJobRecords(tmp_path / "q", tmp_path), settings).environment()
    monkeypatch.setattr(os, "environ", environment)
    inherited = Settings()
    assert (inherited.models_url, inherited.models_cache) == ("s3://models/team", tmp_path / "cache")
    assert inherited.store("mnist").location == "s3://models/team/mnist/"


def test_job_json_is_what_the_api_returns(jobs):
    job = jobs.submit("retrain", "mnist", {"epochs": 1})
    assert Job.model_validate_json(jobs.get(job.id).model_dump_json()) == jobs.get(job.id)
    assert set(jobs.get(job.id).model_dump()) >= {"id", "kind", "status", "sequence", "epoch", "epochs", "progress"}


def test_creating_the_app_writes_nothing_until_the_queue_is_used(tmp_path):
    from app.part3.main import create_app

    settings = Settings(models_dir=tmp_path / "models")
    service = create_app(settings).state.service
    assert not settings.models_dir.exists()
    service.jobs.submit("retrain", "mnist", {"epochs": 1})
    assert settings.queue_file.exists()


def test_the_trainer_gets_this_services_per_model_settings_not_the_inherited_ones(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKSHOP_GATE_MARGIN__MNIST", "1")  # say, from the shell that started the service
    settings = Settings(models_dir=tmp_path, gate_floor={"mnist": 0.7}, gate_margin={"mnist": 0.02})
    environment = TrainerKeeper(SqliteJobRecords(tmp_path / "q", tmp_path), settings).environment()
    assert not [key for key in environment if key.startswith(("WORKSHOP_GATE_FLOOR__", "WORKSHOP_GATE_MARGIN__"))]
    for key in list(os.environ):  # the trainer's process sees only what it was given
        monkeypatch.delenv(key)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    trainer = Settings()
    assert (trainer.gate_floor, trainer.gate_margin) == (settings.gate_floor, settings.gate_margin)
    assert (trainer.gate_floor["mnist"], trainer.gate_margin["mnist"]) == (0.7, 0.02)
