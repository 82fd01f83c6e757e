"""Checks for part1/ex3_validation: bill and flipper must be > 0 and below a maximum taken from the data."""

import pytest

from app.datasets import PENGUIN_FEATURES, load_penguins
from app.penguin_api import MAX_BILL_MM, MAX_FLIPPER_MM

VALID = {"bill": "40.3", "flipper": "195"}
BAD_VALUES = {
    "negative": "-3",
    "zero": "0",
    "huge": "1e9",
    "nan": "nan",
    "inf": "inf",
    "minus inf": "-inf",
    "text": "long",
    "empty": "",
}


def test_a_valid_query_still_predicts(client):
    response = client.get("/predict/", params=VALID)
    assert response.status_code == 200, response.text
    assert response.json() == {"parameters": {"bill_length": 40.3, "flipper_length": 195.0}, "result": "Adelie"}


@pytest.mark.parametrize("parameter", ["bill", "flipper"])
@pytest.mark.parametrize("value", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_a_bad_value_is_a_422_naming_the_parameter(client, parameter, value):
    response = client.get("/predict/", params={**VALID, parameter: value})
    assert response.status_code == 422, f"{parameter}={value!r} should be refused with a 422, got {response.status_code}: {response.text}"
    assert [error["loc"] for error in response.json()["detail"]] == [["query", parameter]]


@pytest.mark.parametrize("parameter", ["bill", "flipper"])
def test_a_missing_parameter_is_a_422_naming_it(client, parameter):
    response = client.get("/predict/", params={name: v for name, v in VALID.items() if name != parameter})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", parameter]


@pytest.mark.parametrize(("parameter", "maximum"), [("bill", MAX_BILL_MM), ("flipper", MAX_FLIPPER_MM)])
def test_the_maximum_is_exclusive(client, parameter, maximum):
    assert client.get("/predict/", params={**VALID, parameter: maximum}).status_code == 422
    assert client.get("/predict/", params={**VALID, parameter: maximum - 0.1}).status_code == 200


def test_every_penguin_in_the_data_is_accepted(client):
    frame = load_penguins()
    for column, parameter in zip(PENGUIN_FEATURES, ["bill", "flipper"]):
        for value in (frame[column].min(), frame[column].max()):
            response = client.get("/predict/", params={**VALID, parameter: value})
            assert response.status_code == 200, f"{parameter}={value}: {response.text}"


def test_the_bounds_are_in_the_docs(client):
    """Declared with Query(), the bounds reach /docs; checked inside the function, they would not."""
    parameters = client.get("/openapi.json").json()["paths"]["/predict/"]["get"]["parameters"]
    schemas = {parameter["name"]: parameter["schema"] for parameter in parameters}
    assert schemas["bill"]["exclusiveMinimum"] == 0 and schemas["bill"]["exclusiveMaximum"] == MAX_BILL_MM
    assert schemas["flipper"]["exclusiveMinimum"] == 0 and schemas["flipper"]["exclusiveMaximum"] == MAX_FLIPPER_MM
