"""app/penguin_file.py: the arrays read from a skops file without scikit-learn make the predictor
skops would have made, and anything but the usual pipeline is left to skops."""

import json
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

from app import penguin_file
from app.datasets import PENGUIN_FEATURES, PENGUIN_TARGET, load_penguins
from app.part3.kept_models import open_penguins
from app.paths import PROJECT_ROOT
from app.penguin_file import read_fast_predictor
from app.penguins import FastPenguinPredictor, build_pipeline, load, save, train

ARRAYS = ("mean", "scale", "points", "point_labels")


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    return load_penguins()


def saved(pipeline, folder):
    return folder / save(pipeline, folder)


def assert_same_predictor(actual: FastPenguinPredictor, expected: FastPenguinPredictor):
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(actual, name), getattr(expected, name), err_msg=name)
        assert getattr(actual, name).dtype == getattr(expected, name).dtype, name
    assert (actual.k, actual.classes) == (expected.k, expected.classes)


@pytest.mark.parametrize(("n_neighbors", "n_rows"), [(11, None), (4, 40)], ids=["workshop", "k=4 on 40 penguins"])
def test_the_arrays_read_make_the_predictor_skops_would(penguins, tmp_path, n_neighbors, n_rows):
    frame = penguins.sample(n_rows, random_state=1) if n_rows else penguins
    path = saved(train(frame, n_neighbors=n_neighbors), tmp_path)
    fast = read_fast_predictor(path)
    assert fast is not None, "the usual pipeline must take the fast path"
    reference = FastPenguinPredictor(load(path))
    assert_same_predictor(fast, reference)
    grid = [(bill, flipper) for bill in np.arange(30.0, 60.0, 1.5) for flipper in np.arange(170.0, 235.0, 3.0)]
    assert [fast.predict(*point) for point in grid] == [reference.predict(*point) for point in grid]


def rewritten(path, edit) -> None:
    """The skops file with its schema.json edited (the arrays kept)."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(members["schema.json"])
    edit(schema)
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)


def knn_attributes(schema):
    return schema["content"]["content"]["steps"]["content"][1]["content"][1]["content"]["content"]


@pytest.mark.parametrize(
    "edit",
    [
        lambda schema: schema.update(protocol=3),
        lambda schema: knn_attributes(schema).pop("_fit_X"),
        lambda schema: knn_attributes(schema)["_y"].update(type="json", content=[]),
        lambda schema: knn_attributes(schema)["weights"].update(content='"distance"'),
    ],
    ids=["another protocol", "no training points", "labels not an array", "distance weights"],
)
def test_a_file_it_does_not_know_is_refused(penguins, tmp_path, edit):
    path = saved(train(penguins), tmp_path)
    rewritten(path, edit)
    assert read_fast_predictor(path) is None


def test_what_the_reader_refuses_the_service_loads_with_skops(penguins, tmp_path, monkeypatch):
    path = saved(train(penguins), tmp_path)
    monkeypatch.setattr(penguin_file, "SKOPS_PROTOCOL", 1)  # as if skops had moved on
    assert read_fast_predictor(path) is None
    assert_same_predictor(open_penguins(path), FastPenguinPredictor(load(path)))


def test_other_pipelines_are_left_to_skops(penguins, tmp_path):
    three = build_pipeline().fit(penguins[[*PENGUIN_FEATURES, "body_mass_g"]], penguins[PENGUIN_TARGET])
    other_features = train(penguins, features=("bill_depth_mm", "flipper_length_mm"))
    for number, pipeline in enumerate([three, other_features]):
        folder = tmp_path / str(number)
        folder.mkdir()
        assert read_fast_predictor(saved(pipeline, folder)) is None
    (tmp_path / "junk.skops").write_bytes(b"not a zip")
    assert read_fast_predictor(tmp_path / "junk.skops") is None


def test_the_service_loads_the_penguin_model_without_scikit_learn(penguins, tmp_path):
    path = saved(train(penguins), tmp_path)
    code = (f"import sys; from app.part3.kept_models import open_penguins; "
            f"print(open_penguins({str(path)!r}).predict(40.3, 195), 'sklearn' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Adelie", "False"]
