"""workshop/notebook.py, the lessons' helpers: answers shown in words, claims, the check table, and apps run in
a child process (started, called, stopped, and explained in a sentence when they do not start)."""

import subprocess
import sys
import textwrap

import pytest

from app.paths import PROJECT_ROOT
from tests.polling import wait_until
from workshop import cli, exercises
from workshop import notebook as lesson

TODO = "TODO: return {'Hello': 'World'}"


def answer(status: int, body) -> lesson.Answer:
    import httpx

    return lesson.Answer("GET /", httpx.Response(status, json=body))


@pytest.fixture
def shown(monkeypatch):
    """What the helpers display, as text."""
    seen: list[str] = []
    monkeypatch.setattr(lesson, "show", lambda *things: seen.extend(repr(thing) for thing in things))
    return seen


@pytest.fixture
def learners_side():
    lesson.use_side("exercises")
    yield
    lesson.use_side(None)


@pytest.fixture
def solutions_side():
    lesson.use_side("solutions")
    yield
    lesson.use_side(None)


def test_a_starters_501_reads_as_not_written_yet_and_its_data_cannot_be_used():
    todo = answer(501, {"detail": TODO})
    assert todo.todo == TODO and todo.missing == f"not written yet: {TODO}"
    assert repr(todo) == f"GET / → 501, not written yet: {TODO}"
    with pytest.raises(lesson.NotWrittenYet, match="not written yet"):
        todo.json()


def test_an_answer_shows_its_status_and_body_and_escapes_html():
    ok = answer(200, {"result": "<Adelie>"})
    assert ok.ok and ok.json() == {"result": "<Adelie>"} and ok.todo is None
    assert repr(ok).startswith("GET / → 200 OK\n{") and '"result": "<Adelie>"' in repr(ok)
    assert "&lt;Adelie&gt;" in ok._repr_html_()
    refused = answer(422, {"detail": [{"loc": ["query", "bill"], "msg": "too small"}]})
    assert not refused.ok and refused.todo is None and refused.missing is None
    assert lesson.Answer("GET /", problem="the app is not running").missing == "the app is not running"


def test_a_claim_that_holds_shows_a_tick(shown, learners_side):
    with lesson.claim("it holds"):
        pass
    assert shown == ["✓ it holds"]


def test_a_claim_on_a_route_not_written_yet_waits_for_it(shown, learners_side):
    with lesson.claim("GET / greets the world"):
        lesson._answers.append(answer(501, {"detail": TODO}))
        assert lesson._answers[-1].json() == {"Hello": "World"}
    assert shown == [f"… GET / greets the world: to see once it is written (not written yet: {TODO})"]


def test_a_failing_claim_shows_why_to_the_learner_and_fails_against_the_solutions(shown, learners_side):
    with lesson.claim("a negative bill is refused"):
        raise AssertionError("bill=-3 answered 200")
    assert shown == ["✗ a negative bill is refused: not yet (bill=-3 answered 200)"]
    lesson.use_side("solutions")
    with pytest.raises(AssertionError, match="answered 200"):
        with lesson.claim("a negative bill is refused"):
            raise AssertionError("bill=-3 answered 200")
    with pytest.raises(lesson.NotWrittenYet):
        with lesson.claim("GET / greets the world"):
            raise lesson.NotWrittenYet("not written yet: TODO")


def test_the_side_is_the_lessons_choice_then_the_environment(monkeypatch):
    monkeypatch.setenv("WORKSHOP_SIDE", "solutions")
    assert lesson.current_side() == "solutions" and lesson.strict()
    assert lesson.use_side("exercises") == "exercises" and not lesson.strict()
    lesson.use_side(None)
    monkeypatch.delenv("WORKSHOP_SIDE")
    assert lesson.current_side() == "exercises"


def test_the_last_error_of_a_console_is_its_newest_tracebacks_last_line():
    console = "INFO: started\nTraceback (most recent call last):\n  File 'x.py', line 1\n    1/0\n"
    console += "ZeroDivisionError: division by zero\nINFO: 127.0.0.1 GET / 500\n"
    assert lesson.last_error(console) == "ZeroDivisionError: division by zero"
    assert lesson.last_error("INFO: all fine\n") is None


def test_the_check_table_has_both_tiers_and_the_first_failure_in_words():
    outcome = cli.Outcome(
        [
            cli.Check("test_root", 1, True),
            cli.Check("test_user", 1, False, "GET /users/johndoe should answer 200; it answered 501"),
            cli.Check("test_bounds", 2, False, "bill=inf answered 200", why="inf is no length", hint="add lt="),
        ]
    )
    report = lesson.CheckReport("part1/ex1_hello", PROJECT_ROOT / "exercises/part1/ex1_hello.py", outcome, 2.5)
    assert report.rows() == [
        ("the workshop's step", "✗ 1 of 2 pass", "GET /users/johndoe should answer 200; it answered 501"),
        ("going further", "✗ 0 of 1 pass", "bill=inf answered 200 (why: inf is no length) Hint: add lt="),
    ]
    assert (
        report.summary() == "part1/ex1_hello (exercises/part1/ex1_hello.py): the step is not done yet, checked in 2.5 s"
    )
    assert "<table>" in report._repr_html_() and "Hint: add lt=" in repr(report)
    nothing = lesson.CheckReport("part1/ex1_hello", PROJECT_ROOT / "x.py", cli.Outcome(), 1.0)
    assert "no check ran" in nothing.summary() and nothing.rows() == []


