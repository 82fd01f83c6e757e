"""Fault injection for the kill tests: on PYTHONPATH of a trainer child only, never in the service.

When this process is a trainer (`-m app.part3.trainer_worker`) and WORKSHOP_FAULT_PAUSE_AT, or
else the file <WORKSHOP_FAULT_DIR>/pause-at (read when the point is reached: a trainer lives on
across jobs), names a point, the trainer stops there: it writes <WORKSHOP_FAULT_DIR>/<point>.reached
holding its pid, then sleeps, so that the test can SIGKILL it at exactly that point of its work.

    training    the CNN's fit is about to start
    evaluating  the promotion gate is about to judge the trained model
    saving      inside the store's publish: the model file is written in the temporary folder,
                the metadata and the rename into place are not done yet
    published   the store's publish has returned: the version is complete, the job not updated
"""

import os
import time
from pathlib import Path

FOLDER = os.environ.get("WORKSHOP_FAULT_DIR")
PAUSE = 300.0  # seconds; the test kills the process long before


def _is_trainer() -> bool:
    try:
        return b"app.part3.trainer" in Path("/proc/self/cmdline").read_bytes()
    except OSError:
        return False


def _paused_point() -> str | None:
    if os.environ.get("WORKSHOP_FAULT_PAUSE_AT"):
        return os.environ["WORKSHOP_FAULT_PAUSE_AT"]
    try:
        return (Path(FOLDER) / "pause-at").read_text().strip()
    except OSError:
        return None


def _pause(point: str) -> None:
    if point != _paused_point():
        return
    marker = Path(FOLDER) / f"{point}.reached"
    marker.write_text(str(os.getpid()))
    time.sleep(PAUSE)


def _install() -> None:
    from app import promotion
    from app.models.mnist import cnn
    from app.store import ModelStore

    fit, judge, publish = cnn.fit, promotion.publish, ModelStore.publish

    def paused_fit(*args, **kwargs):
        _pause("training")
        return fit(*args, **kwargs)

    def paused_judge(*args, **kwargs):
        _pause("evaluating")
        return judge(*args, **kwargs)

    def paused_publish(self, save, *args, **kwargs):
        # The store's own save hook is wrapped (not the model's save, which the promotion gate also
        # calls to check a scratch copy): the pause is inside the store's publish, whoever saves.
        def paused_save(folder):
            name = save(folder)
            _pause("saving")
            return name

        version = publish(self, paused_save, *args, **kwargs)
        _pause("published")
        return version

    cnn.fit, promotion.publish, ModelStore.publish = paused_fit, paused_judge, paused_publish


if FOLDER and _is_trainer():
    _install()
