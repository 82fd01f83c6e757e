"""Each lesson notebook run from top to bottom against the untouched starters, as a learner who has written
nothing yet would run it: no cell may fail, and what is not written yet must say so ("not written yet: <the
TODO>") instead of a traceback.

The starters are generated into a temporary folder (workshop/exercises.py), never read from exercises/,
which is the learner's. The Part 2 check cells (tagged `nbval-skip`, as nbval skips them against the
solutions) are left out: every starter's checks already run in tests/test_exercise_mechanism.py.
"""

import nbformat
import pytest
from nbclient import NotebookClient

from app.paths import PROJECT_ROOT
from workshop import exercises

NOTEBOOKS = PROJECT_ROOT / "notebooks"
CELL_TIMEOUT = 1800  # seconds: a safety net on a shared machine, never a measure of speed
SKIPPED_TAG = "nbval-skip"

pytestmark = pytest.mark.slow  # starts a kernel and the exercises' apps, which import Keras and train


@pytest.fixture(scope="module")
def starters(tmp_path_factory):
    folder = tmp_path_factory.mktemp("starters") / "exercises"
    exercises.write_exercises(folder)
    return folder


def run_against(lesson: str, starters, tmp_path, monkeypatch) -> list[str]:
    """Execute notebooks/<lesson>.ipynb with WORKSHOP_SIDE set to the starters; every output's text."""
    for variable, value in {
        "WORKSHOP_SIDE": str(starters),
        "WORKSHOP_QUICK_NOTEBOOKS": "1",
        "WORKSHOP_EPOCHS": "1",
        "WORKSHOP_MODELS_DIR": str(tmp_path / "models"),
    }.items():
        monkeypatch.setenv(variable, value)  # the kernel inherits them
    notebook = nbformat.read(NOTEBOOKS / f"{lesson}.ipynb", as_version=4)
    notebook.cells = [cell for cell in notebook.cells if SKIPPED_TAG not in cell.metadata.get("tags", [])]
    NotebookClient(
        notebook, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()  # a cell that fails raises CellExecutionError, with its traceback
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", f"{output.ename}: {output.evalue}"
            texts.append(output.get("text", "") + str(output.get("data", {}).get("text/plain", "")))
    return texts


def expect_not_written_yet_and_no_traceback(texts: list[str]) -> None:
    shown = "\n".join(texts)
    assert "not written yet: TODO" in shown, "no cell showed what is not written yet"
    assert "Traceback (most recent call last)" not in shown, "a cell showed a traceback"
    assert "did not import" not in shown and "failed while starting up" not in shown, "a starter did not start"


# One class per lesson: pytest-xdist (--dist loadscope) may run each on a worker of its own.
class TestPart1:
    def test_runs_against_the_starters(self, starters, tmp_path, monkeypatch):
        expect_not_written_yet_and_no_traceback(run_against("part1_fastapi_basics", starters, tmp_path, monkeypatch))


class TestPart2:
    def test_runs_against_the_starters(self, starters, tmp_path, monkeypatch):
        texts = run_against("part2_training_and_retraining", starters, tmp_path, monkeypatch)
        expect_not_written_yet_and_no_traceback(texts)


class TestPart3:
    def test_runs_against_the_starters(self, starters, tmp_path, monkeypatch):
        expect_not_written_yet_and_no_traceback(run_against("part3_production", starters, tmp_path, monkeypatch))


def test_every_lesson_is_run_here():
    lessons = sorted(path.stem for path in NOTEBOOKS.glob("part*.ipynb"))
    assert lessons == ["part1_fastapi_basics", "part2_training_and_retraining", "part3_production"], lessons