def test_a_file_exercise_is_not_written_while_it_is_the_untouched_starter(tmp_path):
    exercises.write_exercises(tmp_path / "starters")
    with pytest.raises(lesson.NotWrittenYet, match="not written yet: TODO: copy requirements.txt"):
        lesson.require_written("part3/ex1_image", side=str(tmp_path / "starters"))
    assert lesson.require_written("part3/ex1_image", side="solutions") == PROJECT_ROOT / "solutions/part3/Dockerfile"
    with pytest.raises(ValueError, match="is not an app"):
        lesson.start_app("part3/ex1_image", side="solutions")


# --- apps in a child process: each starts a server ---------------------------------------------------------


def app_file(tmp_path, body: str):
    path = tmp_path / "learner_app.py"
    path.write_text(textwrap.dedent(body))
    return path


@pytest.mark.slow
def test_an_untouched_starter_answers_its_todo_and_stops_on_demand(tmp_path):
    exercises.write_exercises(tmp_path / "starters")
    app = lesson.start_app("part1/ex1_hello", side=str(tmp_path / "starters"))
    try:
        assert app.running and app.url.startswith("http://127.0.0.1:") and app.docs.url == f"{app.url}/docs"
        todo = app.get("/")
        assert todo.status_code == 501 and todo.todo == 'TODO: return {"Hello": "World"}', todo
        assert app.get("/users/").status_code == 404
        assert "Application startup complete" in app.output
    finally:
        app.stop()
    assert app.process is None and not app.running
    assert app.get("/").missing == "part1/ex1_hello is not running (start it again)"


@pytest.mark.slow
def test_starting_an_exercise_again_stops_the_one_before(tmp_path):
    first = lesson.start_app("part1/ex1_hello", side="solutions")
    process = first.process
    second = lesson.start_app("part1/ex1_hello", side="solutions")
    try:
        assert process.poll() is not None, "the first app is still running"
        assert second.get("/").json() == {"Hello": "World"}
    finally:
        lesson.stop_all()
    assert second.process is None


SYNTAX_ERROR = 'from fastapi import FastAPI\napp = FastAPI()\n@app.get("/")\ndef root():\n    return {"Hello": 1\n'
FAILED_LIFESPAN = """
from contextlib import asynccontextmanager
from fastapi import FastAPI

@asynccontextmanager
async def lifespan(app):
    raise RuntimeError("no data")
    yield

app = FastAPI(lifespan=lifespan)
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        (SYNTAX_ERROR, "did not import: SyntaxError on line 5 (`return {\"Hello\": 1`): '{' was never closed."),
        ("from fastapi import FastAPI\nmodel = trian()\n", "NameError on line 2 (`model = trian()`): name 'trian' is"),
        ("api = 1\n", "did not import: LookupError: learner_app.py has no FastAPI app named `app`"),
        (
            FAILED_LIFESPAN,
            'failed while starting up: RuntimeError on line 7 (`raise RuntimeError("no data")`): no data.',
        ),
    ],
    ids=["syntax", "name", "no-app", "lifespan"],
)
def test_an_app_that_does_not_start_is_explained_in_a_sentence(tmp_path, body, sentence):
    app = lesson.start_file(app_file(tmp_path, body))
    assert app.failure is not None and not app.running
    assert sentence in app.failure, app.failure
    assert "Traceback" not in repr(app)
    assert app.get("/").missing == app.failure, "calling it says why it is not running, without raising"


@pytest.mark.slow
def test_a_crash_while_answering_is_named_from_the_apps_console(tmp_path):
    app = lesson.start_file(
        app_file(
            tmp_path, 'from fastapi import FastAPI\napp = FastAPI()\n@app.get("/")\ndef root():\n    return 1 / 0\n'
        )
    )
    try:
        crashed = app.get("/")
        assert crashed.status_code == 500 and crashed.crash == "ZeroDivisionError: division by zero", crashed
        assert "the app crashed with ZeroDivisionError" in repr(crashed)
    finally:
        app.stop()


@pytest.mark.slow
@pytest.mark.parametrize("ending", ["exits", "is killed"])
def test_the_apps_stop_when_the_kernel_ends(tmp_path, ending):
    """A kernel that exits (or restarts) without stopping its apps leaves none behind: atexit stops them, and an
    app whose kernel was killed outright (no atexit) stops itself."""
    path = app_file(
        tmp_path, 'from fastapi import FastAPI\napp = FastAPI()\n@app.get("/")\ndef root():\n    return {}\n'
    )
    end = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)" if ending == "is killed" else "pass"
    script = (
        f"from workshop.notebook import start_file\nprint(start_file({str(path)!r}).process.pid, flush=True)\n{end}\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    pid = int(done.stdout.strip().splitlines()[-1])
    wait_until(lambda: not _alive(pid), f"the app (pid {pid}) has stopped")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_check_from_a_notebook_runs_the_workshop_check_and_tabulates_it(tmp_path):
    exercises.write_exercises(tmp_path / "starters")
    starter = lesson.check("part1/ex1_hello", side=str(tmp_path / "starters"))
    assert not starter.outcome.passes(1)
    [(tier, passing, first)] = starter.rows()
    assert tier == "the workshop's step" and passing.startswith("✗ 0 of ") and "not written yet: TODO" in first
    solved = lesson.check("part1/ex1_hello", side="solutions")
    assert solved.outcome.passes(1) and solved.rows()[0][1].startswith("✓")
