"""Run, call and check the workshop's exercises from a notebook cell (the lesson notebooks' helpers).

    app = start_app("part1/ex2_predict")   # exercises/part1/ex2_predict.py on 127.0.0.1 (WORKSHOP_SIDE: which side)
    app.get("/predict/", params={"bill": 40.3, "flipper": 195})   # shown, or "not written yet: <the TODO>"
    app.docs                               # a link to its /docs
    app.output                             # what it printed: its console under `fastapi dev`
    app.stop()                             # also done when the same exercise starts again, and when the kernel exits
    check("part1/ex2_predict")             # the same two-tier check as `uv run workshop check`, as a table

    with claim("a negative bill is refused with a 422"):   # one of the lesson's claims, checked on the spot
        assert app.get("/predict/", params={"bill": -3, "flipper": 195}).status_code == 422

An app runs in a child process (workshop/notebook_server.py) so that the learner's file is imported afresh
each time, exactly as `fastapi dev` would, and a crash or a hang never takes the notebook down with it.
Nothing here raises at the learner for an exercise that is not written yet: an untouched starter answers
501 with its TODO, which a cell shows as "not written yet: <the TODO>", and a `claim` about it waits until
it is written. Against the solutions (WORKSHOP_SIDE=solutions, how the test suite runs the lessons) every
claim must hold, so a claim that fails there fails the notebook.
"""

import atexit
import html
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.paths import PROJECT_ROOT, setting
from workshop import cli, exercises

DEFAULT_SIDE = "exercises"
START_TIMEOUT = 600.0  # seconds: a Part 2 app trains before it serves, on a shared machine
REQUEST_TIMEOUT = 300.0
STOP_GRACE = 20.0  # seconds the app gets to run its shutdown before it is killed
LIVE_LINES = 6  # lines of the app's console shown while it starts


_chosen_side: str | None = None  # use_side's choice, over WORKSHOP_SIDE


def use_side(side: str | None) -> str:
    """Pin the side for this kernel (a lesson's `side` parameter); None goes back to WORKSHOP_SIDE."""
    global _chosen_side
    _chosen_side = side
    return current_side()


def current_side() -> str:
    """Where the apps come from: `exercises` (the learner's files), `solutions` or a folder; use_side's
    choice, else WORKSHOP_SIDE, else exercises."""
    return _chosen_side or setting("SIDE", DEFAULT_SIDE) or DEFAULT_SIDE


def strict() -> bool:
    """Against the solutions every claim of a lesson must hold (the test suite's run)."""
    return current_side() == "solutions"


def show(*things: Any) -> None:
    """Display in the notebook (IPython's display), or print outside one."""
    try:
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython is a dev dependency
        print(*things)
        return
    display(*things)


class NotWrittenYet(Exception):
    """An answer's data was asked for, but the route answered its TODO (or the app is not running)."""


@dataclass
class Answer:
    """One request to the learner's app and what came back, shown in a cell as the answer in plain words."""

    request: str  # e.g. "GET /predict/?bill=40.3&flipper=195"
    response: httpx.Response | None = None
    problem: str | None = None  # why there is no answer: the app is not running, the connection broke
    crash: str | None = None  # on a 500: the error the app's console reported for it

    @property
    def status_code(self) -> int | None:
        return None if self.response is None else self.response.status_code

    @property
    def ok(self) -> bool:
        return self.response is not None and self.response.is_success

    @property
    def headers(self) -> httpx.Headers:
        return httpx.Headers() if self.response is None else self.response.headers

    @property
    def text(self) -> str:
        return "" if self.response is None else self.response.text

    @property
    def todo(self) -> str | None:
        """The TODO an untouched starter answers with (a 501), or None."""
        if self.response is None or self.response.status_code != 501:
            return None
        try:
            detail = self.response.json().get("detail")
        except (ValueError, AttributeError):
            return None
        return detail if isinstance(detail, str) else None

    @property
    def missing(self) -> str | None:
        """Why this answer cannot be used yet, in words: not written yet, or the app is not running."""
        if self.todo is not None:
            return f"not written yet: {self.todo}"
        return self.problem

    def json(self) -> Any:
        """The body as JSON; NotWrittenYet when the route is a TODO or the app did not answer."""
        if self.missing is not None or self.response is None:
            raise NotWrittenYet(self.missing or "no answer")
        return self.response.json()

    def describe(self) -> str:
        if self.response is None:
            return f"{self.request} → no answer: {self.problem}"
        status = f"{self.response.status_code} {self.response.reason_phrase}".strip()
        if self.todo is not None:
            return f"{self.request} → {self.response.status_code}, not written yet: {self.todo}"
        line = f"{self.request} → {status}"
        if self.crash:
            line += f": the app crashed with {self.crash} (`app.output` shows the traceback)"
        return line

    def body(self) -> str:
        if self.response is None or self.todo is not None or self.crash:
            return ""
        kind = self.response.headers.get("content-type", "")
        if "json" in kind:
            try:
                return json.dumps(self.response.json(), indent=2, ensure_ascii=False)
            except ValueError:
                pass
        text = self.response.text
        return text if len(text) <= 2000 else text[:2000] + "…"

    def __repr__(self) -> str:
        body = self.body()
        return self.describe() + (("\n" + body) if body else "")

    def _repr_html_(self) -> str:
        body = self.body()
        colour = "#2e7d32" if self.ok else ("#b26a00" if self.missing else "#c62828")
        shown = f'<div style="color:{colour}"><code>{html.escape(self.describe())}</code></div>'
        return shown + (f"<pre>{html.escape(body)}</pre>" if body else "")


