"""Helpers shared by the reliability and security tests.

- `send(client, case)` sends a corpus case (bad_requests.py) through a TestClient or an httpx
  client; a query string too long for httpx's URL goes below it (the ASGI app, or http.client).
- `store_state(models_dir)` lists every stored version with the sha256 of its file as it is on
  disk, the pinned version and anything else in the model folders: compared before and after, it
  shows that nothing was added, lost, changed or left behind.
- `TrainerProcess(folder, env)`: `workshop trainer` as a process of its own, in its own folder;
  `fine_tune(api, n)` sends a service process a fine-tune of 10 + n digits (or the training zip).
"""

import http.client
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from bad_requests import BadRequest, digit_png
from fastapi.testclient import TestClient
from part3_support import API_KEY, training_zip

from app.paths import PROJECT_ROOT
from app.store import ACTIVE_FILE, METADATA_FILE, sha256_of


class RawResponse:
    """Just enough of an httpx.Response for the corpus checks."""

    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code = status_code
        self.content = body
        self.text = body.decode(errors="replace")

    def json(self):
        return json.loads(self.content)


async def _asgi_get(app, target: str, query: bytes, headers: dict[str, str], state: dict) -> RawResponse:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": target,
        "raw_path": target.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"testserver"), *((k.lower().encode(), v.encode()) for k, v in headers.items())],
        "client": ("testclient", 50000),
        "server": ("testserver", 80),
        "state": dict(state),
    }
    started, body = {}, []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            started["status"] = message["status"]
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    await app(scope, receive, send)
    return RawResponse(started["status"], b"".join(body))


def raw_get(client, target: str, query: bytes, headers: dict[str, str]) -> RawResponse:
    if isinstance(client, TestClient):
        return client.portal.call(_asgi_get, client.app, target, query, headers, getattr(client, "app_state", {}))
    url = urlsplit(str(client.base_url))
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        connection.request("GET", f"{target}?{query.decode()}", headers=headers)
        answer = connection.getresponse()
        return RawResponse(answer.status, answer.read())
    finally:
        connection.close()


def send(client: TestClient | httpx.Client, case: BadRequest, api_key: str | None = None):
    headers = dict(case.headers)
    if api_key and case.needs_key:
        headers["X-API-Key"] = api_key
    if case.raw_query is not None:
        return raw_get(client, case.target, case.raw_query(), headers)
    return client.request(
        case.method,
        case.target,
        params=case.params,
        files=case.files() if case.files else None,
        data=case.data,
        content=case.content() if case.content else None,
        headers=headers,
    )


KEY = {"X-API-Key": API_KEY}


def store_state(models_dir: Path) -> dict[str, object]:
    """Every entry under the model folders: versions with their metadata's and their file's sha256,
    the pinned version, and any other file or folder (a leftover would show here)."""
    state: dict[str, object] = {}
    for model in sorted(path for path in Path(models_dir).iterdir() if path.is_dir() and not path.name.startswith(".")):
        for entry in sorted(model.iterdir()):
            key = f"{model.name}/{entry.name}"
            if entry.name.isdigit() and (entry / METADATA_FILE).exists():
                metadata = json.loads((entry / METADATA_FILE).read_text())
                state[key] = (metadata["sha256"], sha256_of(entry / metadata["file"]))
            elif entry.name == ACTIVE_FILE:
                state[key] = entry.read_text().strip()
            elif not entry.name.endswith(".lock"):  # lock files are kept on purpose, empty
                state[key] = "present"
    return state


def leftovers(root: Path, prefix: str = ".tmp-") -> list[str]:
    """Temporary files or folders anywhere under `root`."""
    return sorted(
        os.path.relpath(os.path.join(folder, name), root)
        for folder, folders, files in os.walk(root)
        for name in [*folders, *files]
        if name.startswith(prefix)
    )


class TrainerProcess:
    """`python -m workshop.cli trainer` (what `uv run workshop trainer` runs), in its own folder."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "trainer.log"
        environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **env}
        with open(self.log, "ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "workshop.cli", "trainer"],
                cwd=folder,
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = self.process.pid

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait()


def fine_tune(api, n: int, epochs: int = 1, zip_file: bool = False) -> dict:
    files = (
        {"files": training_zip()}
        if zip_file
        else [("files", (f"img{n}{k:03d}_{k % 10}.png", digit_png(k % 10), "image/png")) for k in range(10 + n)]
    )
    response = api.client.post("/train/", files=files, data={"epochs": str(epochs)}, headers=KEY)
    assert response.status_code == 202, response.text
    return response.json()
