"""A real Redis for the tests: Debian's redis-server on a free loopback port, in a temporary folder,
with append-only persistence (as compose.yaml runs it), stopped at the end. A test that needs it
fails, never skips, when it cannot start."""

import shutil
import subprocess
import time
from pathlib import Path

import redis

from tests.polling import free_port

START_WAIT = 30.0  # seconds; a safety net on a loaded machine


class RedisServer:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        executable = shutil.which("redis-server")
        assert executable, "redis-server is not installed (apt-get install redis-server; .ci/run does it)"
        command = [
            executable,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.folder),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--protected-mode",
            "yes",
        ]
        with open(self.folder / "redis.log", "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + START_WAIT
        while True:
            try:
                client.ping()
                return self
            except redis.exceptions.ConnectionError as error:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = (self.folder / "redis.log").read_text()[-2000:]
                    raise AssertionError(f"redis-server did not start:\n{log}") from error
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        """SIGTERM: Redis writes its append-only file and exits, as `docker compose restart` has it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()