_answers: list[Answer] = []  # every answer of this kernel, in order: a claim looks at those made inside it
_running: dict[str, "LearnerApp"] = {}  # one app per exercise or file


@dataclass
class Link:
    url: str
    text: str

    def __repr__(self) -> str:
        return f"{self.text}: {self.url}"

    def _repr_html_(self) -> str:
        return f'<a href="{html.escape(self.url)}" target="_blank">{html.escape(self.text)}</a>'


@dataclass
class LearnerApp:
    """An app file served by uvicorn in a child process; `failure` says why it is not running, if it is not."""

    name: str
    file: Path
    url: str = ""
    process: subprocess.Popen | None = None
    log: Path | None = None
    failure: str | None = None
    started_in: float = 0.0  # seconds from start to its first answer
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=REQUEST_TIMEOUT))

    @property
    def running(self) -> bool:
        return self.failure is None and self.process is not None and self.process.poll() is None

    @property
    def output(self) -> str:
        """Everything the app printed so far (its console)."""
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""

    def _logged_error(self, since: int, wait: float = 2.0) -> str | None:
        """The error the console reports after `since` (uvicorn logs it just after sending the 500)."""
        deadline = time.monotonic() + wait
        while (found := last_error(self.output.encode()[since:].decode(errors="replace"))) is None:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)
        return found

    def _console_size(self) -> int:
        return self.log.stat().st_size if self.log and self.log.exists() else 0

    @property
    def docs(self) -> Link:
        return Link(f"{self.url}/docs", f"{self.name}: its API docs (/docs)")

    @property
    def redoc(self) -> Link:
        return Link(f"{self.url}/redoc", f"{self.name}: the same docs by ReDoc (/redoc)")

    def request(self, method: str, path: str, **kwargs: Any) -> Answer:
        """Any request; the answer is shown in words, never raised (see Answer)."""
        described = f"{method} {path}"
        if params := kwargs.get("params"):
            described += "?" + str(httpx.QueryParams(params))
        if not self.running:
            answer = Answer(described, problem=self.failure or f"{self.name} is not running (start it again)")
        else:
            console_before = self._console_size()
            try:
                response = self.client.request(method, self.url + path, **kwargs)
                answer = Answer(described, response)
                if response.status_code >= 500 and response.status_code != 501:
                    answer.crash = self._logged_error(since=console_before)
            except httpx.HTTPError as error:
                answer = Answer(described, problem=f"{type(error).__name__}: {error}")
        _answers.append(answer)
        return answer

    def get(self, path: str, **kwargs: Any) -> Answer:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Answer:
        return self.request("POST", path, **kwargs)

    def follow(self, until: Any, what: str, timeout: float = START_TIMEOUT) -> Any:
        """Show the app's new console lines live (e.g. a training's epochs) until `until()` returns something
        truthy, and return that. `until` may call the app: a TODO answer stops the wait (NotWrittenYet)."""
        live = _LiveConsole(self, since=self._console_size(), title=f"{self.name}, waiting until {what}")
        deadline = time.monotonic() + timeout
        try:
            while not (result := until()):
                if not self.running:
                    raise NotWrittenYet(self.failure or f"{self.name} stopped; `app.output` shows why")
                if time.monotonic() > deadline:
                    raise AssertionError(f"gave up waiting until {what}")
                live.update()
                time.sleep(0.2)
            live.update()
        finally:
            live.close(final=False)
        return result

    def stop(self) -> None:
        """Stop the app (its shutdown runs first) and every process it started."""
        process, self.process = self.process, None
        if _running.get(self.name) is self:
            del _running[self.name]
        self.client.close()
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass

    def describe(self) -> str:
        if self.failure:
            return self.failure
        if not self.running:
            return f"{self.name} is stopped."
        return f"{self.name} answers at {self.url} (started in {self.started_in:.1f} s; docs: {self.url}/docs)"

    def __repr__(self) -> str:
        return self.describe()

    def _repr_html_(self) -> str:
        if not self.running:
            return f"<div><code>{html.escape(self.describe())}</code></div>"
        return (
            f"<div><code>{html.escape(self.name)}</code> answers at <a href='{self.url}' target='_blank'>{self.url}</a>"
            f" (started in {self.started_in:.1f} s) · {self.docs._repr_html_()} · {self.redoc._repr_html_()}</div>"
        )


