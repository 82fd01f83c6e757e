"""Checks for part1/ex3_validation: bill and flipper must be > 0 and below a maximum.

The workshop's step: `Annotated[float, Query(gt=0)]`, and "try adding a maximum": any sensible maximum
(`le=` or `lt=`, any value above the largest penguin) does the step. Going further: this project's
maxima, taken from the data."""

import pytest

from app.datasets import PENGUIN_FEATURES, load_penguins
from app.models.penguins.api import MAX_BILL_MM, MAX_FLIPPER_MM
from tests.exercises.expect import expect, expect_json, expect_status, listed, shown

HINTS = [
    "`Annotated[float, Query(gt=0)]` from `typing` and `fastapi` lets FastAPI refuse a value before "
    "your function runs, with a 422 naming the parameter.",
    "Query() also takes a maximum: `le=` (at most) or `lt=` (below). Any value above the largest "
    "penguin does the step: the data's longest bill is 59.6 mm, its longest flipper 231 mm.",
    "Going further: app/models/penguins/api.py has MAX_BILL_MM and MAX_FLIPPER_MM; use them with `lt=`.",
]

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


def named_parameters(response) -> list[str]:
    """The query parameters a FastAPI-style 422 names (its errors' `loc`)."""
    detail = response.json().get("detail")
    errors = detail if isinstance(detail, list) else []
    return [str(error["loc"][-1]) for error in errors if isinstance(error, dict) and error.get("loc", [""])[0] == "query"]


def test_a_valid_query_still_predicts(client):
    expect_json(client.get("/predict/", params=VALID),
                {"parameters": {"bill_length": 40.3, "flipper_length": 195.0}, "result": "Adelie"},
                "GET /predict/?bill=40.3&flipper=195")


@pytest.mark.parametrize("parameter", ["bill", "flipper"])
@pytest.mark.parametrize("value", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_a_bad_value_is_a_422_naming_the_parameter(client, parameter, value):
    response = client.get("/predict/", params={**VALID, parameter: value})
    expect_status(response, 422, f"GET /predict/ with {parameter}={shown(value)}")
    named = named_parameters(response)
    expect(named == [parameter], f"the 422 should name {parameter} only, as FastAPI's own do; it named {listed(named) or 'none'}")


@pytest.mark.parametrize("parameter", ["bill", "flipper"])
def test_a_missing_parameter_is_a_422_naming_it(client, parameter):
    response = client.get("/predict/", params={name: v for name, v in VALID.items() if name != parameter})
    expect_status(response, 422, f"GET /predict/ without {parameter}")
    expect(named_parameters(response) == [parameter], f"the 422 should name {parameter}")


def test_every_penguin_in_the_data_is_accepted(client):
    frame = load_penguins()
    for column, parameter in zip(PENGUIN_FEATURES, ["bill", "flipper"]):
        for value in (frame[column].min(), frame[column].max()):
            expect_status(client.get("/predict/", params={**VALID, parameter: value}), 200,
                          f"GET /predict/ with {parameter}={value} (a real penguin's)")


def test_the_bounds_are_in_the_docs(client):
    """Declared with Query(), the bounds reach /docs; checked inside the function, they would not."""
    parameters = client.get("/openapi.json").json()["paths"]["/predict/"]["get"]["parameters"]
    for parameter in parameters:
        schema, name = parameter["schema"], parameter["name"]
        expect(schema.get("exclusiveMinimum", schema.get("minimum")) is not None,
               f"/docs should show a minimum for {name}: declare it in Query(gt=0)")
        expect(schema.get("exclusiveMaximum", schema.get("maximum")) is not None,
               f"/docs should show a maximum for {name}: declare it in Query(le=...) or Query(lt=...)")


@pytest.mark.going_further(
    "a maximum read from the data (app/models/penguins/api.py) says why it is that number; `lt` also refuses the limit itself",
    hint="bill: Annotated[float, Query(gt=0, lt=MAX_BILL_MM)], and MAX_FLIPPER_MM for flipper",
)
@pytest.mark.parametrize(("parameter", "maximum"), [("bill", MAX_BILL_MM), ("flipper", MAX_FLIPPER_MM)])
def test_the_maximum_is_the_datas_and_exclusive(client, parameter, maximum):
    expect_status(client.get("/predict/", params={**VALID, parameter: maximum}), 422,
                  f"GET /predict/ with {parameter}={maximum} (the maximum itself)")
    expect_status(client.get("/predict/", params={**VALID, parameter: maximum - 0.1}), 200,
                  f"GET /predict/ with {parameter}={maximum - 0.1} (just below the maximum)")
