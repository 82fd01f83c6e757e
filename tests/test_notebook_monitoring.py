"""notebooks/monitoring.ipynb run by papermill with tiny parameters: the signals react to shifted
digits, and a fine-tune on the feedback runs to the end."""

import re

import nbformat
import pytest

from tests.notebook_support import run_notebook
from tests.test_notebook_mnist import printed

PARAMETERS = {"train_images": 600, "epochs": 1, "fine_tune_epochs": 1, "batch": 40, "steps_in_distribution": 4, "steps_shifted": 5,
              "window": 120, "seed": 1}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    output, _ = run_notebook("monitoring", PARAMETERS, tmp_path_factory)
    return nbformat.read(output, as_version=4)


def test_drift_shows_on_shifted_digits_and_not_before(notebook):
    steps = re.findall(r"step +(\d+) (ordinary|shifted) .*drift (\S+(?: \S+)?)", printed(notebook))
    assert len(steps) == PARAMETERS["steps_in_distribution"] + PARAMETERS["steps_shifted"]
    assert all(status.strip() in ("no drift", "collecting") for _, kind, status in steps if kind == "ordinary"), steps
    assert steps[-1][2].strip() == "drift", steps
    assert "retrain_recommended: True" in printed(notebook)


def test_the_fine_tune_on_feedback_ran(notebook):
    text = printed(notebook)
    assert "'status': 'succeeded'" in text, text[-2000:]
    assert "'n_images': 360" in text  # every digit sent came back labelled, with its image


def test_the_notebook_draws_its_plots(notebook):
    pictures = [o for cell in notebook.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(pictures) == 3  # the digits, the signals over time, before and after
