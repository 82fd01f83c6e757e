"""exercises/ is the learner's: whatever they leave there (a starter, their answer, the workshop text's
whole file pasted over it) must not change what the maintainers' tests do. So no test outside the
exercise checks (tests/exercises/, which read the side WORKSHOP_SIDE names) may open or list a file
there: an audit hook, added once per process when tests/conftest.py imports this module, records
every open and directory listing of exercises/ while `guarding` is on, and tests/conftest.py fails
the test (or the collection) that made one.
"""

import os
import sys
from pathlib import Path

EXERCISES = Path(__file__).resolve().parent.parent / "exercises"
EXERCISE_CHECKS = Path(__file__).resolve().parent / "exercises"
guarding = True  # tests/conftest.py turns it off while an exercise check runs
_reads: list[str] = []


def _watch(event: str, args: tuple) -> None:
    if not guarding or event not in ("open", "os.listdir", "os.scandir") or not args:
        return
    target = args[0]
    if isinstance(target, int) or target is None:  # a file descriptor, or the current folder
        return
    try:
        path = os.path.abspath(os.fsdecode(target))
    except (TypeError, ValueError):
        return
    if path == str(EXERCISES) or path.startswith(str(EXERCISES) + os.sep):
        _reads.append(path)


def reads_of_exercises() -> list[str]:
    """Paths in exercises/ opened or listed while guarding, since the last call."""
    reads = sorted(set(_reads))
    _reads.clear()
    return reads


sys.addaudithook(_watch)
