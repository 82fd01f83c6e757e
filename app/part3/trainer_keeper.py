"""The embedded mode's one trainer, started by the service: one per store, however many workers.

Each API worker has a keeper thread. When the store's trainer lock (models/.trainer.lock, held by
a live trainer for its whole life) is free, the keeper starts `python -m app.part3.trainer_worker`;
if two keepers start one together, the second trainer finds the lock taken and exits at once. When
the trainer it started exits (crash, SIGKILL, out of memory), the keeper settles the job that
trainer was running with the reason, and any keeper starts the next trainer.
"""

import logging
import os
import signal
import subprocess
import sys
import threading

from filelock import Timeout

from app import mnist
from app.part3.job_records import JobRecords
from app.part3.recovery import remove_unfinished_saves, settle
from app.part3.settings import Settings
from app.part3.trainer_worker import ANOTHER_TRAINER, PARENT_ENV, embedded_trainer_lock
from app.paths import PROJECT_ROOT
from app.store import ModelStore

log = logging.getLogger(__name__)
WAIT_STEP = 0.5  # seconds between checks of a running trainer for a stop request


class TrainerKeeper:
    def __init__(self, records: JobRecords, settings: Settings) -> None:
        self.records = records
        self.settings = settings
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._keep_forever, name="trainer-keeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop keeping; the trainer this worker started gets SIGTERM, then SIGKILL after the grace."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.shutdown_grace + 5)

    def _keep_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                if self._trainer_missing():
                    self._run_trainer()
            except Exception:  # a full disk or a vanished folder: log, keep the thread alive
                log.exception("could not start the trainer; trying again")
            self._stopping.wait(self.settings.poll_interval)

    def _trainer_missing(self) -> bool:
        lock = embedded_trainer_lock(self.settings)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return False
        lock.release()
        return True

    def environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key not in ("WORKSHOP_API_KEY", "PROMETHEUS_MULTIPROC_DIR")}
        env.update(
            WORKSHOP_MODELS_DIR=str(self.settings.models_dir),
            WORKSHOP_TRAINING_THREADS=str(self.settings.training_threads),
            WORKSHOP_LOG_LEVEL=self.settings.log_level,
            WORKSHOP_HEARTBEAT_INTERVAL=str(self.settings.heartbeat_interval),
            WORKSHOP_HEARTBEAT_TIMEOUT=str(self.settings.heartbeat_timeout),
            WORKSHOP_JOBS_KEPT=str(self.settings.jobs_kept),
            PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")])),
        )
        env[PARENT_ENV] = str(os.getpid())
        env.pop("WORKSHOP_QUEUE_URL", None)
        return env

    def _run_trainer(self) -> None:
        log_path = self.settings.models_dir / ".trainer.log"
        with open(log_path, "ab") as output:
            trainer = subprocess.Popen(
                [sys.executable, "-m", "app.part3.trainer_worker"],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                cwd=PROJECT_ROOT,
                start_new_session=True,  # a Ctrl+C in the terminal reaches the service, which stops it
            )
            returncode = self._wait(trainer)
        if returncode == ANOTHER_TRAINER:
            return
        log.warning("the trainer (pid %s) exited with %s", trainer.pid, returncode)
        store = ModelStore(mnist.MODEL_NAME, self.settings.models_dir)
        for job in self.records.all():
            if job.status == "running" and job.trainer_pid == trainer.pid:
                settled = settle(self.records, store, job, self._death_reason(returncode))
                log.info("job %s %s: %s", job.id, settled.status, settled.progress)
        remove_unfinished_saves(store)

    def _wait(self, trainer: subprocess.Popen) -> int:
        while True:
            try:
                return trainer.wait(timeout=WAIT_STEP)
            except subprocess.TimeoutExpired:
                if self._stopping.is_set():
                    trainer.terminate()
                    try:
                        return trainer.wait(timeout=self.settings.shutdown_grace)
                    except subprocess.TimeoutExpired:
                        trainer.kill()
                        return trainer.wait()

    def _death_reason(self, returncode: int) -> str:
        if self._stopping.is_set():
            return f"the service stopped during the training (the trainer ended with {returncode})"
        if returncode < 0:
            name = signal.Signals(-returncode).name
            return f"the trainer process was killed by {name} (out of memory, or stopped from outside)"
        return f"the trainer process exited with code {returncode} without a result (see models/.trainer.log)"
