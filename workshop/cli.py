"""`workshop`: the learner's command.

    uv run workshop list                       every exercise in the workshop's order, from your last checks
    uv run workshop next                       the first exercise not done yet
    uv run workshop check part1/ex2_predict    the workshop's step, then "going further" (this project's fixes)
    uv run workshop check part1/ex2_predict --all        ... and fail unless the going-further checks pass too
    uv run workshop check part1/ex2_predict --solution   ... against the reference solution
    uv run workshop hint part1/ex2_predict     one more hint each time; the last is a diff against the solution
    uv run workshop reset part1/ex2_predict    the starter back (your file is kept in .workshop/backups/)
    uv run workshop generate [--check] [--force]   (maintainers) rewrite exercises/ from solutions/
    uv run workshop trainer                    a Part 3 trainer (WORKSHOP_QUEUE_URL, WORKSHOP_MODELS_DIR)

Checks are the same pytest tests that CI runs against solutions/; WORKSHOP_SIDE picks the side (a folder
name such as `exercises`, or any path). Checks marked `going_further` are the second tier.
"""

import argparse
import ast
import difflib
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from app.paths import PROJECT_ROOT
from workshop import exercises
from workshop.check_output import show_without_noise

TESTS = PROJECT_ROOT / "tests" / "exercises"
SIDE_ENV = "WORKSHOP_SIDE"
STATE = PROJECT_ROOT / ".workshop"  # the learner's own state: last results, hints shown, backups
RESULTS = STATE / "results.json"
HINTS_SHOWN = STATE / "hints.json"
GOING_FURTHER = "going_further"

# The workshop's order: each extra challenge after the exercise whose section it ends.
ORDER = (
    "part1/ex1_hello",
    "part1/ex2_predict",
    "part1/ex3_validation",
    "part1/challenge_units",
    "part2/ex1_background",
    "part2/ex2_lifespan",
    "part2/ex3_retrain",
    "part2/challenge_retrain",
    "part2/ex4_race_free",
    "part2/challenge_startup",
    "part3/ex1_image",
    "part3/ex2_volume",
    "part3/challenge_compose",
)
# The learner's file of the exercises that are not a Python app of the same name.
NOT_PYTHON = {
    "part3/ex1_image": "part3/Dockerfile",
    "part3/ex2_volume": "part3/Dockerfile",
    "part3/challenge_compose": "part3/compose.yaml",
}


def exercise_names() -> list[str]:
    """`part1/ex1_hello` for every tests/exercises/part1/test_ex1_hello.py, in the workshop's order."""
    names = {f"{path.parent.name}/{path.stem.removeprefix('test_')}" for path in TESTS.glob("part*/test_*.py")}
    return sorted(names, key=lambda name: (ORDER.index(name) if name in ORDER else len(ORDER), name))


def exercise_key(name: str) -> str:
    name = name.removesuffix(".py").removeprefix("exercises/").removeprefix("solutions/").strip("/")
    if name not in exercise_names():
        raise SystemExit(f"no checks for {name!r}; the exercises are: {', '.join(exercise_names())}")
    return name


def test_file(name: str) -> Path:
    part, _, exercise = exercise_key(name).partition("/")
    return TESTS / part / f"test_{exercise}.py"


def learner_file(key: str) -> str:
    """part1/ex2_predict -> part1/ex2_predict.py (Part 3's exercises are its Dockerfile and compose.yaml)."""
    return NOT_PYTHON.get(key, f"{key}.py")


def steps_in_file(key: str) -> list[str]:
    """The exercises whose learner's file is `key`'s, in the workshop's order (Part 3's Dockerfile holds two)."""
    return [step for step in exercise_names() if learner_file(step) == learner_file(key)]


def side_root(side: str) -> Path:
    return exercises.EXERCISES if side == "exercises" else PROJECT_ROOT / side  # an absolute `side` stays


def shown_path(path: Path) -> Path:
    return path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path


@dataclass
class Check:
    name: str
    tier: int  # 1: the workshop's step; 2: going further
    passed: bool
    reason: str = ""  # the first line of why it failed: one sentence
    why: str = ""  # going further: why this matters
    hint: str = ""
    detail: str = ""  # the lines after the reason, e.g. a syntax error's code line and caret