def last_error(console: str) -> str | None:
    """The last line of the newest traceback in a piece of console output, e.g. "ValueError: ..."."""
    header = "Traceback (most recent call last):"
    if header not in console:
        return None
    block = console.rsplit(header, 1)[1]
    lines = [line for line in block.splitlines() if line.strip() and not line.startswith((" ", "\t"))]
    return lines[0].strip() if lines else None


def exercise_path(name: str, side: str | None = None) -> tuple[str, Path]:
    """`part1/ex2_predict` -> its key and <side>/part1/ex2_predict.py (the same rules as `workshop check`)."""
    key = cli.exercise_key(name)
    return key, cli.side_root(side or current_side()) / cli.learner_file(key)


def require_written(name: str, side: str | None = None) -> Path:
    """The exercise's file; NotWrittenYet, with its first TODO, while it is still the untouched starter
    (for the exercises that are not apps, such as part3/ex1_image's Dockerfile)."""
    key, path = exercise_path(name, side)
    starter = exercises.expected_exercises().get(Path(cli.learner_file(key)))
    if starter is not None and path.exists() and path.read_text() == starter:
        todos = [line.split("TODO:", 1)[1].strip() for line in starter.splitlines() if "TODO:" in line]
        raise NotWrittenYet(f"not written yet: TODO: {todos[0] if todos else 'the whole file'}")
    return path


def start_app(name: str, side: str | None = None, env: dict[str, str] | None = None) -> LearnerApp:
    """Serve an exercise's file (`part1/ex2_predict`) from WORKSHOP_SIDE's folder until it answers."""
    key, file = exercise_path(name, side)
    if file.suffix != ".py":
        raise ValueError(f"{key} is not an app: its file is {cli.shown_path(file)}")
    return start_file(file, name=key, env=env)


def start_file(file: Path | str, name: str | None = None, env: dict[str, str] | None = None) -> LearnerApp:
    """Serve any app file (`app/part3/main.py`, relative to the project) until it answers, showing its
    console meanwhile. The app of the same name started before is stopped first."""
    file = Path(file) if Path(file).is_absolute() else PROJECT_ROOT / file
    name = name or str(cli.shown_path(file))
    if name in _running:
        _running[name].stop()
    shown = cli.shown_path(file)
    if not file.exists():
        return _failed(LearnerApp(name, file, failure=f"{shown} does not exist."))
    scratch = Path(tempfile.mkdtemp(prefix="workshop-app-"))
    log = scratch / "console.txt"
    app = LearnerApp(name, file, log=log)
    report = scratch / "report.json"
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    started = time.monotonic()
    with open(log, "wb") as console:
        app.process = subprocess.Popen(
            [sys.executable, "-m", "workshop.notebook_server", str(file), str(report)],
            cwd=PROJECT_ROOT,  # as `uv run fastapi dev exercises/...` from the project's folder
            env=environment,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends whatever it started too
        )
    _running[name] = app
    live = _LiveConsole(app)
    try:
        while True:
            facts = _read_report(report)
            if "error" in facts or app.process.poll() is not None:
                app.failure = _start_failure(shown, facts, app)
                app.stop()
                return _failed(app)
            if "port" in facts:
                app.url = f"http://127.0.0.1:{facts['port']}"
                if _answers_at_all(app):
                    break
            if time.monotonic() - started > START_TIMEOUT:
                app.failure = f"{shown} did not answer within {START_TIMEOUT:.0f} s; `app.output` shows its console."
                app.stop()
                return _failed(app)
            live.update()
            time.sleep(0.2)
        app.started_in = time.monotonic() - started
    finally:
        live.close()
    return app


