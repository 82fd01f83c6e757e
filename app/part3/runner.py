"""Runs the queued jobs, one at a time and in submission order, across every worker and container.

Each worker has a runner thread. Whichever worker holds the job store's runner lock (a file lock,
released by the kernel if its holder dies) takes the oldest queued job, marks it running, starts
`python -m app.part3.trainer <id>` and waits for it; the others only try the lock again later. The
trainer writes its own progress and result. When it exits without a result (a crash, a SIGKILL,
an out-of-memory kill) the runner marks the job failed with the reason; a job found "running" with
no live trainer (its worker died) is marked failed too, so no job vanishes or runs forever.
"""

import logging
import os
import signal
import subprocess
import sys
import threading
import time

from filelock import Timeout

from app import mnist
from app.part3.jobs import Job, JobStore, now
from app.part3.metrics import TRAINING_DURATION
from app.part3.settings import Settings
from app.paths import PROJECT_ROOT
from app.store import ModelStore

log = logging.getLogger(__name__)
WAIT_STEP = 0.5  # seconds between checks of a running trainer for a stop request


def remove_unfinished_saves(store: ModelStore) -> list[str]:
    """Delete the temporary folders of saves that crashed, if no training holds the store's lock.

    Every training here publishes while holding that lock, so a free lock means no save is under
    way and any temporary folder is a dead one. (The store ignores them anyway; this is tidying.)
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


class JobRunner:
    def __init__(self, jobs: JobStore, settings: Settings) -> None:
        self.jobs = jobs
        self.settings = settings
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run_forever, name="job-runner", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look for queued jobs now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Stop taking jobs; a running trainer gets SIGTERM, then SIGKILL after the grace period."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.shutdown_grace + 5)

    def _run_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                self.run_pending()
            except Exception:  # a full disk or a vanished folder: log, keep the thread alive
                log.exception("job runner failed; trying again")
            self._wake.wait(self.settings.poll_interval)
            self._wake.clear()

    # -- one pass -----------------------------------------------------------------------------
    def run_pending(self) -> int:
        """Run queued jobs until none is left, if no other worker is running them; returns how many."""
        lock = self.jobs.runner_lock()
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return 0
        try:
            self.recover_abandoned()
            done = 0
            while not self._stopping.is_set() and (job := self.jobs.next_queued()) is not None:
                self.run(job)
                done += 1
            if done:
                self.jobs.prune(keep=self.settings.jobs_kept)
            return done
        finally:
            lock.release()

    def recover_abandoned(self) -> None:
        """Settle jobs marked running whose runner died: wait for a trainer still alive (it holds the
        job's lock and will write its own result), else mark the job failed."""
        for job in self.jobs.all():
            if job.status != "running":
                continue
            lock = self.jobs.job_lock(job.id)
            while not self._stopping.is_set():
                try:
                    lock.acquire(timeout=WAIT_STEP)
                    break
                except Timeout:
                    continue  # an orphaned trainer is still at work: one training at a time
            else:
                return
            try:
                self._settle(job, "its worker stopped while it was running and its trainer is gone")
            finally:
                lock.release()
            self.jobs.discard_data(job.id)
            self.jobs.forget_lock(job.id)

    def run(self, job: Job) -> Job:
        started = time.monotonic()
        job = self.jobs.update(job.id, status="running", started_at=now(), worker_pid=os.getpid())
        log.info("job %s (%s, %s epochs) starting", job.id, job.kind, job.epochs)
        with open(self.jobs.log_path(job.id), "wb") as output:
            trainer = subprocess.Popen(
                [sys.executable, "-m", "app.part3.trainer", job.id],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=self._trainer_environment(),
                cwd=PROJECT_ROOT,
                start_new_session=True,  # a Ctrl+C in the terminal reaches the service, which stops it
            )
            returncode = self._wait(trainer)
        finished = self._settle(job, self._death_reason(returncode, job.id))
        self.jobs.discard_data(job.id)
        self.jobs.forget_lock(job.id)
        if returncode != 0:
            remove_unfinished_saves(ModelStore(mnist.MODEL_NAME, self.settings.models_dir))
        TRAINING_DURATION.labels(job.kind, finished.status).observe(time.monotonic() - started)
        log.info("job %s %s: %s", job.id, finished.status, finished.progress)
        return finished

    # -- helpers ------------------------------------------------------------------------------
    def _trainer_environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key not in ("WORKSHOP_API_KEY", "PROMETHEUS_MULTIPROC_DIR")}
        env.update(
            WORKSHOP_MODELS_DIR=str(self.settings.models_dir),
            WORKSHOP_TRAINING_THREADS=str(self.settings.training_threads),
            WORKSHOP_LOG_LEVEL=self.settings.log_level,
            WORKSHOP_GATE_FLOOR_MNIST=str(self.settings.gate_floor_mnist),
            WORKSHOP_GATE_MARGIN=str(self.settings.gate_margin),
            PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")])),
        )
        return env

    def _wait(self, trainer: subprocess.Popen) -> int:
        while True:
            try:
                return trainer.wait(timeout=WAIT_STEP)
            except subprocess.TimeoutExpired:
                if self._stopping.is_set():
                    log.warning("stopping: ending trainer %s", trainer.pid)
                    trainer.terminate()
                    try:
                        return trainer.wait(timeout=self.settings.shutdown_grace)
                    except subprocess.TimeoutExpired:
                        trainer.kill()
                        return trainer.wait()

    def _death_reason(self, returncode: int, job_id: str) -> str:
        if returncode < 0:
            name = signal.Signals(-returncode).name
            if self._stopping.is_set():
                return f"the service stopped during the training (trainer ended by {name})"
            return f"the trainer process was killed by {name} (out of memory, or stopped from outside)"
        tail = self.jobs.log_tail(job_id)
        return f"the trainer process exited with code {returncode} without a result" + (f": {tail}" if tail else "")

    def _settle(self, job: Job, reason: str) -> Job:
        """The job's final state: its own result if the trainer wrote one; succeeded if its version
        was published before the trainer died; failed with `reason` otherwise."""
        current = self.jobs.get(job.id)
        if current.finished:
            return current
        published = self._published_by(job.id)
        if published is not None:
            return self.jobs.update(job.id, status="succeeded", version=published, finished_at=now())
        return self.jobs.update(job.id, status="failed", error=reason, finished_at=now())

    def _published_by(self, job_id: str) -> int | None:
        store = ModelStore(mnist.MODEL_NAME, self.settings.models_dir)
        for version in reversed(store.all_versions()):
            if (version.metadata.get("data") or {}).get("job") == job_id:
                return version.number
        return None
