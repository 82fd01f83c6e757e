"""notebooks/conftest.py, the way the suite runs notebooks under nbval: a cell tagged `figure` that draws nothing
fails, every cell is slow (the quick loop runs none), and the kernel gets the quick settings and a store of its
own. Checked on small notebooks run by a pytest of their own, with that conftest beside them."""

import shutil
import subprocess
import sys

import nbformat
import pytest

from app.paths import PROJECT_ROOT

pytestmark = pytest.mark.slow  # each test starts a pytest and a kernel


def notebook_with(folder, *cells: tuple[str, list[str]]):
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source, metadata={"tags": tags}) for source, tags in cells]
    nbformat.write(notebook, folder / "lesson.ipynb")
    shutil.copy(PROJECT_ROOT / "notebooks" / "conftest.py", folder / "conftest.py")


def run_pytest(folder, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(folder),
            "--nbval-lax",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            *options,
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_figure_cell_that_draws_nothing_fails_and_one_that_draws_passes(tmp_path):
    notebook_with(
        tmp_path,
        ("import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()", ["figure"]),
        ("print('no picture')", ["figure"]),
        ("print('not a figure cell')", []),
    )
    done = run_pytest(tmp_path, "-rf")
    assert "1 failed, 2 passed" in done.stdout, done.stdout[-3000:]
    assert "Cell 1 is tagged `figure` but drew no picture" in done.stdout


def test_notebook_cells_are_slow_and_the_kernel_gets_the_quick_settings(tmp_path):
    import os

    probe = (
        "import os\n"
        "assert os.environ['WORKSHOP_SIDE'] == 'solutions'\n"
        "assert os.environ['WORKSHOP_QUICK_NOTEBOOKS'] == '1'\n"
        f"assert os.environ['WORKSHOP_MODELS_DIR'] != {os.environ.get('WORKSHOP_MODELS_DIR', '')!r}\n"
    )
    notebook_with(tmp_path, (probe, []))
    assert "1 passed" in run_pytest(tmp_path).stdout
    assert "1 deselected" in run_pytest(tmp_path, "-m", "not slow").stdout


def test_the_settings_are_only_the_kernels(tmp_path):
    """The pytest process itself keeps its own environment: the other tests never see WORKSHOP_SIDE."""
    notebook_with(tmp_path, ("1 + 1", []))
    (tmp_path / "test_after.py").write_text(
        "import os\n\ndef test_after():\n    assert 'WORKSHOP_QUICK_NOTEBOOKS' not in os.environ\n"
    )
    done = run_pytest(tmp_path)
    assert "2 passed" in done.stdout, done.stdout[-3000:]