@dataclass
class Outcome:
    checks: list[Check] = field(default_factory=list)

    def tier(self, number: int) -> list[Check]:
        return [check for check in self.checks if check.tier == number]

    def passes(self, number: int) -> bool:
        checks = self.tier(number)
        return bool(checks) and all(check.passed for check in checks)

    @property
    def ok(self) -> bool:
        return self.passes(1)


# A check that errs in its set-up (the learner's file does not import) is reported by pytest as
# `failed on setup with "<message>"`; an exception's type is named with its module.
_ERROR_WRAPPER = re.compile(r'^failed on (?:setup|teardown) with "(?P<message>.*)"$', re.S)
_MODULE_OF_TYPE = re.compile(r"^(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_]\w*: )")
_TRUNCATION_NOTE = re.compile(r"^\[(?:\+\d+ more lines?|truncated); full report in element text\]$")


def _why(problem: ET.Element) -> tuple[str, str]:
    """(reason, detail): the failure's first line as a sentence, and the lines after it."""
    text = (problem.get("message") or problem.text or "failed").strip()
    lines = [line for line in text.splitlines() if not _TRUNCATION_NOTE.match(line)]
    text = "\n".join(lines)
    if wrapped := _ERROR_WRAPPER.match(text):
        text = wrapped["message"]
    first, *rest = text.splitlines() or ["failed"]
    first = first.removeprefix("AssertionError: ").removeprefix("Failed: ")
    first = _MODULE_OF_TYPE.sub("", first)  # app.onnx_export.ServingExportFailed: -> ServingExportFailed:
    # The message's own lines, not pytest's explanation of a plain `assert` ("assert [] ...", "+  where").
    detail = list(itertools.takewhile(lambda line: not line.startswith("assert "), rest))
    return first or "failed", "\n".join(detail).rstrip()


def _read_report(report: Path) -> dict[str, Outcome]:
    outcomes: dict[str, Outcome] = {}
    if not report.exists():
        return outcomes
    for case in ET.parse(report).iter("testcase"):
        module = case.get("classname", "").split(".")
        key = f"{module[-2]}/{module[-1].removeprefix('test_')}" if len(module) >= 2 else case.get("classname", "")
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        if case.find("skipped") is not None and problem is None:
            continue
        reason, detail = _why(problem) if problem is not None else ("", "")
        outcomes.setdefault(key, Outcome()).checks.append(
            Check(
                case.get("name", "?"),
                2 if GOING_FURTHER in properties else 1,
                problem is None,
                reason,
                properties.get(GOING_FURTHER) or "",
                properties.get("hint") or "",
                detail,
            )
        )
    return outcomes