def _failed(app: LearnerApp) -> LearnerApp:
    _running.pop(app.name, None)
    return app


def _answers_at_all(app: LearnerApp) -> bool:
    try:
        app.client.get(app.url + "/openapi.json", timeout=5.0)
        return True
    except httpx.HTTPError:
        return False


def _read_report(report: Path) -> dict[str, Any]:
    try:
        return json.loads(report.read_text())
    except (OSError, ValueError):
        return {}


def _start_failure(shown: Path, facts: dict[str, Any], app: LearnerApp) -> str:
    """Why the app did not start, in a sentence: the error's type, its line and its message."""
    error = facts.get("error")
    if not error:
        code = app.process.returncode if app.process is not None else None
        found = last_error(app.output)
        because = f": {found}" if found else f" (exit code {code})"
        return f"{shown} stopped before it answered{because}; `app.output` shows its console."
    phase = "did not import" if facts.get("phase") == "import" else "failed while starting up"
    where = ""
    if error.get("line"):
        elsewhere = error.get("file") and Path(error["file"]).resolve() != app.file.resolve()
        where = f" on line {error['line']}" + (f" of {error['file']}" if elsewhere else "")
        if error.get("code"):
            where += f" (`{error['code'].strip()}`)"
    return f"{shown} {phase}: {error['type']}{where}: {error['message']}."


class _LiveConsole:
    """The last lines of an app's console, updated in the cell while it starts (e.g. its first training) or
    while the notebook waits for something (`follow`)."""

    def __init__(self, app: LearnerApp, since: int = 0, title: str = "") -> None:
        self.app = app
        self.since = since
        self.title = title or f"{app.name} is starting ..."
        self.shown = ""
        self.handle: Any = None

    def update(self) -> None:
        console = self.app.output.encode()[self.since :].decode(errors="replace")
        # uvicorn's access log would drown the lines worth watching (the epochs) under the notebook's own polling
        lines = [line for line in console.splitlines() if line.strip() and ' HTTP/1.1" ' not in line][-LIVE_LINES:]
        text = "\n".join(lines)
        if text == self.shown:
            return
        self.shown = text
        try:
            from IPython import get_ipython
            from IPython.display import Pretty, display
        except ImportError:  # pragma: no cover
            return
        if get_ipython() is None:  # a script, not a notebook: no live lines
            return
        shown = Pretty(f"{self.title}\n{text}")
        if self.handle is None:
            self.handle = display(shown, display_id=True)
        else:
            self.handle.update(shown)

    def close(self, final: bool = True) -> None:
        """After a start: replace the lines by the app's state (where it answers, or why it did not start)."""
        if not final:
            return
        if self.handle is not None:
            self.handle.update(self.app)
        else:
            show(self.app)


def import_keras_quietly() -> Any:
    """Import Keras in the notebook's own kernel without TensorFlow's start-up lines, which it writes
    straight to the process's standard error whatever its log level, nor its retracing warnings."""
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    sys.stderr.flush()
    saved, silent = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(silent, 2)
    try:
        import keras
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(silent)
    return keras


def stop_all() -> None:
    for app in list(_running.values()):
        app.stop()


atexit.register(stop_all)  # the kernel exits or restarts: no app outlives it


