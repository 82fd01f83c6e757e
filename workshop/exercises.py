"""Generate the learner's starters in exercises/ from the hand-edited solutions in solutions/.

solutions/ is the only side anyone edits. In a solution, the learner's part is marked:

    def read_root():
        # BEGIN SOLUTION return {"Hello": "World"}
        return {"Hello": "World"}
        # END SOLUTION

In the starter that block becomes a TODO which answers HTTP 501 (never a 500), so an untouched
starter runs, serves its other routes, and fails its checks:

    def read_root():
        # TODO: return {"Hello": "World"}
        raise HTTPException(status_code=501, detail='TODO: return {"Hello": "World"}')

Lines written `# EXERCISE: <code>` inside a block are the starter's code instead of the `raise`
(for a learner's part that is not a function body, such as a parameter list or a Dockerfile line).
Among them, a line whose code is `TODO_501` is the block's `raise`, at that line's indentation: a
block can hold a whole route, decorator and `def`, whose body in the starter answers 501.
Files without markers are copied as they are; non-Python files get only the TODO comment.

`fill_todos` is the other way round: a starter with given code pasted at its TODOs, as a learner
pastes the workshop's code there (the checks' tests use it for the workshop text's own code).

exercises/ is also where the learner works, so generating never overwrites a learner's answer:
workshop/exercise_starters.json (committed) records the sha256 of every starter as last generated, and
`write_exercises` refuses to replace a file that no longer matches its record (it is someone's work)
unless forced. The maintainers' drift checks compare the generator's output with that record, never
with the files a learner edits.
"""

import hashlib
import json
import re
import textwrap
from pathlib import Path

from app.paths import PROJECT_ROOT

SOLUTIONS = PROJECT_ROOT / "solutions"
EXERCISES = PROJECT_ROOT / "exercises"
MANIFEST = Path(__file__).resolve().parent / "exercise_starters.json"
BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION\b ?(?P<hint>.*)$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
STARTER_LINE = re.compile(r"^(?P<indent>\s*)# EXERCISE: ?(?P<code>.*)$")
HTTP_EXCEPTION_IMPORT = "from fastapi import HTTPException  # the TODOs below answer 501 Not Implemented"
GENERATED_SUFFIXES = {".py", ".yaml", ".yml", ".txt", ".html", ".md", ""}


class MarkerError(ValueError):
    pass


RAISE_TODO = "TODO_501"  # an `# EXERCISE:` line of this code is the block's 501 `raise`


def _starter_line(marker_indent: str, code: str, raise_todo: str) -> str:
    """One `# EXERCISE: <code>` line as starter code (the code keeps its own indentation)."""
    if code.strip() == RAISE_TODO:
        code = code[: len(code) - len(code.lstrip())] + raise_todo
    return marker_indent + code


def _starter_block(indent: str, hint: str, body: list[str], python: bool, where: str) -> list[str]:
    hint = hint.strip() or "your code here"
    starter = [m for line in body if (m := STARTER_LINE.match(line))]
    lines = [f"{indent}# TODO: {hint}"]
    raise_todo = f"raise HTTPException(status_code=501, detail={('TODO: ' + hint)!r})"
    if starter:
        lines += [_starter_line(m.group("indent"), m.group("code"), raise_todo) for m in starter]
    elif python:
        lines.append(f"{indent}{raise_todo}")
    return lines


def strip_solutions(
    text: str, python: bool = True, where: str = "<text>", fills: "list[str | None] | None" = None
) -> str:
    """The starter for one solution file's text; with `fills`, the starter with fills[n] pasted at its
    n-th TODO (in place of the TODO and its starter code, at the TODO's indentation; None keeps it)."""
    out: list[str] = []
    lines = text.splitlines()
    needs_import = False
    blocks = 0
    i = 0
    while i < len(lines):
        begin = BEGIN.match(lines[i])
        if not begin:
            if END.match(lines[i]):
                raise MarkerError(f"{where}:{i + 1}: END SOLUTION without BEGIN")
            out.append(lines[i])
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not END.match(lines[j]):
            if BEGIN.match(lines[j]):
                raise MarkerError(f"{where}:{j + 1}: nested BEGIN SOLUTION")
            j += 1
        if j == len(lines):
            raise MarkerError(f"{where}:{i + 1}: BEGIN SOLUTION without END")
        fill = fills[blocks] if fills is not None and blocks < len(fills) else None
        if fill is not None:
            block = _indented(fill, begin.group("indent"))
        else:
            block = _starter_block(begin.group("indent"), begin.group("hint"), lines[i + 1 : j], python, where)
            needs_import |= python and any("raise HTTPException" in line for line in block)
        out += block
        blocks += 1
        i = j + 1
    if fills is not None and len(fills) != blocks:
        raise MarkerError(f"{where}: {len(fills)} fills for {blocks} TODOs")
    if needs_import and not re.search(r"^from fastapi import .*\bHTTPException\b", text, re.M):
        out = _add_http_exception_import(out)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def _indented(code: str, indent: str) -> list[str]:
    return [indent + line if line.strip() else "" for line in textwrap.dedent(code).strip("\n").splitlines()]


