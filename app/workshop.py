"""`workshop`: the learner's command.

    uv run workshop list                       every exercise, and whether your starter passes
    uv run workshop check part1/ex2_predict    run one exercise's checks against exercises/part1/ex2_predict.py
    uv run workshop check part1/ex2_predict --solution    ... against the reference solution
    uv run workshop generate [--check]         (maintainers) rewrite exercises/ from solutions/
    uv run workshop trainer                    a Part 3 trainer (WORKSHOP_QUEUE_URL, WORKSHOP_MODELS_DIR)

Checks are the same pytest tests that CI runs against solutions/; WORKSHOP_SIDE picks the side.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from app import exercises
from app.paths import PROJECT_ROOT

TESTS = PROJECT_ROOT / "tests" / "exercises"
SIDE_ENV = "WORKSHOP_SIDE"
SIDES = ("exercises", "solutions")


def exercise_names() -> list[str]:
    """`part1/ex1_hello` for every tests/exercises/part1/test_ex1_hello.py."""
    return sorted(
        f"{path.parent.name}/{path.stem.removeprefix('test_')}" for path in TESTS.glob("part*/test_*.py")
    )


def test_file(name: str) -> Path:
    name = name.removesuffix(".py").removeprefix("exercises/").removeprefix("solutions/")
    part, _, exercise = name.partition("/")
    path = TESTS / part / f"test_{exercise}.py"
    if not path.exists():
        known = ", ".join(exercise_names())
        raise SystemExit(f"no checks for {name!r}; the exercises are: {known}")
    return path


@dataclass
class Outcome:
    passed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (test, first line of the reason)

    @property
    def ok(self) -> bool:
        return bool(self.passed) and not self.failed


def run_checks(paths: list[Path], side: str, stop_at_first: bool = False) -> dict[str, Outcome]:
    """Run the tests in `paths` against `side` in a fresh interpreter; outcomes per test file."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.xml"
        command = [sys.executable, "-m", "pytest", *map(str, paths), "-q", "-p", "no:cacheprovider",
                   "-o", "addopts=", f"--junitxml={report}", "-W", "ignore"]
        if stop_at_first:
            command.append("-x")
        env = {**os.environ, SIDE_ENV: side}
        subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
        outcomes: dict[str, Outcome] = {}
        if not report.exists():
            return outcomes
        for case in ET.parse(report).iter("testcase"):
            module = case.get("classname", "").split(".")
            key = f"{module[-2]}/{module[-1].removeprefix('test_')}" if len(module) >= 2 else case.get("classname", "")
            outcome = outcomes.setdefault(key, Outcome())
            problem = case.find("failure") if case.find("failure") is not None else case.find("error")
            if problem is not None:
                message = (problem.get("message") or problem.text or "").strip().splitlines()
                outcome.failed.append((case.get("name", "?"), message[0] if message else "failed"))
            elif case.find("skipped") is None:
                outcome.passed.append(case.get("name", "?"))
        return outcomes


def learner_file(key: str, side: str) -> str:
    """part1/ex2_predict -> part1/ex2_predict.py; an exercise that is not a Python file (Part 3's
    Dockerfile and compose.yaml) is named by its part's folder."""
    python_file = f"{key}.py"
    return python_file if (PROJECT_ROOT / side / python_file).exists() else f"{key.partition('/')[0]}/"


def check(name: str, side: str) -> int:
    path = test_file(name)
    key = f"{path.parent.name}/{path.stem.removeprefix('test_')}"
    checked = learner_file(key, side)
    print(f"Checking {side}/{checked} ...")
    outcome = run_checks([path], side).get(key, Outcome())
    for test in outcome.passed:
        print(f"  ok    {test}")
    if outcome.failed:
        test, reason = outcome.failed[0]
        print(f"  FAIL  {test}\n        {reason}")
        print(f"\n{len(outcome.passed)} passed, {len(outcome.failed)} failed. Fix the first failure and run the check again.")
        print(f"Stuck? Compare with the solution: diff -ru exercises/{checked} solutions/{checked}")
        return 1
    if not outcome.passed:
        print("  no check ran: does the file import? Try `fastapi dev` on it to see the error.")
        return 1
    print(f"\nAll {len(outcome.passed)} checks pass. Well done!")
    return 0


def list_exercises(side: str) -> int:
    names = exercise_names()
    outcomes = run_checks([test_file(name) for name in names], side)
    for name in names:
        outcome = outcomes.get(name, Outcome())
        status = "done" if outcome.ok else "todo"
        print(f"  [{status}] {name:28} {len(outcome.passed)} passed, {len(outcome.failed)} failed")
    return 0


def generate(check_only: bool) -> int:
    if check_only:
        problems = exercises.stale_exercises()
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    for path in exercises.write_exercises():
        print(f"exercises/{path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="workshop", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    check_parser = commands.add_parser("check", help="run one exercise's checks")
    check_parser.add_argument("exercise", help="e.g. part1/ex2_predict")
    check_parser.add_argument("--solution", action="store_true", help="check the reference solution instead")
    list_parser = commands.add_parser("list", help="every exercise and whether it passes")
    list_parser.add_argument("--solution", action="store_true")
    generate_parser = commands.add_parser("generate", help="(maintainers) rewrite exercises/ from solutions/")
    generate_parser.add_argument("--check", action="store_true", help="only report what is stale")
    commands.add_parser("trainer", help="run a Part 3 trainer: takes training jobs from the queue")
    args = parser.parse_args(argv)
    if args.command == "trainer":
        from app.part3 import trainer_worker

        return trainer_worker.main()
    if args.command == "generate":
        return generate(args.check)
    side = "solutions" if args.solution else "exercises"
    if args.command == "check":
        return check(args.exercise, side)
    return list_exercises(side)


if __name__ == "__main__":
    sys.exit(main())
