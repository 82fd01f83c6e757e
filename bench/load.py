"""Drive a server from another process and report requests/s and latency percentiles.

wrk (C, epoll) when it is installed, so the load generator costs the server's core as little as
possible; otherwise bench/client.py. Set BENCH_CLIENT=python to force the latter.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

WRK_SCRIPT = Path(__file__).with_name("wrk_report.lua")


@dataclass(frozen=True)
class Load:
    """A measured load run. Requests that failed (non-2xx, timeouts) are counted in `errors`."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    tool: str

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else float("nan")


def load_tool() -> str:
    wanted = os.environ.get("BENCH_CLIENT", "auto")
    if wanted == "python" or (wanted == "auto" and shutil.which("wrk") is None):
        return "python"
    return "wrk"


def measure(
    url: str,
    connections: int = 1,
    seconds: float = 5.0,
    body: bytes = b"",
    content_type: str | None = None,
    method: str | None = None,
) -> Load:
    """Send requests to `url` on `connections` keep-alive connections for `seconds`."""
    method = method or ("POST" if body else "GET")
    tool = load_tool()
    with tempfile.NamedTemporaryFile(prefix="bench-body-", delete=False) as file:
        file.write(body)
    try:
        if tool == "wrk":
            env = {
                **os.environ,
                "BENCH_METHOD": method,
                "BENCH_BODY_FILE": file.name if body else "",
                "BENCH_CONTENT_TYPE": content_type or "",
            }
            # wrk's duration is whole seconds; its default 2 s timeout would count the workshop's slow
            # requests as errors.
            command = [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "60s",
                "-s",
                str(WRK_SCRIPT),
                url,
            ]
        else:
            env = dict(os.environ)
            command = [
                sys.executable,
                "-m",
                "bench.client",
                url,
                "--method",
                method,
                "--connections",
                str(connections),
                "--seconds",
                str(seconds),
            ]
            if body:
                command += ["--body-file", file.name]
            if content_type:
                command += ["--header", f"Content-Type: {content_type}"]
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=env,
            timeout=seconds + 120,
            cwd=Path(__file__).resolve().parent.parent,
        )
    finally:
        os.unlink(file.name)
    lines = [line for line in done.stdout.splitlines() if line.startswith(("BENCH ", "{"))]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{tool} failed on {url}: {done.stderr.strip() or done.stdout.strip()}")
    result = json.loads(lines[-1].removeprefix("BENCH "))
    return Load(result["requests"], result["seconds"], result["p50_ms"], result["p99_ms"], result["errors"], tool)


def multipart(files: list[tuple[str, str, bytes]], fields: dict[str, str] | None = None) -> tuple[bytes, str]:
    """A multipart/form-data body of (field, filename, content) files and plain fields, and its type."""
    boundary = "bench-boundary-7d1c3e"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in (fields or {}).items()
    ]
    for field, filename, content in files:
        content_type = "application/zip" if filename.endswith(".zip") else "image/png"
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"
