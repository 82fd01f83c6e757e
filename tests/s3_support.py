"""A real S3 protocol server for the tests: moto's server on a free 127.0.0.1 port, and the AWS_*
variables that point boto3 (and so app/storage/bucket.py, in this process and the ones it starts) at it.

- `AtomicMotoServer` for most tests: moto's S3 application (what its ThreadedMotoServer and its
  `moto_server` command serve) on werkzeug's threaded server in a thread of the test process,
  answering conditional puts as S3 does (412 PreconditionFailed for a second `If-None-Match: *` or a
  stale `If-Match`), one request at a time: moto checks a put's condition and then writes, in two
  steps, so under ThreadedMotoServer two concurrent `If-None-Match: *` puts of one key were both
  answered 200 here (S3 and MinIO decide atomically). It imports moto's werkzeug application from
  moto.moto_server.werkzeug_app, where moto's own servers take it (test_store_bucket.py fails if the
  wrapping stops holding).
- `JournaledMotoServer`, the same application as a process of its own (`python -m tests.s3_support PORT`)
  that can be stopped and started again with its data: moto keeps its state in memory, so its recorder
  journals every request to a file (as Redis' append-only file does) and a new process replays the
  journal before it is used (only its writes: reads change nothing, and replaying them would take long).
  One request at a time matters here too: moto's recorder writes an entry and its newline in two calls,
  so under `python -m moto.server` two concurrent requests could share one journal line (seen in CI),
  and the journal's order would be the order of recording, not of the writes it replays.
- `Doorway`, a TCP forwarder on a fixed port: closed, the store is unreachable; behind it a
  `JournaledMotoServer` can be restarted and replayed before any client sees its half-restored state.
"""

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

from tests.polling import free_port

REPOSITORY = Path(__file__).resolve().parents[1]
WRITES = {"PUT", "POST", "DELETE"}
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


def one_request_at_a_time_moto():
    """moto's WSGI application (as its servers build it), its S3 requests answered one at a time."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    moto = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def application(environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/moto-api/"):  # the recorder's replay calls this server back
            return moto(environ, start_response)
        with lock:
            return list(moto(environ, start_response))  # the whole answer made under the lock

    return application


def moto_http_server(port: int):
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    return make_server(
        "127.0.0.1", port, one_request_at_a_time_moto(), threaded=True, request_handler=MotoRequestHandler
    )


class AtomicMotoServer:
    """moto's S3 on a free loopback port, its requests handled one at a time (see the module's docstring)."""

    def __init__(self) -> None:
        self.server = moto_http_server(0)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="moto", daemon=True)

    def start(self) -> "AtomicMotoServer":
        self.thread.start()
        wait_for(self.endpoint)
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(60)


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
                [sys.executable, "-m", "tests.s3_support", str(self.port)],
                cwd=REPOSITORY,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self.url, self.process)
        if self.journal.exists() and self.journal.stat().st_size:
            self._replay()
        return self

    def _replay(self) -> None:
        """Bring back the state: replay the journal's writes (moto does not journal the replay itself)."""
        entries = [line for line in journal_lines(self.journal) if json.loads(line)["method"] in WRITES]
        self.journal.write_text("".join(f"{line}\n" for line in entries))
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
        return [json.loads(line) for line in journal_lines(self.journal)]


def journal_lines(journal: Path) -> list[str]:
    """The journal's entries. A last line cut short by SIGKILL is left out, as Redis loads a truncated
    append-only file: moto records a request before answering it, so that request was never answered."""
    lines = journal.read_text().splitlines()
    if lines:
        try:
            json.loads(lines[-1])
        except json.JSONDecodeError:
            lines.pop()
    return lines


class Doorway:
    """A TCP forwarder on a fixed loopback port in front of a server: `close()` refuses and cuts every
    connection (the store unreachable, as in a network partition), `open()` lets them through again.
    Behind a closed doorway a server can be restarted and its state brought back before anyone sees it."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> "Doorway":
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name="doorway", daemon=True).start()
        return self

    def close(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._connections = self._connections, []
        for sock in [listener, *connections]:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    server.close()
                    return
                self._connections += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)


if __name__ == "__main__":  # JournaledMotoServer's process
    moto_http_server(int(sys.argv[1])).serve_forever()
