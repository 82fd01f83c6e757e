"""How the suite runs the notebooks: nbval executes each one cell by cell, in a kernel of its own.

- Every cell is a `slow` test (a kernel, and most notebooks train): the quick loop runs none of them.
- Each kernel starts with the notebooks' quick settings: WORKSHOP_SIDE=solutions (the lessons start and
  check the reference solutions, and every claim they make must hold), WORKSHOP_QUICK_NOTEBOOKS=1 (the
  model notebooks' parameters cells pick small data and one epoch), and a model store of its own.
- A cell tagged `figure` must draw a picture: a notebook whose plot silently stopped drawing fails.
"""

import os
import tempfile
from contextlib import contextmanager

import pytest

QUICK_SETTINGS = {"WORKSHOP_SIDE": "solutions", "WORKSHOP_QUICK_NOTEBOOKS": "1", "WORKSHOP_EPOCHS": "1"}
FIGURE_TAG = "figure"


def is_notebook_cell(item: pytest.Item) -> bool:
    return type(item).__name__ == "IPyNbCell"  # nbval's item: one code cell of a notebook


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if is_notebook_cell(item):
            item.add_marker(pytest.mark.slow)


@contextmanager
def kernel_environment():
    """The quick settings in os.environ while nbval starts a notebook's kernel (it inherits them), then as before."""
    values = {**QUICK_SETTINGS, "WORKSHOP_MODELS_DIR": tempfile.mkdtemp(prefix="notebook-models-")}
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    # nbval starts the kernel while setting up a notebook's first cell.
    if not is_notebook_cell(item) or getattr(item.parent, "kernel", None) is not None:
        return (yield)
    with kernel_environment():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    result = yield
    if is_notebook_cell(item) and FIGURE_TAG in item.cell.metadata.get("tags", []):
        outputs = item.test_outputs or []
        if not any("image/png" in output.get("data", {}) for output in outputs):
            pytest.fail(f"{item.name} is tagged `{FIGURE_TAG}` but drew no picture", pytrace=False)
    return result
