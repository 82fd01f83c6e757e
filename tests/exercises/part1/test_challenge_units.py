"""Checks for part1/challenge_units: lengths with an optional unit, converted to mm, then bounded."""

import pytest

from app.penguin_api import MAX_BILL_MM
from app.units import MILLIMETRES_PER_UNIT

ADELIE = {"parameters": {"bill_length": 40.3, "flipper_length": 195.0}, "result": "Adelie"}


@pytest.mark.parametrize(
    ("bill", "flipper"),
    [("40.3", "195"), ("40.3mm", "195mm"), ("40.3 mm", "19.5cm"), ("4.03cm", "0.195m"), ("40.3MM", "19.5 CM")],
)
def test_the_same_penguin_in_any_unit(client, bill, flipper):
    response = client.get("/predict/", params={"bill": bill, "flipper": flipper})
    assert response.status_code == 200, response.text
    assert response.json() == ADELIE


def test_inches_are_converted(client):
    response = client.get("/predict/", params={"bill": "1.6in", "flipper": "7.8in"})
    assert response.status_code == 200, response.text
    parameters = response.json()["parameters"]
    assert parameters == {"bill_length": pytest.approx(1.6 * 25.4), "flipper_length": pytest.approx(7.8 * 25.4)}
    # The species is the one the same lengths in millimetres get.
    in_mm = client.get("/predict/", params={"bill": parameters["bill_length"], "flipper": parameters["flipper_length"]})
    assert response.json()["result"] == in_mm.json()["result"]


@pytest.mark.parametrize("value", ["12ft", "40.3 furlongs", "40.3 m m", "abc", "mm", "", "nan", "inf", "4,03cm"])
def test_unknown_units_and_malformed_values_name_the_accepted_units(client, value):
    response = client.get("/predict/", params={"bill": value, "flipper": "195"})
    assert response.status_code == 422, f"bill={value!r} should be refused with a 422, got {response.status_code}: {response.text}"
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "bill"]
    assert all(unit in error["msg"] for unit in MILLIMETRES_PER_UNIT), error["msg"]


@pytest.mark.parametrize("value", ["-1cm", "0mm", f"{MAX_BILL_MM / 10:g}cm", "1e9mm"])
def test_bounds_apply_after_conversion(client, value):
    response = client.get("/predict/", params={"bill": value, "flipper": "195"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", "bill"]


def test_the_flipper_takes_units_too(client):
    response = client.get("/predict/", params={"bill": "40.3", "flipper": "2ft"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", "flipper"]


def test_the_docs_let_you_type_a_unit(client):
    """/docs (Swagger UI) refuses "12cm" in a field documented as a number."""
    parameters = client.get("/openapi.json").json()["paths"]["/predict/"]["get"]["parameters"]
    assert {parameter["name"]: parameter["schema"]["type"] for parameter in parameters} == {
        "bill": "string",
        "flipper": "string",
    }