class claim:
    """One of the lesson's claims, checked on the spot: `with claim("..."):` around the requests and asserts.

    It shows ✓ and the sentence when the block runs through. When an answer inside it is a TODO (or the app
    is not running) it shows that instead and lets the notebook go on: the claim is checked once the
    exercise is written. Any other failure shows ✗ and why, or, against the solutions, fails the cell.
    """

    def __init__(self, sentence: str) -> None:
        self.sentence = sentence
        self._first = 0

    def __enter__(self) -> "claim":
        self._first = len(_answers)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: Any) -> bool:
        if kind is None:
            show(Verdict("✓", self.sentence))
            return False
        if not isinstance(error, Exception):
            return False  # an interrupt: let it through
        missing = next((a.missing for a in _answers[self._first :] if a.missing is not None), None)
        if missing is None and isinstance(error, NotWrittenYet):
            missing = str(error)
        if strict():
            return False
        if missing is not None:
            show(Verdict("…", f"{self.sentence}: to see once it is written ({missing})"))
        else:
            reason = str(error) if isinstance(error, AssertionError) and str(error) else f"{kind.__name__}: {error}"
            show(Verdict("✗", f"{self.sentence}: not yet ({reason})"))
        return True


@dataclass
class Verdict:
    mark: str
    sentence: str

    def __repr__(self) -> str:
        return f"{self.mark} {self.sentence}"

    def _repr_html_(self) -> str:
        colour = {"✓": "#2e7d32", "✗": "#c62828"}.get(self.mark, "#b26a00")
        return f'<div style="color:{colour}">{self.mark} {html.escape(self.sentence)}</div>'


@dataclass
class CheckReport:
    """`workshop check`'s two tiers for one exercise, as a short table."""

    key: str
    file: Path
    outcome: cli.Outcome
    seconds: float

    def rows(self) -> list[tuple[str, str, str]]:
        """(tier, how many pass, the first failure in plain words)."""
        rows = []
        for number, title in ((1, "the workshop's step"), (2, "going further")):
            checks = self.outcome.tier(number)
            if not checks:
                continue
            failed = [check for check in checks if not check.passed]
            passing = f"{len(checks) - len(failed)} of {len(checks)} pass"
            first = ""
            if failed:
                first = failed[0].reason or failed[0].name
                if failed[0].why:
                    first += f" (why: {failed[0].why})"
                if failed[0].hint:
                    first += f" Hint: {failed[0].hint}"
            rows.append((title, ("✓ " if not failed else "✗ ") + passing, first))
        return rows

    def summary(self) -> str:
        shown = cli.shown_path(self.file)
        if not self.outcome.checks:
            return f"{self.key}: no check ran ({self.seconds:.1f} s): does {shown} import? start_app shows why not."
        if not self.outcome.passes(1):
            verdict = "the step is not done yet"
        elif self.outcome.tier(2) and not self.outcome.passes(2):
            verdict = "the step is done; going further is next"
        else:
            verdict = "done, going further included"
        return f"{self.key} ({shown}): {verdict}, checked in {self.seconds:.1f} s"

    def __repr__(self) -> str:
        lines = [self.summary()]
        lines += [f"  {tier:20} {passing:16} {first}" for tier, passing, first in self.rows()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        cells = "".join(
            f"<tr><td>{html.escape(tier)}</td><td>{html.escape(passing)}</td>"
            f"<td style='text-align:left'>{html.escape(first)}</td></tr>"
            for tier, passing, first in self.rows()
        )
        head = "<tr><th></th><th>checks</th><th style='text-align:left'>first failure</th></tr>"
        table = f"<table>{head}{cells}</table>" if cells else ""
        return f"<div><b>{html.escape(self.summary())}</b>{table}</div>"


def check(name: str, side: str | None = None) -> CheckReport:
    """Run an exercise's checks as `uv run workshop check <name>` does (the same tests, the same tiers)."""
    key = cli.exercise_key(name)
    side = side or current_side()
    started = time.monotonic()
    outcome = cli.run_checks([cli.test_file(key)], side).get(key, cli.Outcome())
    return CheckReport(key, cli.side_root(side) / cli.learner_file(key), outcome, time.monotonic() - started)


def in_background(work: Any, *args: Any) -> threading.Thread:
    """Run `work(*args)` on a thread of its own (two requests at once), started now."""
    thread = threading.Thread(target=work, args=args, daemon=True)
    thread.start()
    return thread
