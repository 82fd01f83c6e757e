"""The child process behind `workshop.notebook.start_app`: serve one app file on a loopback port.

    python -m workshop.notebook_server <app file> <report file>

It binds 127.0.0.1 on a port the system picks and writes that port to the report first, so the notebook
knows where to call before the app has even imported; then it imports the file as `fastapi dev` would
(its package's parent on sys.path) and serves its `app` with uvicorn, which accepts connections once the
app's lifespan start-up is done. If the file does not import, or its start-up fails, the report says why
(the error's type, message, file, line and code) and the process exits with 1: the notebook turns that
into a sentence instead of a traceback.
"""

import importlib
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI


def write_report(report: Path, **fields: Any) -> None:
    """Replace the report whole (a rename), so the notebook never reads half of it."""
    current = json.loads(report.read_text()) if report.exists() else {}
    partial = report.with_name(report.name + ".partial")
    partial.write_text(json.dumps({**current, **fields}))
    partial.replace(report)


def describe(error: BaseException, app_file: Path) -> dict[str, Any]:
    """The error's type and message, and where it happened: in the app's file when the traceback passes
    through it (the learner's line, not the framework's), else the deepest frame."""
    where: dict[str, Any] = {"file": None, "line": None, "code": None}
    if isinstance(error, SyntaxError) and error.filename:
        where = {"file": error.filename, "line": error.lineno, "code": (error.text or "").rstrip("\n")}
        if error.offset:
            where["column"] = error.offset
    else:
        frames = traceback.extract_tb(error.__traceback__)
        mine = [frame for frame in frames if Path(frame.filename).resolve() == app_file]
        theirs = [frame for frame in frames if Path(frame.filename).resolve() != Path(__file__).resolve()]
        if mine or theirs:  # never this launcher's own line: the error is then about the file as a whole
            frame = (mine or theirs)[-1]
            where = {"file": frame.filename, "line": frame.lineno, "code": (frame.line or "").strip()}
    message = error.msg if isinstance(error, SyntaxError) else str(error)
    return {"type": type(error).__name__, "message": message, **where}


def import_app(app_file: Path) -> FastAPI:
    """Import the file the way `fastapi dev <file>` does: as a module of its package, if it is in one."""
    parts = [app_file.stem]
    folder = app_file.parent
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    sys.path.insert(0, str(folder))
    module = importlib.import_module(".".join(parts))
    app = getattr(module, "app", None)
    if not isinstance(app, FastAPI):
        raise LookupError(f"{app_file.name} has no FastAPI app named `app` (write `app = FastAPI()`)")
    return app


def report_startup_failures(app: FastAPI, report: Path, app_file: Path) -> None:
    """Wrap the app's lifespan: an error before it yields (its start-up) goes to the report."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: Any):
        started = False
        try:
            async with inner(app_) as state:
                started = True
                yield state
        except BaseException as error:
            if not started:
                write_report(report, error=describe(error, app_file), phase="start-up")
            raise

    app.router.lifespan_context = lifespan


def stop_with_parent(parent: int) -> None:
    """A kernel killed outright never runs its atexit: the app stops itself (gracefully) once its parent is gone."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()


def main(argv: list[str]) -> int:
    stop_with_parent(os.getppid())
    app_file, report = Path(argv[0]).resolve(), Path(argv[1])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    write_report(report, port=listener.getsockname()[1], pid=os.getpid())
    try:
        app = import_app(app_file)
    except BaseException as error:  # the learner's file: any error at all is theirs to read
        write_report(report, error=describe(error, app_file), phase="import")
        return 1
    report_startup_failures(app, report, app_file)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="info"))
    server.run(sockets=[listener])
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
