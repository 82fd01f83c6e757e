"""What the learner reads says what the checks expect: a step that quietly requires something the README
and the starter never mention cannot be done from them."""

import re
from pathlib import Path

import pytest

from app.paths import PROJECT_ROOT
from tests.exercises.part1.test_challenge_units import STEP_UNITS
from workshop import exercises

README = (PROJECT_ROOT / "README.md").read_text()


def readme_row(exercise: str) -> str:
    """The row of the README's exercise tables that starts with `exercise`."""
    rows = [line for line in README.splitlines() if line.startswith(f"| `{exercise}` |")]
    assert len(rows) == 1, f"README.md should have one table row for {exercise}; it has {len(rows)}"
    return rows[0]


def starter_todos(relative: str) -> str:
    """The TODO lines of a starter, as `workshop generate` writes it from the solution."""
    starter = exercises.expected_exercises()[Path(relative)]
    return "\n".join(line for line in starter.splitlines() if "# TODO:" in line)


def named_units(text: str) -> set[str]:
    """Units written as a unit: alone in backticks (`cm`), or after a number ("0.195m", "4.03 cm")."""
    alone = set(re.findall(r"`([a-zA-Z]{1,2})`", text))
    after_a_number = set(re.findall(r"\d\s?([a-zA-Z]{1,2})\b", text))
    return {unit.lower() for unit in alone | after_a_number}


@pytest.mark.parametrize(
    "where",
    [
        pytest.param(lambda: readme_row("part1/challenge_units"), id="README"),
        pytest.param(lambda: starter_todos("part1/challenge_units.py"), id="starter"),
    ],
)
def test_the_units_challenge_names_every_unit_its_step_expects(where):
    missing = set(STEP_UNITS) - named_units(where())
    assert not missing, f"the units challenge expects {sorted(STEP_UNITS)}; this text never names {sorted(missing)}"


def test_named_units_finds_units_only_where_written_as_units():
    assert named_units('`mm`, `cm` or "0.195m"; 4.03 cm') == {"mm", "cm", "m"}
    assert named_units("a number with a unit, converted to millimetres") == set()
