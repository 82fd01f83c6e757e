"""A trainer: a long-lived process that imports the training libraries once, then runs the queue's
training turns one after another. `uv run workshop trainer` (WORKSHOP_QUEUE_URL, WORKSHOP_MODELS_DIR).

- Huey's consumer with one worker thread takes the turns; TensorFlow's threads are capped and the
  process runs at a lower priority, so predictions on the same machine keep a core.
- A turn waits for the queue's training lock, settles the jobs of trainers that died (any job
  still "running" once we hold the lock has lost its trainer), then runs the oldest queued job.
- While it holds the lock a heartbeat thread stamps the running job every heartbeat_interval and,
  on Redis, pushes the lock's expiry back: a trainer that dies stops both, so its lock expires
  after heartbeat_timeout and its job is failed by whoever looks next.
- Embedded (SQLite) mode: one trainer per store, held by a file lock in the models folder for the
  trainer's whole life; it clears a lock left by a dead predecessor when it starts (SQLite locks
  cannot expire). A trainer started by the service exits when that service process is gone.
"""

import importlib
import logging
import os
import socket
import sys
import threading
import time

from filelock import FileLock, Timeout
from huey.exceptions import TaskLockedException

from app import registry
from app.part3.job_status import Job, now
from app.part3.recovery import settle, silence_reason
from app.part3.settings import TRAINER_LOCK, Settings
from app.part3.training_job import NICENESS, limit_threads, train
from app.part3.training_queue import TrainingQueue
from app.store import ModelStore

log = logging.getLogger("app.part3.training_job")
ANOTHER_TRAINER = 75  # exit code: this store already has its trainer (EX_TEMPFAIL)
LOCK_RETRY = 0.2  # seconds between attempts at the training lock


def remove_unfinished_saves(store: ModelStore) -> list[str]:
    """Delete the temporary folders of saves that crashed, if no training holds the store's lock.

    Every training publishes while holding that lock, so a free lock means no save is under way
    and any temporary folder is a dead one. (The store ignores them anyway; this is tidying.)
    """
    lock = store.training_lock(timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return []
    try:
        return store.clean_temporary(older_than=0)
    finally:
        lock.release()


def embedded_trainer_lock(settings: Settings) -> FileLock:
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(settings.models_dir / TRAINER_LOCK)


class Trainer:
    def __init__(self, settings: Settings, queue: TrainingQueue) -> None:
        self.settings = settings
        self.queue = queue
        self.records = queue.records
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.parent = settings.trainer_parent
        self._holding = threading.Event()
        self._job: str | None = None
        self._stop = threading.Event()

    # -- the heartbeat --------------------------------------------------------------------------
    def start_heartbeat(self) -> None:
        threading.Thread(target=self._beat_forever, name="heartbeat", daemon=True).start()

    def _beat_forever(self) -> None:
        while not self._stop.wait(self.settings.heartbeat_interval):
            if self.parent is not None and os.getppid() != self.parent:
                log.warning("the service that started this trainer is gone: exiting")
                os._exit(1)  # its job, if any, is settled by the next trainer
            try:
                self.beat()
            except Exception:  # the queue unreachable for a moment: the next beat tries again
                log.exception("heartbeat failed")

    def beat(self) -> None:
        if self._holding.is_set():
            self.queue.refresh_lock()
        if (job_id := self._job) is not None:
            self.records.update(job_id, when=lambda job: job.status == "running", heartbeat_at=now())

    # -- a turn ---------------------------------------------------------------------------------
    def take_turn(self, reason: str) -> None:
        self._acquire()
        try:
            self.settle_orphans()
            job = self.records.next_queued()
            if job is not None:
                self.run(job)
        finally:
            self._holding.clear()
            self.queue.training_lock.release()

    def _acquire(self) -> None:
        while True:
            try:
                self.queue.training_lock.acquire()
            except TaskLockedException:  # another trainer is training: wait for our turn
                time.sleep(LOCK_RETRY)
                continue
            self._holding.set()
            self.queue.refresh_lock()
            return

    def settle_orphans(self) -> None:
        """With the lock held, a job still "running" has lost its trainer."""
        orphans = [job for job in self.records.all() if job.status == "running"]
        for job in orphans:
            settled = settle(self.records, self.settings.store_location, job, silence_reason(job))
            log.warning("job %s had lost its trainer: %s", job.id, settled.progress)
        if orphans:
            for name in registry.models():
                remove_unfinished_saves(self.settings.store(name))

    def run(self, job: Job) -> Job:
        job = self.records.update(
            job.id, status="running", started_at=now(), heartbeat_at=now(), trainer=self.name, trainer_pid=os.getpid()
        )
        self._job = job.id
        log.info("job %s (%s, %s epochs) starting", job.id, job.kind, job.epochs)
        try:
            version = train(job, self.records, self.settings)
        except Exception as error:
            log.exception("job %s failed", job.id)
            job = self.records.update(
                job.id, status="failed", error=f"{type(error).__name__}: {error}", finished_at=now()
            )
        else:
            job = self.records.update(job.id, status="succeeded", version=version, finished_at=now())
        finally:
            self._job = None
            self.records.discard_data(job.id)
        self.records.prune(keep=self.settings.jobs_kept)
        log.info("job %s %s: %s", job.id, job.status, job.progress)
        return job


def warm_up(settings: Settings) -> None:
    """Cap the training libraries' threads, then do their slow imports (e.g. Keras) now, once, rather
    than at each job's start."""
    limit_threads(settings.training_threads)
    for model in registry.models().values():
        for module in model.training_imports:
            importlib.import_module(module)


def main() -> int:
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    os.nice(NICENESS)
    queue = TrainingQueue(settings)
    if not queue.distributed and settings.trainer_lock_fd is None:
        lock = embedded_trainer_lock(settings)
        try:
            lock.acquire(timeout=0)  # held until this process ends; the kernel releases it then
        except Timeout:
            print(f"{settings.models_dir} already has its trainer", file=sys.stderr)
            return ANOTHER_TRAINER
    for name in registry.models():  # the store's one tidier: workers only read it
        remove_unfinished_saves(settings.store(name))
    warm_up(settings)
    trainer = Trainer(settings, queue)
    queue.take_turn = trainer.take_turn
    trainer.start_heartbeat()
    queue.enqueue_turn("start")  # queued jobs whose turns a dead trainer took with it
    log.info("trainer %s takes jobs from %s", trainer.name, queue.where)
    consumer = queue.huey.create_consumer(
        workers=1, worker_type="thread", flush_locks=not queue.distributed, initial_delay=0.05, max_delay=0.5
    )
    consumer.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
