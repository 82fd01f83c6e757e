"""exercises/ is generated from solutions/; the check runs both ways (solutions pass, starters fail)."""

import json
import re
import subprocess
from pathlib import Path

import pytest

from app.paths import PROJECT_ROOT
from tests.fresh_modules import import_fresh, slow_if_it_imports_keras
from workshop import cli as workshop
from workshop import exercises

SOLUTION = """from fastapi import FastAPI

app = FastAPI()


@app.get("/")
def read_root():
    # BEGIN SOLUTION greet the world
    return {"Hello": "World"}
    # END SOLUTION


def predict(
    # BEGIN SOLUTION validate bill
    bill: Annotated[float, Query(gt=0)],
    # EXERCISE: bill: float,
    # END SOLUTION
):
    return bill
"""


def test_a_solution_block_becomes_a_501_todo():
    starter = exercises.strip_solutions(SOLUTION)
    assert "from fastapi import FastAPI, HTTPException" in starter
    assert (
        "    # TODO: greet the world\n    raise HTTPException(status_code=501, detail='TODO: greet the world')"
        in starter
    )
    assert '{"Hello": "World"}' not in starter and "SOLUTION" not in starter
    compile(starter, "starter.py", "exec")


def test_exercise_lines_replace_the_block():
    starter = exercises.strip_solutions(SOLUTION)
    assert "    # TODO: validate bill\n    bill: float,\n" in starter
    assert "Query(gt=0)" not in starter


def test_markers_must_pair():
    with pytest.raises(exercises.MarkerError, match="without END"):
        exercises.strip_solutions("# BEGIN SOLUTION\nx = 1\n")
    with pytest.raises(exercises.MarkerError, match="without BEGIN"):
        exercises.strip_solutions("x = 1\n# END SOLUTION\n")


def test_non_python_files_get_a_comment_only():
    dockerfile = (
        "FROM python:3.12\n# BEGIN SOLUTION copy the code\nCOPY . /code\n# EXERCISE: COPY ??? /code\n# END SOLUTION\n"
    )
    assert (
        exercises.strip_solutions(dockerfile, python=False)
        == "FROM python:3.12\n# TODO: copy the code\nCOPY ??? /code\n"
    )


def test_exercises_are_generated_from_the_solutions():
    """The record of generated starters matches what the solutions generate now. It never reads
    exercises/, which is the learner's: a clone with every exercise solved passes this test."""
    problems = exercises.stale_exercises()
    assert not problems, "exercises/ is stale; run `uv run workshop generate`:\n" + "\n".join(problems)


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout


def test_the_committed_starters_are_the_recorded_ones():
    """In the commit that last changed the record, exercises/ holds exactly the recorded starters (a
    maintainer who edits exercises/ by hand, or commits a regenerated record without its starters, fails).
    Read from git, so a learner's edits and commits since then are not looked at."""
    try:
        commit = git("log", "-1", "--format=%H", "--", str(exercises.MANIFEST.relative_to(PROJECT_ROOT))).strip()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    if not commit:
        pytest.skip("the record of starters is not committed yet")
    record = json.loads(git("show", f"{commit}:workshop/exercise_starters.json"))
    committed = {
        name.removeprefix("exercises/"): exercises.digest(git("show", f"{commit}:{name}"))
        for name in git("ls-tree", "-r", "--name-only", commit, "exercises/").split()
    }
    assert committed == record, f"commit {commit[:10]}: exercises/ and workshop/exercise_starters.json disagree"


@pytest.fixture
def scratch_checkout(tmp_path, monkeypatch):
    """exercises/ and its record in a temporary folder, generated as the repository's are."""
    monkeypatch.setattr(exercises, "EXERCISES", tmp_path / "exercises")
    monkeypatch.setattr(exercises, "MANIFEST", tmp_path / "exercise_starters.json")
    monkeypatch.setattr(workshop, "STATE", tmp_path / ".workshop")
    monkeypatch.setattr(workshop, "RESULTS", tmp_path / ".workshop" / "results.json")
    monkeypatch.setattr(workshop, "HINTS_SHOWN", tmp_path / ".workshop" / "hints.json")
    exercises.write_exercises()
    return tmp_path / "exercises"


