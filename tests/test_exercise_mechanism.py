"""exercises/ is generated from solutions/; the check runs both ways (solutions pass, starters fail)."""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from app import exercises, workshop
from app.paths import PROJECT_ROOT

SOLUTION = '''from fastapi import FastAPI

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
'''


def test_a_solution_block_becomes_a_501_todo():
    starter = exercises.strip_solutions(SOLUTION)
    assert "from fastapi import FastAPI, HTTPException" in starter
    assert "    # TODO: greet the world\n    raise HTTPException(status_code=501, detail='TODO: greet the world')" in starter
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
    dockerfile = "FROM python:3.12\n# BEGIN SOLUTION copy the code\nCOPY . /code\n# EXERCISE: COPY ??? /code\n# END SOLUTION\n"
    assert exercises.strip_solutions(dockerfile, python=False) == "FROM python:3.12\n# TODO: copy the code\nCOPY ??? /code\n"


def test_exercises_are_generated_from_the_solutions():
    problems = exercises.stale_exercises()
    assert not problems, "exercises/ is stale; run `uv run workshop generate`:\n" + "\n".join(problems)


def test_every_solution_app_has_checks():
    apps = {f"{path.parent.name}/{path.stem}" for path in exercises.solution_files() if path.suffix == ".py"}
    missing = apps - set(workshop.exercise_names())
    assert not missing, f"no tests/exercises/<part>/test_<name>.py for {sorted(missing)}"


@pytest.mark.slow
def test_every_untouched_starter_fails_its_checks(tmp_path):
    """rustlings' rule: a starter that passes before the learner writes anything teaches nothing.

    One pytest process runs every exercise's checks against exercises/; each must fail at least one.
    (The same checks pass against solutions/ in the main run of the suite.)
    """
    report = tmp_path / "report.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", str(PROJECT_ROOT / "tests" / "exercises"), "-q", "-p", "no:cacheprovider",
         "-o", "addopts=", f"--junitxml={report}", "-W", "ignore"],
        cwd=PROJECT_ROOT, env={**os.environ, "WORKSHOP_SIDE": "exercises"}, capture_output=True, text=True,
        timeout=900,
    )
    failures: dict[str, int] = {}
    for case in ET.parse(report).iter("testcase"):
        module = case.get("classname", "").split(".")
        name = f"{module[-2]}/{module[-1].removeprefix('test_')}"
        failed = case.find("failure") is not None or case.find("error") is not None
        failures[name] = failures.get(name, 0) + failed
    assert set(failures) == set(workshop.exercise_names())
    passing = sorted(name for name, count in failures.items() if count == 0)
    assert not passing, f"these starters pass their checks untouched: {passing}"
