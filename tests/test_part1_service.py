"""app/part1: the reference service serves the store's active penguin model, with units and bounds."""

import pytest
from fastapi.testclient import TestClient

from app.datasets import PENGUIN_FEATURES, load_penguins
from app.models.penguins import MODEL, MODEL_NAME, train
from app.part1.main import app
from app.store import CorruptModel, ModelStore

ADELIE = {"parameters": {"bill_length": 40.3, "flipper_length": 195.0}, "result": "Adelie"}


@pytest.fixture
def store(tmp_path, monkeypatch) -> ModelStore:
    """An empty store of its own for each test: the service finds it through WORKSHOP_MODELS_DIR."""
    monkeypatch.setenv("WORKSHOP_MODELS_DIR", str(tmp_path))
    return ModelStore(MODEL_NAME)


def publish_one_species(store: ModelStore, species: str) -> int:
    """A model that only knows `species`: whatever it answers shows which version is served. (Written
    straight into the store: the gate would rightly refuse it.)"""
    frame = load_penguins()
    pipeline = train(frame[frame["species"] == species].head(20))
    return store.publish(lambda folder: MODEL.save(pipeline, folder), {"parameters": {"only": species}}).number


def test_a_fresh_clone_trains_and_publishes_once(store):
    assert store.versions() == []
    with TestClient(app) as client:
        assert client.get("/predict/", params={"bill": 40.3, "flipper": 195}).json() == ADELIE
        assert client.get("/").json()["model"]["version"] == 1
    with TestClient(app):  # a restart finds version 1 and publishes nothing
        pass
    assert store.versions() == [1]
    metadata = store.get(1).metadata
    assert metadata["features"] == list(PENGUIN_FEATURES) and metadata["classes"] == ["Adelie", "Chinstrap", "Gentoo"]


def test_it_serves_the_active_version(store):
    publish_one_species(store, "Gentoo")
    chinstrap = publish_one_species(store, "Chinstrap")
    with TestClient(app) as client:
        assert client.get("/").json()["model"]["version"] == chinstrap
        assert client.get("/predict/", params={"bill": 40.3, "flipper": 195}).json()["result"] == "Chinstrap"
    store.activate(1)
    with TestClient(app) as client:
        assert client.get("/").json()["model"]["version"] == 1
        assert client.get("/predict/", params={"bill": 40.3, "flipper": 195}).json()["result"] == "Gentoo"


def test_the_model_is_loaded_once_not_per_request(store):
    publish_one_species(store, "Gentoo")
    with TestClient(app) as client:
        store.get(1).model_file.unlink()  # a per-request load would now fail
        response = client.get("/predict/", params={"bill": 40.3, "flipper": 195})
        assert response.status_code == 200 and response.json()["result"] == "Gentoo"


def test_a_corrupted_model_is_refused_at_start_up(store):
    publish_one_species(store, "Gentoo")
    with open(store.get(1).model_file, "ab") as file:
        file.write(b"tampered")
    with pytest.raises(CorruptModel):
        with TestClient(app):
            pass


def test_a_model_on_other_features_is_refused_at_start_up(store):
    """The notebook may train on other columns; this service passes bill and flipper, so it refuses."""
    other = train(load_penguins(), features=("bill_depth_mm", "flipper_length_mm"))
    store.publish(lambda folder: MODEL.save(other, folder), {})
    with pytest.raises(RuntimeError, match="bill_depth_mm"):
        with TestClient(app):
            pass


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKSHOP_MODELS_DIR", str(tmp_path_factory.mktemp("models")))
        with TestClient(app) as test_client:
            yield test_client


def test_root_describes_the_served_model(client):
    body = client.get("/").json()
    assert body["model"]["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert body["model"]["features"] == list(PENGUIN_FEATURES)
    assert client.get(body["try"]).json() == ADELIE  # the example it advertises works


@pytest.mark.parametrize(("bill", "flipper"), [("40.3", "195"), ("4.03cm", "19.5cm"), ("40.3 mm", "0.195m")])
def test_predict_accepts_units(client, bill, flipper):
    response = client.get("/predict/", params={"bill": bill, "flipper": flipper})
    assert response.status_code == 200, response.text
    assert response.json() == ADELIE


def test_predict_answers_every_species(client):
    frame = load_penguins().groupby("species").head(2)
    expected = train().predict(frame[list(PENGUIN_FEATURES)])
    for (bill, flipper), species in zip(frame[list(PENGUIN_FEATURES)].itertuples(index=False), expected, strict=True):
        assert client.get("/predict/", params={"bill": bill, "flipper": flipper}).json()["result"] == species


@pytest.mark.parametrize("parameter", ["bill", "flipper"])
@pytest.mark.parametrize("value", ["-3", "0", "1e9", "nan", "inf", "abc", "12ft", "", "1m"])
def test_bad_values_are_a_422_naming_the_parameter(client, parameter, value):
    response = client.get("/predict/", params={"bill": "40.3", "flipper": "195", parameter: value})
    assert response.status_code == 422, (
        f"{parameter}={value!r} should be refused with a 422, got {response.status_code}: {response.text}"
    )
    assert [error["loc"] for error in response.json()["detail"]] == [["query", parameter]]


def test_malformed_values_name_the_accepted_units(client):
    [error] = client.get("/predict/", params={"bill": "12ft", "flipper": "195"}).json()["detail"]
    assert "mm, cm, m, in" in error["msg"]


@pytest.mark.parametrize("parameter", ["bill", "flipper"])
def test_a_missing_parameter_is_a_422_naming_it(client, parameter):
    response = client.get("/predict/", params={name: "1" for name in ("bill", "flipper") if name != parameter})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", parameter]
