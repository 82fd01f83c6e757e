"""notebooks/monitoring.ipynb run by papermill with tiny parameters: the signals react to shifted
digits, the gate refuses a fine-tune on wrong labels and promotes one on right labels, and a
fine-tune on the feedback runs to the end."""

import re

import nbformat
import pytest

from tests.notebook_support import run_notebook
from tests.test_notebook_mnist import printed

PARAMETERS = {
    "train_images": 600,
    "epochs": 1,
    "fine_tune_epochs": 1,
    "batch": 40,
    "steps_in_distribution": 4,
    "steps_shifted": 5,
    "window": 120,
    "seed": 1,
    "gate_floor": 0.0,
    "gate_margin": 0.02,
    "wrong_epochs": 3,
}
# gate_floor 0: the suite's one-epoch model scores too little for the default floor; the margin alone
# must refuse the fine-tune on wrong labels.

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


def test_the_gate_refuses_the_fine_tune_on_wrong_labels_and_serving_stays(notebook):
    text = printed(notebook)
    assert re.search(
        r"'status': 'succeeded', 'version': 2, 'promoted': False, 'gate_reason': 'holdout accuracy", text
    ), text
    before, now = re.search(r"serving before: (\d+)  serving now: (\d+)", text).groups()
    assert before == now == "1"
    assert re.search(r"version 2: rejected", text)


def test_the_gate_promotes_a_fine_tune_on_right_labels_and_every_worker_serves_it(notebook):
    text = printed(notebook)
    assert re.search(r"good labels: \{'status': 'succeeded', 'version': 3, 'promoted': True", text), text
    before, after = re.search(r"serving before the good fine-tune: (\d+)  after it: (\d+)", text).groups()
    assert (before, after) == ("1", "3")


def test_the_fine_tune_on_feedback_ran(notebook):
    text = printed(notebook)
    assert "'status': 'succeeded'" in text, text[-2000:]
    assert "'n_images': 360" in text  # every digit sent came back labelled, with its image


def test_the_notebook_draws_its_plots(notebook):
    pictures = [o for cell in notebook.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(pictures) == 4  # the digits, the signals over time, the gate's decisions, before and after
