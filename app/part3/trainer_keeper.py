"""The embedded mode's one trainer, started by the service: one per store, however many workers.

Each API worker has a keeper thread. When it can take the store's trainer lock (an flock on
models/.trainer.lock) the keeper starts `python -m app.part3.trainer_worker` holding it: the
trainer inherits the locked file and keeps the lock for its whole life, even if this worker dies
(the kernel releases it when the trainer ends), so no second trainer ever starts beside it. When
the trainer it started exits (crash, SIGKILL, out of memory), the keeper settles the job that
trainer was running with the reason, and any keeper starts the next trainer (which removes what the
dead one left half-saved).
"""

import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import threading

from app.part3.job_records import JobRecords
from app.part3.recovery import settle
from app.part3.settings import LOCK_FD_ENV, PARENT_ENV, TRAINER_LOCK, Settings
from app.paths import PROJECT_ROOT

log = logging.getLogger(__name__)
WAIT_STEP = 0.5  # seconds between checks of a running trainer for a stop request


TRAINER_READS = (
    "feedback_kept",
    "replay_share",
    "gate_live_min_labels",
    "gate_live_alpha",
    "gate_forgetting",
    "shadow",
    "label_audit_alpha",
    "drift_alpha",
    "rejected_kept",
)


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
                if (locked := self._claim_trainer_lock()) is not None:
                    self._run_trainer(locked)
            except Exception:  # a full disk or a vanished folder: log, keep the thread alive
                log.exception("could not start the trainer; trying again")
            self._stopping.wait(self.settings.poll_interval)

    def _claim_trainer_lock(self) -> int | None:
        """An open file descriptor holding the trainer lock, or None if a trainer holds it. (fcntl, not
        filelock: the descriptor must pass to the child, which filelock cannot do.)"""
        self.settings.models_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.settings.models_dir / TRAINER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def environment(self) -> dict[str, str]:
        # The per-model settings go as one JSON value each, this service's: inherited
        # WORKSHOP_GATE_FLOOR__<MODEL> and the like would be merged over them.
        per_model = tuple(f"WORKSHOP_{name}__" for name in ("GATE_FLOOR", "GATE_MARGIN", "TRAINING"))
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("WORKSHOP_API_KEY", "PROMETHEUS_MULTIPROC_DIR") and not key.startswith(per_model)
        }
        env.update(
            WORKSHOP_MODELS_DIR=str(self.settings.models_dir),
            WORKSHOP_MODELS_URL=self.settings.models_url or "",  # empty: unset, the folder
            WORKSHOP_MODELS_CACHE=str(self.settings.models_cache),
            WORKSHOP_TRAINING_THREADS=str(self.settings.training_threads),
            WORKSHOP_LOG_LEVEL=self.settings.log_level,
            WORKSHOP_HEARTBEAT_INTERVAL=str(self.settings.heartbeat_interval),
            WORKSHOP_HEARTBEAT_TIMEOUT=str(self.settings.heartbeat_timeout),
            WORKSHOP_JOBS_KEPT=str(self.settings.jobs_kept),
            WORKSHOP_GATE_FLOOR=json.dumps(self.settings.gate_floor),
            WORKSHOP_GATE_MARGIN=json.dumps(self.settings.gate_margin),
            WORKSHOP_TRAINING=json.dumps(self.settings.training),
            PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")])),
        )
        # What the trainer's gate, replay, label audit and pruning read: this service's values.
        env.update({f"WORKSHOP_{name.upper()}": str(getattr(self.settings, name)) for name in TRAINER_READS})
        env[PARENT_ENV] = str(os.getpid())
        env.pop("WORKSHOP_QUEUE_URL", None)
        return env

    def _run_trainer(self, locked: int) -> None:
        log_path = self.settings.models_dir / ".trainer.log"
        with open(log_path, "wb") as output:  # this trainer's output; a dead one's reason is in its job
            try:
                trainer = subprocess.Popen(
                    [sys.executable, "-m", "app.part3.trainer_worker"],
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    env={**self.environment(), LOCK_FD_ENV: str(locked)},
                    cwd=PROJECT_ROOT,
                    pass_fds=(locked,),
                    start_new_session=True,  # a Ctrl+C in the terminal reaches the service, which stops it
                )
            finally:
                os.close(locked)  # the trainer's copy holds the lock now
            returncode = self._wait(trainer)
        log.warning("the trainer (pid %s) exited with %s", trainer.pid, returncode)
        for job in self.records.all():
            if job.status == "running" and job.trainer_pid == trainer.pid:
                settled = settle(self.records, self.settings.store_location, job, self._death_reason(returncode))
                log.info("job %s %s: %s", job.id, settled.status, settled.progress)
        # What it was saving is removed by the next trainer when it starts: the service never writes the store.

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