def run_checks(paths: list[Path], side: str, quiet: bool = True, extra: tuple[str, ...] = ()) -> dict[str, Outcome]:
    """Run the tests in `paths` against `side` in a fresh interpreter; outcomes per exercise.

    Not quiet, the learner sees what runs as it runs: their own prints and the checks' `[check]` lines
    (a training's start and one line per epoch), without pytest's progress dots or the frameworks' noise
    (workshop/check_output.py)."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.xml"
        command = [
            sys.executable,
            "-m",
            "pytest",
            *map(str, paths),
            "-p",
            "no:terminal",  # no dots nor summary: the outcome is read from the report below
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            f"--junitxml={report}",
            "-W",
            "ignore",
            *extra,
        ]
        # The checks need none of the suite's pytest plugins (schemathesis, hypothesis...): loading them
        # would take most of a Part 1 check's time.
        env = {**os.environ, SIDE_ENV: side, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
        if quiet:
            subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
        else:
            show_without_noise([*command, "-s"], cwd=PROJECT_ROOT, env={**env, "PYTHONUNBUFFERED": "1"})
        return _read_report(report)


def _load_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _save_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _file_digest(path: Path) -> str | None:
    return exercises.digest(path.read_text(errors="replace")) if path.exists() else None


def _print_tier(title: str, checks: list[Check], going_further: bool) -> None:
    """FAIL lines first, one per check function (its parametrized cases counted), then the ok ones."""
    if not checks:
        return
    groups: dict[str, list[Check]] = {}
    for one in checks:
        groups.setdefault(one.name.split("[")[0], []).append(one)
    print(f"\n{title}: {sum(c.passed for c in checks)} of {len(checks)} checks pass")
    for name, cases in sorted(groups.items(), key=lambda group: all(c.passed for c in group[1])):
        failed = [c for c in cases if not c.passed]
        count = f" ({len(cases) - len(failed)} of {len(cases)} cases pass)" if len(cases) > 1 and failed else ""
        if not failed:
            print(f"  ok    {name}" + (f" ({len(cases)} cases)" if len(cases) > 1 else ""))
            continue
        print(f"  FAIL  {name}{count}\n        {failed[0].reason}")
        for line in failed[0].detail.splitlines():
            print(f"        {line}")
        if going_further and failed[0].why:
            print(f"        why: {failed[0].why}")
        if failed[0].hint:
            print(f"        hint: {failed[0].hint}")


def _print_why_nothing_ran(outcome: Outcome) -> bool:
    """When every check failed for one same reason (the file does not import), say it once."""
    reasons = {(check.reason, check.detail) for check in outcome.checks}
    if len(outcome.checks) < 2 or len(reasons) != 1 or any(check.passed for check in outcome.checks):
        return False
    [(reason, detail)] = reasons
    print(f"\nNone of the {len(outcome.checks)} checks could run:\n  {reason}")
    for line in detail.splitlines():
        print(f"  {line}")
    return True


def check(name: str, side: str, require_all: bool = False) -> int:
    key = exercise_key(name)
    checked = side_root(side) / learner_file(key)
    print(f"Checking {shown_path(checked)} ...")
    # Every step the file holds is checked, and recorded, so that `list` and `next` judge each step on
    # the file as it is now: finishing Part 3's exercise 2 in the Dockerfile leaves exercise 1 checked.
    steps = steps_in_file(key)
    outcomes = run_checks([test_file(step) for step in steps], str(side_root(side)), quiet=False)
    outcome = outcomes.get(key, Outcome())
    if not outcome.checks:
        print(
            "  no check ran: does the file import?"
            f" Try `uv run fastapi dev {side}/{learner_file(key)}` to see the error."
        )
        return 1
    if not _print_why_nothing_ran(outcome):
        _print_tier("The workshop's step", outcome.tier(1), going_further=False)
        going_further = "Going further (what this project fixes in the workshop's code)"
        _print_tier(going_further, outcome.tier(2), going_further=True)
    if side == "exercises":
        results = _load_json(RESULTS)
        for step in steps:
            done = outcomes.get(step, Outcome())
            results[step] = {"digest": _file_digest(checked), "step": done.passes(1), "going_further": done.passes(2)}
        _save_json(RESULTS, results)
    print()
    if not outcome.passes(1):
        print("The step is not done yet: fix the first problem above and check again.")
        print(f"Stuck? uv run workshop hint {key}")
        return 1
    if outcome.passes(2) or not outcome.tier(2):
        print("The step and every going-further check pass. Well done!")
        return 0
    print("The workshop's step is done. The going-further checks above are this project's fixes to try next.")
    return 1 if require_all else 0


def status(key: str) -> str:
    """not started / started / done / done + going further, from the last `check` of the file as it is now."""
    path = side_root("exercises") / learner_file(key)
    now = _file_digest(path)
    starter = exercises.expected_exercises().get(Path(learner_file(key)))
    if starter is not None and now == exercises.digest(starter):
        return "not started"
    result = _load_json(RESULTS).get(key)
    if not result or result.get("digest") != now:
        return "started (not checked since your last change)"
    if result["step"]:
        return "done + going further" if result["going_further"] else "done"
    return "started (its last check failed)"


def list_exercises() -> int:
    for key in exercise_names():
        print(f"  {key:26} {status(key)}")
    print("\n(from your last `uv run workshop check <exercise>` of each file; `check` runs them again)")
    return 0


def next_exercise() -> int:
    for key in exercise_names():
        if not status(key).startswith("done"):
            print(f"Next: {key}   (exercises/{learner_file(key)}; `uv run workshop check {key}` when ready)")
            return 0
    print("Every exercise is done. Try the going-further checks: uv run workshop check <exercise> --all")
    return 0


def written_hints(key: str) -> list[str]:
    """The HINTS list of the exercise's test file, read without importing it."""
    tree = ast.parse(test_file(key).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "HINTS" for t in node.targets):
            return list(ast.literal_eval(node.value))
    return []