def _add_http_exception_import(lines: list[str]) -> list[str]:
    """Add HTTPException to the file's `from fastapi import ...` line, or import it after the others."""
    for n, line in enumerate(lines):
        if line.startswith("from fastapi import ") and "(" not in line and "#" not in line:
            names = sorted({*line.removeprefix("from fastapi import ").split(", "), "HTTPException"})
            return lines[:n] + [f"from fastapi import {', '.join(names)}"] + lines[n + 1 :]
    last = max((n for n, line in enumerate(lines) if line.startswith(("import ", "from "))), default=-1)
    return lines[: last + 1] + [HTTP_EXCEPTION_IMPORT] + lines[last + 1 :]


def solution_files() -> list[Path]:
    return sorted(
        path.relative_to(SOLUTIONS)
        for path in SOLUTIONS.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and (path.suffix in GENERATED_SUFFIXES or path.name == "Dockerfile")
    )


def expected_exercises() -> dict[Path, str]:
    """Every starter's path (relative to exercises/) and the text it should have."""
    return {
        relative: strip_solutions(
            (SOLUTIONS / relative).read_text(), python=relative.suffix == ".py", where=str(relative)
        )
        for relative in solution_files()
    }


def fill_todos(relative: Path, fills: list[str | None]) -> str:
    """The starter of solutions/<relative> with fills[n] pasted at its n-th TODO (None keeps it)."""
    relative = Path(relative)
    return strip_solutions(
        (SOLUTIONS / relative).read_text(), python=relative.suffix == ".py", where=str(relative), fills=fills
    )


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def recorded_starters() -> dict[str, str]:
    """exercises/<path> -> sha256 of the starter the generator last wrote there."""
    return json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}


def starter_digests(expected: dict[Path, str]) -> dict[str, str]:
    return {str(relative): digest(text) for relative, text in sorted(expected.items())}


def stale_exercises() -> list[str]:
    """How the record of generated starters differs from what the solutions generate now.

    Never looks at exercises/: the files there are the learner's to change."""
    expected = starter_digests(expected_exercises())
    recorded = recorded_starters()
    problems = [f"not generated yet: exercises/{p}" for p in sorted(set(expected) - set(recorded))]
    problems += [
        f"no longer generated: exercises/{p} (no such solution)" for p in sorted(set(recorded) - set(expected))
    ]
    problems += [f"stale: exercises/{p}" for p in sorted(set(expected) & set(recorded)) if expected[p] != recorded[p]]
    return problems


def _working_files(root: Path) -> set[Path]:
    return {path.relative_to(root) for path in root.rglob("*") if path.is_file() and "__pycache__" not in path.parts}


def edited_exercises(expected: dict[Path, str] | None = None) -> list[Path]:
    """Files in exercises/ that are someone's work: not the starter last generated, nor the new one."""
    root = EXERCISES
    expected = expected_exercises() if expected is None else expected
    recorded = recorded_starters()
    edited = []
    for relative in sorted(_working_files(root)):
        now = digest((root / relative).read_text(errors="replace"))
        if now != recorded.get(str(relative)) and (relative not in expected or now != digest(expected[relative])):
            edited.append(relative)
    return edited


class LearnersWork(RuntimeError):
    """`write_exercises` would have overwritten these files of exercises/."""

    def __init__(self, paths: list[Path]) -> None:
        super().__init__(", ".join(f"exercises/{p}" for p in paths))
        self.paths = paths


def write_exercises(root: Path | None = None, force: bool = False) -> list[Path]:
    """Write every starter into exercises/ and record them, refusing to replace edited files unless
    forced; or into another folder `root` (a scratch copy for the checks), recording nothing."""
    expected = expected_exercises()
    learners = root is None
    root = EXERCISES if root is None else root
    if learners and not force and (edited := edited_exercises(expected)):
        raise LearnersWork(edited)
    for relative, text in expected.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    for relative in _working_files(root) - set(expected):
        (root / relative).unlink()
    if learners:
        MANIFEST.write_text(json.dumps(starter_digests(expected), indent=2) + "\n")
    return sorted(expected)


def reset(relative: Path, backups: Path) -> Path | None:
    """Put the starter of exercises/<relative> back; the file it replaces is kept in `backups` first.

    Returns the backup's path (None when there was nothing to keep)."""
    expected = expected_exercises()
    if relative not in expected:
        raise KeyError(f"exercises/{relative} is not generated from a solution")
    target = EXERCISES / relative
    backup = None
    if target.exists() and target.read_text(errors="replace") != expected[relative]:
        backups.mkdir(parents=True, exist_ok=True)
        backup = backups / f"{str(relative).replace('/', '__')}.{digest(target.read_text(errors='replace'))[:8]}"
        backup.write_text(target.read_text(errors="replace"))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(expected[relative])
    return backup
