"""app/part2/main.py, Part 2's reference service: every route, on its own model store."""

import numpy as np
import pytest
from fastapi.testclient import TestClient

import app.part2.main
from app import promotion
from app.models import mnist
from app.part2.serving import LatestModel
from app.store import ModelStore
from tests.fresh_modules import import_fresh
from tests.part2_support import (
    TrainingGate,
    as_upload,
    digit_image,
    good_model,
    label_of,
    png,
    training_files,
    two_trainings_at_once,
)

pytestmark = pytest.mark.slow  # trains models


@pytest.fixture(scope="module")
def empty_models_dir(tmp_path_factory):
    """An empty model store for this module; WORKSHOP_MODELS_DIR points at it meanwhile."""
    path = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKSHOP_MODELS_DIR", str(path))
        yield path


@pytest.fixture(scope="module")
def service(empty_models_dir):
    """The service on a store that holds one exported model, as after running the notebook."""
    exported = mnist.TrainingResult(good_model())
    promotion.publish(mnist.MODEL, exported, {}, ModelStore(mnist.MODEL_NAME, root=empty_models_dir))
    return import_fresh(app.part2.main.__file__)


@pytest.fixture(scope="module")
def client(service):
    with TestClient(service.app) as test_client:
        yield test_client


def predict(client, digit: int = 7) -> dict:
    response = client.post("/predict/", files={"file": digit_image(digit)})
    assert response.status_code == 200, response.text
    return response.json()


def info(client) -> dict:
    response = client.get("/info/")
    assert response.status_code == 200, response.text
    return response.json()


def test_it_serves_the_exported_model_without_training_at_start_up(client, service):
    assert service.store.versions() == [1]
    assert info(client) == {"Num of model in training": 0, "Num of trained models": 1, "Serving version": 1}
    assert client.get("/").json() == {"Hello": "World"}


def test_predictions_name_the_file_and_are_right(client):
    results = {digit: predict(client, digit) for digit in range(10)}
    assert results[7]["filename"] == "test_img7.png"
    assert {result["version"] for result in results.values()} == {1}
    right = [digit for digit, result in results.items() if result["result"] == str(digit)]
    assert len(right) >= 9, results


def test_upload_page_posts_many_files_to_train(client):
    page = client.get("/upload/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for part in ('action="/train/"', 'method="post"', 'enctype="multipart/form-data"', 'name="files"', "multiple"):
        assert part in page.text


def test_train_fine_tunes_the_served_version_and_serves_the_result(client, service, monkeypatch):
    gate = TrainingGate(monkeypatch)
    served = service.store.active()
    files = training_files(60)
    response = client.post("/train/", files=as_upload(files))
    assert response.status_code == 200, response.text
    assert response.json() == {"message": "Training model in the background", "images": 60}
    np.testing.assert_array_equal(gate.labels[0], [label_of(name) for name, _ in files])
    assert gate.parents == [served] and gate.bases[0] is not None
    new = service.store.get(service.store.latest())
    assert new.metadata["parent"] == served
    assert new.metadata["data"] == {"source": "upload", "size": 60}
    assert predict(client)["version"] == new.number
    assert info(client)["Serving version"] == new.number


def test_retrain_trains_a_new_model_from_scratch(client, service, monkeypatch):
    gate = TrainingGate(monkeypatch)
    response = client.post("/retrain/")
    assert response.status_code == 200, response.text
    assert gate.bases == [None]
    new = service.store.get(service.store.latest())
    assert new.metadata["parent"] is None
    assert new.metadata["data"]["source"] in ("bundled", "keras") and new.metadata["data"]["size"] > 1000
    assert predict(client)["version"] == new.number


def test_two_trainings_at_once_make_a_chain(client, service, monkeypatch):
    trained_before = len(service.store.versions())
    served = lambda: predict(client)["version"]  # noqa: E731
    _, (_, _, second) = two_trainings_at_once(client, service.store, monkeypatch, 40, served)
    assert info(client) == {
        "Num of model in training": 0,
        "Num of trained models": trained_before + 2,
        "Serving version": second,
    }


def test_a_version_published_elsewhere_serves_from_the_next_request(client, service):
    new = promotion.publish(mnist.MODEL, mnist.TrainingResult(good_model()), {}, service.store).number
    assert predict(client)["version"] == new


def test_a_corrupt_newer_version_is_not_served(client, service):
    served = predict(client)["version"]
    corrupt = promotion.publish(mnist.MODEL, mnist.TrainingResult(good_model()), {"parent": served}, service.store)
    corrupt.model_file.write_bytes(b"tampered")
    assert predict(client)["version"] == served
    assert predict(client)["version"] == served


PREDICT_REFUSALS = {
    "not-an-image": (("x.png", b"hello"), 422, "not a readable image"),
    "empty": (("x.png", b""), 422, "empty"),
    "not-28x28": (("x.png", png(27, 28)), 422, "27x28"),
    "too-large": (("x.png", b"\x89PNG" + bytes(2 << 20)), 413, "at most"),
}


@pytest.mark.parametrize("case", PREDICT_REFUSALS)
def test_predict_refuses_bad_images_with_a_4xx(client, case):
    upload, status, says = PREDICT_REFUSALS[case]
    response = client.post("/predict/", files={"file": upload})
    assert response.status_code == status, response.text
    assert says in response.json()["detail"]


TRAIN_REFUSALS = {
    "no-label": ([("img1.png", png())], 422, "has no label"),
    "label-12": ([("img1_12.png", png())], 422, "label 12"),
    "not-28x28": ([("img1_3.png", png(28, 29))], 422, "28x29"),
    "too-large": ([("img1_3.png", b"\x89PNG" + bytes(2 << 20))], 413, "at most"),
    "not-a-zip": ([("images.zip", b"PK\x03\x04 broken")], 422, "not a readable zip"),
}


@pytest.mark.parametrize("case", TRAIN_REFUSALS)
def test_train_refuses_bad_uploads_with_a_4xx_and_trains_nothing(client, service, monkeypatch, case):
    gate = TrainingGate(monkeypatch)
    versions = service.store.versions()
    files, status, says = TRAIN_REFUSALS[case]
    response = client.post("/train/", files=as_upload(training_files(2) + files))
    assert response.status_code == status, response.text
    assert says in response.json()["detail"]
    assert gate.calls == 0 and service.store.versions() == versions


def test_requests_without_files_are_a_422(client):
    assert client.post("/predict/").status_code == 422
    assert client.post("/train/").status_code == 422


def test_predict_with_no_model_is_a_503_with_retry_after(client, service, monkeypatch, tmp_path):
    empty = ModelStore(mnist.MODEL_NAME, root=tmp_path)
    monkeypatch.setattr(service, "store", empty)
    monkeypatch.setattr(service, "latest", LatestModel(empty))
    response = client.post("/predict/", files={"file": digit_image(7)})
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0


def test_an_empty_store_gets_one_training_at_start_up(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKSHOP_MODELS_DIR", str(tmp_path))
    fresh = import_fresh(app.part2.main.__file__)
    with TestClient(fresh.app) as client:
        assert info(client) == {"Num of model in training": 0, "Num of trained models": 1, "Serving version": 1}
        assert predict(client)["version"] == 1
    metadata = fresh.store.get(1).metadata
    assert metadata["parent"] is None and metadata["parameters"]["fine_tuned"] is False
