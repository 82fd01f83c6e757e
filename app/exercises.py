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
Files without markers are copied as they are; non-Python files get only the TODO comment.
"""

import re
from pathlib import Path

from app.paths import PROJECT_ROOT

SOLUTIONS = PROJECT_ROOT / "solutions"
EXERCISES = PROJECT_ROOT / "exercises"
BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION\b ?(?P<hint>.*)$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
STARTER_LINE = re.compile(r"^(?P<indent>\s*)# EXERCISE: ?(?P<code>.*)$")
HTTP_EXCEPTION_IMPORT = "from fastapi import HTTPException  # the TODOs below answer 501 Not Implemented"
GENERATED_SUFFIXES = {".py", ".yaml", ".yml", ".txt", ".html", ".md", ""}


class MarkerError(ValueError):
    pass


def _starter_block(indent: str, hint: str, body: list[str], python: bool, where: str) -> list[str]:
    hint = hint.strip() or "your code here"
    starter = [m for line in body if (m := STARTER_LINE.match(line))]
    lines = [f"{indent}# TODO: {hint}"]
    if starter:
        lines += [m.group("indent") + m.group("code") for m in starter]
    elif python:
        lines.append(f"{indent}raise HTTPException(status_code=501, detail={('TODO: ' + hint)!r})")
    return lines


def strip_solutions(text: str, python: bool = True, where: str = "<text>") -> str:
    """The starter for one solution file's text."""
    out: list[str] = []
    lines = text.splitlines()
    needs_import = False
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
        block = _starter_block(begin.group("indent"), begin.group("hint"), lines[i + 1 : j], python, where)
        needs_import |= python and any("raise HTTPException" in line for line in block)
        out += block
        i = j + 1
    if needs_import and not re.search(r"^from fastapi import .*\bHTTPException\b", text, re.M):
        out = _add_http_exception_import(out)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


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
        if path.is_file() and "__pycache__" not in path.parts and (path.suffix in GENERATED_SUFFIXES or path.name == "Dockerfile")
    )


def expected_exercises() -> dict[Path, str]:
    """Every starter's path (relative to exercises/) and the text it should have."""
    return {
        relative: strip_solutions(
            (SOLUTIONS / relative).read_text(), python=relative.suffix == ".py", where=str(relative)
        )
        for relative in solution_files()
    }


def stale_exercises() -> list[str]:
    """What differs between exercises/ and what the solutions generate (missing, extra, changed)."""
    expected = expected_exercises()
    actual = {
        path.relative_to(EXERCISES)
        for path in EXERCISES.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    problems = [f"missing: exercises/{p}" for p in sorted(set(expected) - actual)]
    problems += [f"extra: exercises/{p} (no such solution)" for p in sorted(actual - set(expected))]
    problems += [
        f"stale: exercises/{p}"
        for p in sorted(set(expected) & actual)
        if (EXERCISES / p).read_text() != expected[p]
    ]
    return problems


def write_exercises() -> list[Path]:
    expected = expected_exercises()
    for relative, text in expected.items():
        target = EXERCISES / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    for path in EXERCISES.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.relative_to(EXERCISES) not in expected:
            path.unlink()
    return sorted(expected)