def test_generate_refuses_to_overwrite_a_learners_answer(scratch_checkout, capsys):
    answer = scratch_checkout / "part1" / "ex1_hello.py"
    answer.write_text(answer.read_text() + "\n# my answer\n")
    assert workshop.main(["generate"]) == 1
    out = capsys.readouterr().out
    assert "exercises/part1/ex1_hello.py" in out and "--force" in out and "workshop reset" in out
    assert answer.read_text().endswith("# my answer\n"), "generate overwrote the learner's file"
    assert workshop.main(["generate", "--force"]) == 0
    assert "# my answer" not in answer.read_text()


def test_generate_replaces_untouched_starters_and_removes_none_of_the_learners_files(scratch_checkout):
    notes = scratch_checkout / "part1" / "my_notes.py"
    notes.write_text("# mine\n")
    with pytest.raises(exercises.LearnersWork) as refused:
        exercises.write_exercises()
    assert refused.value.paths == [Path("part1/my_notes.py")]
    notes.unlink()
    (scratch_checkout / "part1" / "ex1_hello.py").unlink()
    exercises.write_exercises()  # untouched or missing starters are simply written
    assert (scratch_checkout / "part1" / "ex1_hello.py").exists()


def test_reset_gives_the_starter_back_and_keeps_the_learners_file(scratch_checkout, capsys):
    answer = scratch_checkout / "part2" / "ex1_background.py"
    starter = answer.read_text()
    answer.write_text("# my attempt\n")
    assert workshop.main(["reset", "part2/ex1_background"]) == 0
    assert answer.read_text() == starter
    [backup] = (workshop.STATE / "backups").iterdir()
    assert backup.read_text() == "# my attempt\n"
    assert str(backup.name) in capsys.readouterr().out


def test_list_answers_from_the_last_checks_in_the_workshops_order(scratch_checkout, monkeypatch, capsys):
    monkeypatch.setattr(workshop, "run_checks", lambda *a, **k: pytest.fail("`workshop list` ran the checks"))
    solved = scratch_checkout / "part1" / "ex1_hello.py"
    solved.write_text((exercises.SOLUTIONS / "part1" / "ex1_hello.py").read_text())
    workshop._save_json(
        workshop.RESULTS,
        {"part1/ex1_hello": {"digest": exercises.digest(solved.read_text()), "step": True, "going_further": False}},
    )
    assert workshop.main(["list"]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("  ")]
    assert [line[0] for line in lines] == [name for name in workshop.ORDER if name in workshop.exercise_names()]
    assert lines[0][1:] == ["done"] and lines[1][1:] == ["not", "started"]
    assert workshop.main(["next"]) == 0
    assert "part1/ex2_predict" in capsys.readouterr().out


def test_progress_is_tracked_per_step_when_two_share_a_file(scratch_checkout, capsys):
    """Part 3's exercises 1 and 2 are both in exercises/part3/Dockerfile: finishing exercise 2 there leaves
    exercise 1 done (checked on the file as it is now), and `next` goes on, not back to exercise 1."""
    from tests.text_answers import DOCKERFILE_EX1, DOCKERFILE_EX2, dockerfile_at_todos

    dockerfile = scratch_checkout / "part3" / "Dockerfile"
    dockerfile.write_text(dockerfile_at_todos(DOCKERFILE_EX1))
    assert workshop.main(["check", "part3/ex1_image"]) == 0
    assert workshop.status("part3/ex1_image") == "done"
    dockerfile.write_text(dockerfile_at_todos(DOCKERFILE_EX2))  # exercise 2, in the same file
    workshop.main(["check", "part3/ex2_volume"])
    assert workshop.status("part3/ex2_volume").startswith("done")
    assert workshop.status("part3/ex1_image") == "done"
    capsys.readouterr()
    workshop.main(["next"])
    assert "part3/ex1_image" not in capsys.readouterr().out


def test_every_exercise_has_hints_and_the_last_is_a_clean_diff(scratch_checkout, capsys):
    for name in workshop.exercise_names():
        assert workshop.written_hints(name), f"{name}: no HINTS in its test file"
    name = "part1/ex1_hello"
    for _ in workshop.written_hints(name):
        workshop.main(["hint", name])
    capsys.readouterr()
    workshop.main(["hint", name])
    diff = capsys.readouterr().out
    assert '+    return {"Hello": "World"}' in diff
    assert "SOLUTION" not in diff and "EXERCISE:" not in diff


