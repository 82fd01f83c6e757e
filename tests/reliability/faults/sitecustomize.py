"""Fault injection for the kill tests: on PYTHONPATH of a trainer child only, never in the service.

When this process is a trainer (`-m app.part3.trainer_worker`, or `-m workshop.cli trainer`) and
WORKSHOP_FAULT_PAUSE_AT, or else the file <WORKSHOP_FAULT_DIR>/pause-at (read when the point is
reached: a trainer lives on across jobs), names a point, the trainer stops there: it writes
<WORKSHOP_FAULT_DIR>/<point>.reached holding its pid, then sleeps, so that the test can SIGKILL it at
exactly that point of its work.

    training    the CNN's fit is about to start
    evaluating  the promotion gate is about to judge the trained model
    saving      inside the store's publish: the model file is written in the temporary folder,
                the metadata and the rename into place are not done yet
    uploaded    an object store's publish: the version's files are uploaded, its manifest (which makes it
                a version) is not written yet (app/storage/bucket.py's commit)
    published   the store's publish has returned: the version is complete, the job not updated
"""

import os
import time
from pathlib import Path

FOLDER = os.environ.get("WORKSHOP_FAULT_DIR")
PAUSE = 300.0  # seconds; the test kills the process long before


def _is_trainer() -> bool:
    try:
        command = Path("/proc/self/cmdline").read_bytes()
        return b"app.part3.trainer" in command or b"workshop.cli\x00trainer" in command
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

    from app.storage.bucket import MANIFEST, BucketBackend

    put_if = BucketBackend._put_if  # the bucket's conditional put; a new manifest is one with no ETag

    def paused_put_if(self, key, body, etag):
        if etag is None and key.startswith(f"{self.keys}versions/") and MANIFEST.fullmatch(key.rsplit("/", 1)[1]):
            _pause("uploaded")
        return put_if(self, key, body, etag)

    BucketBackend._put_if = paused_put_if


if FOLDER and _is_trainer():
    _install()
