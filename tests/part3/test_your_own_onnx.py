"""Bring your own ONNX, as the README's "Serve your own model" says: a serve-only model (a declaration with
no training parameters, in a package of its own) trained elsewhere is published from its ONNX file and a
labelled holdout with `python -m app.publish_onnx`, through the gate; the service serves it by the Open
Inference Protocol and refuses to train it. A worse file is stored but refused, and a holdout that does
not fit the model publishes nothing."""

import os
import subprocess
import sys

import numpy as np
import pytest
from part3_support import copy_store, serving_process

from app.paths import PROJECT_ROOT
from app.store import ModelStore

pytestmark = pytest.mark.slow

DECLARATION = '''
"""Iris, trained elsewhere: the service only serves it."""

from app.modelkit import Model, Tensor


class Iris(Model):
    name = "iris"
    classes = ("setosa", "versicolor", "virginica")
    input = Tensor("measurements", "FP32", (-1, 4))
    feature_names = ("sepal_length", "sepal_width", "petal_length", "petal_width")
    gate_floor = 0.8  # no `parameters`: serve-only


MODEL = Iris()
'''


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trained-elsewhere")
    (folder / "iris_onnx").mkdir()
    (folder / "iris_onnx" / "__init__.py").write_text(DECLARATION)
    return folder


def onnx_file(path, inputs, labels) -> None:
    """A logistic regression trained here as anyone would elsewhere, written by skl2onnx (probabilities as a
    tensor, not a list of dicts)."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=1000).fit(inputs, labels)
    path.write_bytes(to_onnx(model, inputs[:1], options={"zipmap": False}).SerializeToString())


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    data = load_iris()
    inputs = data.data.astype(np.float32)
    train_x, test_x, train_y, test_y = train_test_split(inputs, data.target, test_size=0.4, random_state=0)
    folder = tmp_path_factory.mktemp("iris-files")
    onnx_file(folder / "good.onnx", train_x, train_y)
    onnx_file(folder / "worse.onnx", train_x, np.random.default_rng(0).permutation(train_y))  # labels shuffled
    names = np.array(data.target_names)[test_y]  # the holdout labelled by class name
    np.savez(folder / "holdout.npz", inputs=test_x, labels=names)
    np.savez(folder / "wrong_shape.npz", inputs=test_x[:, :3], labels=names)
    return folder


def publish(package, models, *arguments):
    command = [sys.executable, "-m", "app.publish_onnx", "iris", *map(str, arguments), "--models-dir", str(models)]
    env = {**os.environ, "PYTHONPATH": f"{package}:{PROJECT_ROOT}", "WORKSHOP_MODEL_PACKAGES": "iris_onnx"}
    return subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def published(seeded_store, package, files, tmp_path_factory):
    """The store after: the good file (promoted), a worse one (refused), a holdout of the wrong shape."""
    models = copy_store(seeded_store, tmp_path_factory.mktemp("iris") / "models")
    runs = {
        "good": publish(package, models, files / "good.onnx", files / "holdout.npz"),
        "worse": publish(package, models, files / "worse.onnx", files / "holdout.npz"),
        "wrong shape": publish(package, models, files / "good.onnx", files / "wrong_shape.npz"),
    }
    return models, runs


def test_a_good_file_is_promoted_and_a_worse_one_stored_but_refused(published):
    models, runs = published
    assert runs["good"].returncode == 0, runs["good"].stderr
    assert "iris version 1: promoted" in runs["good"].stdout
    assert runs["worse"].returncode == 1, runs["worse"].stderr
    assert "iris version 2: rejected" in runs["worse"].stdout
    store = ModelStore("iris", models)
    assert store.active() == 1, "a refused version never serves"
    first = store.get(1).metadata
    assert first["trained_elsewhere"] and first["gate"]["holdout"] == "holdout.npz (60 labelled rows)"
    assert first["metrics"]["accuracy"] >= 0.8


def test_a_holdout_that_does_not_fit_publishes_nothing(published):
    models, runs = published
    assert runs["wrong shape"].returncode == 2
    assert "nothing published" in runs["wrong shape"].stderr and "shape" in runs["wrong shape"].stderr
    assert ModelStore("iris", models).versions() == [1, 2]


def test_the_service_serves_it_by_the_protocol_and_never_trains_it(published, package, files):
    models, _ = published
    with np.load(files / "holdout.npz") as holdout:
        rows, labels = holdout["inputs"][:5], holdout["labels"][:5]
    env = {"PYTHONPATH": str(package), "WORKSHOP_MODEL_PACKAGES": "iris_onnx"}
    with serving_process(models, env=env) as service:
        body = {"inputs": [{"name": "measurements", "shape": [5, 4], "datatype": "FP32", "data": rows.tolist()}]}
        answer = service.client.post("/v2/models/iris/infer", json=body)
        assert answer.status_code == 200, answer.text
        outputs = {output["name"]: output["data"] for output in answer.json()["outputs"]}
        assert answer.json()["model_version"] == "1"
        assert np.mean(np.array(outputs["label"]) == labels) >= 0.8
        listing = service.get("/models/").json()["iris"]
        assert listing["trainable"] is False and listing["serving"] == 1
        refused = service.client.post("/models/iris/jobs", json={"kind": "retrain"})
        assert refused.status_code == 409 and "serve-only" in refused.json()["detail"]