def clean_solution(text: str) -> str:
    """A solution's text without the generator's markers: what the answer looks like as a file."""
    markers = (exercises.BEGIN, exercises.END, exercises.STARTER_LINE)
    return "".join(line for line in text.splitlines(keepends=True) if not any(m.match(line) for m in markers))


def solution_diff(key: str) -> str:
    relative = learner_file(key)
    mine = side_root("exercises") / relative
    theirs = clean_solution((exercises.SOLUTIONS / relative).read_text())
    diff = difflib.unified_diff(
        mine.read_text().splitlines(keepends=True) if mine.exists() else [],
        theirs.splitlines(keepends=True),
        f"exercises/{relative} (yours)",
        f"solutions/{relative}",
    )
    return "".join(diff) or "Your file is the solution already."


def hint(key: str) -> int:
    key = exercise_key(key)
    hints = written_hints(key)
    shown = _load_json(HINTS_SHOWN)
    number = min(shown.get(key, 0), len(hints))
    if number < len(hints):
        print(f"Hint {number + 1} of {len(hints) + 1} for {key}:\n\n{hints[number]}")
        print(f"\n(`uv run workshop hint {key}` again for the next one)")
    else:
        print(
            f"Hint {len(hints) + 1} of {len(hints) + 1} for {key}:"
            " what your file lacks, as a diff against the solution\n"
        )
        print(solution_diff(key))
    shown[key] = number + 1
    _save_json(HINTS_SHOWN, shown)
    return 0


def reset(key: str) -> int:
    relative = Path(learner_file(exercise_key(key)))
    backup = exercises.reset(relative, STATE / "backups")
    print(f"exercises/{relative} is the starter again.")
    if backup is not None:
        print(f"Your version is kept in {shown_path(backup)}.")
    _save_json(HINTS_SHOWN, {k: v for k, v in _load_json(HINTS_SHOWN).items() if k != key})
    return 0


def generate(check_only: bool, force: bool) -> int:
    if check_only:
        problems = exercises.stale_exercises()
        for problem in problems:
            print(problem)
        if problems:
            print("run `uv run workshop generate`")
        return 1 if problems else 0
    try:
        written = exercises.write_exercises(force=force)
    except exercises.LearnersWork as work:
        print("Not generating: these files are not the starters last generated (someone's work?):")
        for path in work.paths:
            print(f"  exercises/{path}")
        print("Keep them (commit or copy them), then `uv run workshop reset <exercise>` for one starter,")
        print("or `uv run workshop generate --force` to overwrite them all.")
        return 1
    for path in written:
        print(f"exercises/{path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="workshop", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check_parser = commands.add_parser("check", help="run one exercise's checks")
    check_parser.add_argument("exercise", help="e.g. part1/ex2_predict")
    check_parser.add_argument("--solution", action="store_true", help="check the reference solution instead")
    check_parser.add_argument("--all", action="store_true", help="fail unless the going-further checks pass too")
    commands.add_parser("list", help="every exercise and how far you are, from your last checks")
    commands.add_parser("next", help="the first exercise not done yet")
    for command, text in (("hint", "the next hint for an exercise"), ("reset", "the starter of an exercise back")):
        commands.add_parser(command, help=text).add_argument("exercise")
    generate_parser = commands.add_parser("generate", help="(maintainers) rewrite exercises/ from solutions/")
    generate_parser.add_argument("--check", action="store_true", help="only report what is stale")
    generate_parser.add_argument("--force", action="store_true", help="overwrite edited exercises too")
    commands.add_parser("trainer", help="run a Part 3 trainer: takes training jobs from the queue")
    args = parser.parse_args(argv)
    if args.command == "trainer":
        from app.part3 import trainer_worker

        return trainer_worker.main()
    if args.command == "generate":
        return generate(args.check, args.force)
    if args.command == "check":
        return check(args.exercise, "solutions" if args.solution else "exercises", args.all)
    if args.command == "hint":
        return hint(args.exercise)
    if args.command == "reset":
        return reset(args.exercise)
    if args.command == "next":
        return next_exercise()
    return list_exercises()


if __name__ == "__main__":
    sys.exit(main())
