"""A real S3 protocol server for the tests: moto's server on a free 127.0.0.1 port, and the AWS_*
variables that point boto3 (and so app/storage/bucket.py, in this process and the ones it starts) at it.

- `ThreadedMotoServer` (moto's own, a thread of the test process) for most tests: S3's conditional
  puts answered as S3 answers them (412 PreconditionFailed for a second `If-None-Match: *` or a
  stale `If-Match`).
- `JournaledMotoServer`, moto's server as a process of its own that can be stopped and started again
  with its data: moto keeps its state in memory, so its recorder journals every request to a file
  (as Redis' append-only file does) and a new process replays the journal before it is used.
"""

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

from tests.polling import free_port

START_WAIT = 60.0  # seconds; a safety net on a loaded machine
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "workshop-test-key",
    "AWS_SECRET_ACCESS_KEY": "workshop-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def environment(**variables: str | None):
    """Set (None: remove) environment variables for the block, then restore them."""
    saved = {name: os.environ.get(name) for name in variables}
    try:
        for name, value in variables.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
        yield
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)


def s3_environment(endpoint: str, cache: Path) -> dict[str, str | None]:
    return {
        **CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ENDPOINT_URL_S3": None,
        "WORKSHOP_MODELS_CACHE": str(cache),
    }


def new_bucket(client) -> str:
    name = f"models-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return name


def wait_for(url: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + START_WAIT
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=2).read()
            return
        except OSError:
            if (process is not None and process.poll() is not None) or time.monotonic() > deadline:
                raise AssertionError(f"moto's server did not start on {url}") from None
            time.sleep(0.05)


class JournaledMotoServer:
    """`python -m moto.server` on a fixed loopback port, journaling every request to `folder/journal`."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.journal = self.folder / "journal.jsonl"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> "JournaledMotoServer":
        env = {**os.environ, "MOTO_ENABLE_RECORDING": "True", "MOTO_RECORDER_FILEPATH": str(self.journal)}
        with open(self.folder / "moto.log", "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self.url, self.process)
        if self.journal.exists() and self.journal.stat().st_size:
            self._replay()
        return self

    def _replay(self) -> None:
        """Bring back the state: replay the journal (moto does not journal the replay itself)."""
        entries = self.journal.read_text().splitlines()
        request = urllib.request.Request(f"{self.url}/moto-api/recorder/replay-recording", method="POST")
        urllib.request.urlopen(request, timeout=START_WAIT).read()
        assert len(self.journal.read_text().splitlines()) == len(entries), "the replay was journaled twice"

    def kill(self) -> None:
        """SIGKILL: the process and its memory are gone; only the journal remains."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(60)
            self.process = None

    def requests(self) -> list[dict]:
        return [json.loads(line) for line in self.journal.read_text().splitlines()]
