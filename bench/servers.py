"""Start a server as a real process on 127.0.0.1, wait until it answers, measure, stop it."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http(url: str, data: bytes | None = None, headers: dict | None = None, timeout: float = 60) -> tuple[int, bytes]:
    """One request; returns (status, body) for any status, raises OSError when nothing answers."""
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    port: int
    ready_seconds: float  # from process start to the first 200 on the ready path
    log: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def peak_rss_mb(self) -> float:
        """The worker's peak resident memory so far (VmHWM), in MiB."""
        return peak_rss_mb(self.process.pid)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def uvicorn(target: str, port: int, *options: str) -> list[str]:
    """The command `fastapi run` amounts to with one worker, access log off for every server alike."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        *options,
    ]


@dataclass
class Started:
    name: str
    process: subprocess.Popen
    at: float  # perf_counter() when the process was started
    log: Path


def start(name: str, command: list[str], env: dict | None = None) -> Started:
    """Start `command` in its own session, so that stopping it also stops what it started
    (LitServe's workers, Part 3's trainer)."""
    safe_name = "".join(char if char.isalnum() else "_" for char in name)[:40]
    log = Path(tempfile.mkstemp(prefix=f"bench-{safe_name}-", suffix=".log")[1])
    at = time.perf_counter()
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env={**os.environ, **(env or {})},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Started(name, process, at, log)


@contextmanager
def serve(
    name: str,
    command: list[str],
    port: int,
    ready_path: str = "/",
    env: dict | None = None,
    timeout: float = 600,
    started: Started | None = None,
) -> Iterator[Server]:
    """Run `command` (which listens on `port`) until the block ends; `started` if it already runs.
    Ready means a 200 on `ready_path`; `Server.ready_seconds` counts from the process's start."""
    started = started or start(name, command, env)
    process, log = started.process, started.log
    try:
        ready_url = f"http://127.0.0.1:{port}{ready_path}"
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail(log)}")
            if time.perf_counter() - started.at > timeout:
                raise RuntimeError(f"{name} was not ready after {timeout:.0f} s:\n{tail(log)}")
            try:
                if http(ready_url, timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)  # often enough; more would steal the GIL from its start-up
        yield Server(name, process, port, time.perf_counter() - started.at, log)
    finally:
        stop(process)
        log.unlink(missing_ok=True)


def stop(process: subprocess.Popen, grace: float = 15) -> None:
    """SIGINT (a graceful shutdown) to the server's process group, SIGKILL after `grace` seconds."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGINT)
            process.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            return
    try:
        os.killpg(process.pid, signal.SIGKILL)  # whatever it left behind
    except ProcessLookupError:
        pass
    process.wait()


def tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