def test_every_solution_app_has_checks():
    apps = {f"{path.parent.name}/{path.stem}" for path in exercises.solution_files() if path.suffix == ".py"}
    missing = apps - set(workshop.exercise_names())
    assert not missing, f"no tests/exercises/<part>/test_<name>.py for {sorted(missing)}"
    assert set(workshop.exercise_names()) <= set(workshop.ORDER), "add the new exercise to workshop.ORDER"


@pytest.mark.slow
def test_every_untouched_starter_fails_its_checks(tmp_path):
    """rustlings' rule: a starter that passes before the learner writes anything teaches nothing.

    The starters are generated afresh into a temporary folder (never the learner's exercises/), and
    one pytest process runs every exercise's checks against them: each must fail a check of the
    workshop's step. (The same checks pass against solutions/ in the main run of the suite.)
    """
    exercises.write_exercises(tmp_path / "exercises")
    outcomes = workshop.run_checks([PROJECT_ROOT / "tests" / "exercises"], str(tmp_path / "exercises"))
    assert set(outcomes) == set(workshop.exercise_names())
    passing = sorted(name for name, outcome in outcomes.items() if outcome.passes(1))
    assert not passing, f"these starters pass the workshop's step untouched: {passing}"
    # What a learner reads first: every failure of an untouched starter, in both tiers, is a sentence.
    not_sentences = [
        f"{name} {check.name}: {check.reason}"
        for name, outcome in outcomes.items()
        for check in outcome.checks
        if not check.passed and not reads_as_a_sentence(check.reason)
    ]
    assert not not_sentences, "\n".join(not_sentences)


# Python's words where a learner reads a check's failure: its None, reprs of dicts and lists
# ({'a': 1}, ['x']: an answer is shown as JSON), pytest's own messages.
NOT_A_SENTENCE = re.compile(r"\bNone\b|\{'|\['|\bRegex pattern\b|^assert |^AssertionError\b|<\w+ object at 0x")


def reads_as_a_sentence(reason: str) -> bool:
    return bool(reason.strip()) and not NOT_A_SENTENCE.search(reason)


@pytest.mark.parametrize(
    ("reason", "sentence"),
    [
        ('GET / should answer 200; it answered 501: not written yet: TODO: return {"Hello": "World"}', True),
        ("declare the volume `None` under a top-level `volumes:` key", False),
        ("predictions should come from the version the store serves (None); it was 5", False),
        ("it answered {'Num of trained models': 0}", False),
        ("Regex pattern did not match.", False),
        ("", False),
    ],
)
def test_reads_as_a_sentence(reason, sentence):
    assert reads_as_a_sentence(reason) == sentence


@pytest.mark.parametrize(
    "name",
    [
        slow_if_it_imports_keras(exercises.SOLUTIONS / f"{name}.py", name, id=name)
        for name in ("part2/ex4_race_free", "part2/challenge_startup")
    ],
)
def test_the_exercises_serve_their_own_store_not_the_notebooks(name, tmp_path, monkeypatch):
    """The notebooks publish into models/<name>/ (app/part1, app/part2 and Part 3 serve it); a notebook
    run must never become the model a learner's exercise serves."""
    from app.paths import models_dir

    monkeypatch.setenv("WORKSHOP_MODELS_DIR", str(tmp_path))
    module = import_fresh(exercises.SOLUTIONS / f"{name}.py", prefix="store_check")
    assert module.store.root.resolve() != models_dir().resolve()
    assert module.store.root.is_relative_to(tmp_path), "the exercise's store should move with WORKSHOP_MODELS_DIR"


def test_a_maintainers_test_that_reads_exercises_is_caught():
    """exercises/ is the learner's: tests/conftest.py records every open or listing of it outside the
    exercise checks and fails the test that did it. Here a read is made and taken back from the record."""
    from tests.exercise_guard import EXERCISES, reads_of_exercises

    reads_of_exercises()
    with pytest.raises(FileNotFoundError):
        open(EXERCISES / "part1" / "no_such_file.py")  # recorded as it is attempted
    assert reads_of_exercises() == [str(EXERCISES / "part1" / "no_such_file.py")]
    assert reads_of_exercises() == [], "the record is emptied once read"
