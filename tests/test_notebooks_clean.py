"""The notebooks as files: each is written as a py:percent source (notebooks/<name>.py, linted and diffed like
any module) and generated as notebooks/<name>.ipynb, which is committed without outputs and with unique cell
ids. nbval runs them (notebooks/conftest.py); these checks are quick.

After editing a source:      uv run jupytext --sync notebooks/<name>.py
Before committing a notebook you ran:  uv run jupyter nbconvert --clear-output --inplace notebooks/<name>.ipynb
"""

import json
import re
from collections import Counter
from pathlib import Path

import jupytext
import nbformat
import pytest

from app.paths import PROJECT_ROOT

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))
CLEAR = "uv run jupyter nbconvert --clear-output --inplace"
SYNC = "uv run jupytext --sync"
IDS = [path.name for path in NOTEBOOKS]


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks/*.ipynb found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_committed_clean(path: Path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    dirty = [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, (
        f"{path.name}: cells {dirty} have outputs or execution counts; run `{CLEAR} notebooks/{path.name}`"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_has_a_papermill_parameters_cell(path: Path):
    notebook = nbformat.read(path, as_version=4)
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code", f"{path.name}: tag one code cell `parameters`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_cell_id_is_unique(path: Path):
    """Read as raw JSON: nbformat would quietly rename a duplicate (with a DuplicateCellId warning), and a
    front end that trusts ids (collaboration, comments, nbval's reports) would mix up the two cells."""
    ids = [cell.get("id") for cell in json.loads(path.read_text())["cells"]]
    assert all(ids), f"{path.name}: cells without an id: run `{SYNC} notebooks/{path.stem}.py`"
    repeated = sorted(cell_id for cell_id, count in Counter(ids).items() if count > 1)
    assert not repeated, f"{path.name}: these cell ids appear more than once: {repeated}"


def test_a_duplicate_cell_id_is_caught(tmp_path):
    notebook = json.loads(NOTEBOOKS[0].read_text())
    notebook["cells"][1]["id"] = notebook["cells"][0]["id"]
    copy = tmp_path / NOTEBOOKS[0].name
    copy.write_text(json.dumps(notebook))
    with pytest.raises(AssertionError, match="more than once"):
        test_every_cell_id_is_unique(copy)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_generated_from_its_source(path: Path):
    """notebooks/<name>.py is the truth: the .ipynb must hold exactly its cells (INRIA's scikit-learn MOOC
    keeps its notebooks the same way). Written back as py:percent, the notebook gives the source's text."""
    source = path.with_suffix(".py")
    assert source.exists(), f"{path.name} has no source: run `uv run jupytext --set-formats ipynb,py:percent {path}`"
    notebook = nbformat.read(path, as_version=4)
    assert notebook.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent", (
        f"{path.name} is not paired with its source (jupytext metadata `formats: ipynb,py:percent`)"
    )
    assert jupytext.writes(notebook, fmt="py:percent") == source.read_text(), (
        f"{path.name} and {source.name} differ: run `{SYNC} notebooks/{source.name}` (the newer one wins)"
    )


def test_every_source_has_its_notebook():
    sources = [path for path in (PROJECT_ROOT / "notebooks").glob("*.py") if path.name != "conftest.py"]
    missing = sorted(path.name for path in sources if not path.with_suffix(".ipynb").exists())
    assert not missing, f"sources without their notebook: {missing}; run `{SYNC} notebooks/<name>.py`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_picture_is_drawn_in_a_figure_cell(path: Path):
    """A lesson's plot_... call sits in a cell tagged `figure`, so that nbval fails when it stops drawing."""
    cells = json.loads(path.read_text())["cells"]
    untagged = [
        index
        for index, cell in enumerate(cells)
        if re.search(r"^\s*plot_\w+\(", "".join(cell["source"]), re.M)
        and "figure" not in cell["metadata"].get("tags", [])
    ]
    assert not untagged, f"{path.name}: cells {untagged} draw a picture but are not tagged `figure`"
