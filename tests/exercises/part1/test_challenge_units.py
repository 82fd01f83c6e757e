"""Checks for part1/challenge_units: lengths with an optional unit ("120mm", "12cm"), converted to mm.

The workshop's step: "120mm" and "12cm" give the same penguin as 120, and a length that is no length
is refused with a 422. Going further: the 422 reads like FastAPI's own (it names the parameter and
every accepted unit), the bounds of exercise 3 apply to the millimetres, and /docs lets you type "12cm".
"""

import re

import pytest

from app.models.penguins.api import MAX_BILL_MM
from app.models.penguins.units import MILLIMETRES_PER_UNIT
from tests.exercises.expect import expect, expect_status, listed, shown

HINTS = [
    "Let the parameters arrive as text (`bill: str`) and turn \"4.03cm\" into 40.3 millimetres before "
    "predicting; a value you cannot read is an HTTPException(status_code=422).",
    "app/models/penguins/units.py has `to_millimetres(text)`, which raises a ValueError for what is not a length.",
    "Going further: pydantic's BeforeValidator runs a function on the raw text before the float check: "
    "Annotated[float, BeforeValidator(to_millimetres), WithJsonSchema(LENGTH_SCHEMA)].",
]

ADELIE = {"bill_length": 40.3, "flipper_length": 195.0}
# The units the workshop's step expects, in any case, with or without a space (no unit: mm). The README's
# table and the starter's TODO name them all (tests/test_learner_docs.py).
STEP_UNITS = ("mm", "cm", "m")


@pytest.mark.parametrize(
    ("bill", "flipper"),
    [("40.3", "195"), ("40.3mm", "195mm"), ("40.3 mm", "19.5cm"), ("4.03cm", "0.195m"), ("40.3MM", "19.5 CM")],
)
def test_the_same_penguin_in_any_unit(client, bill, flipper):
    what = f"GET /predict/?bill={bill}&flipper={flipper}"
    response = client.get("/predict/", params={"bill": bill, "flipper": flipper})
    expect_status(response, 200, what)
    body = response.json()
    expect(body.get("result") == "Adelie", f"{what} should answer the Adelie of 40.3 mm and 195 mm; it answered {shown(body)}")
    parameters = {name: float(value) for name, value in body.get("parameters", {}).items()}
    expect(parameters == pytest.approx(ADELIE),
           f"{what} should give the parameters in mm, {shown(ADELIE)}; it gave {shown(body.get('parameters'))}")


@pytest.mark.parametrize("value", ["12ft", "40.3 furlongs", "abc", "mm", ""])
def test_what_is_not_a_length_is_a_422(client, value):
    expect_status(client.get("/predict/", params={"bill": value, "flipper": "195"}), 422, f"GET /predict/ with bill={shown(value)}")


@pytest.mark.going_further(
    "a 422 in FastAPI's own shape names the parameter, and naming the units tells the user what to write instead",
    hint="raise a ValueError from a pydantic BeforeValidator: FastAPI turns it into its usual 422",
)
@pytest.mark.parametrize("value", ["12ft", "40.3 furlongs", "40.3 m m", "abc", "mm", "", "nan", "inf", "4,03cm"])
def test_the_422_names_the_parameter_and_the_accepted_units(client, value):
    response = client.get("/predict/", params={"bill": value, "flipper": "195"})
    expect_status(response, 422, f"GET /predict/ with bill={shown(value)}")
    detail = response.json()["detail"]
    expect(isinstance(detail, list) and detail[0].get("loc") == ["query", "bill"],
           f"the 422 should name the parameter as FastAPI does (its loc [\"query\", \"bill\"]); it said {shown(detail)}")
    message = detail[0].get("msg", "")
    missing = [unit for unit in MILLIMETRES_PER_UNIT if not re.search(rf"\b{unit}\b", message)]
    expect(not missing, f"the 422's message should name every accepted unit; it does not name {listed(missing)}: {shown(message)}")


@pytest.mark.going_further(
    "exercise 3's bounds must hold whatever the unit: 10cm is 100 mm, too long for a bill",
    hint="convert before pydantic checks the bounds: Annotated[LengthInMm, Query(gt=0, lt=MAX_BILL_MM)]",
)
@pytest.mark.parametrize("value", ["-1cm", "0mm", f"{MAX_BILL_MM / 10:g}cm", "1e9mm"])
def test_bounds_apply_after_conversion(client, value):
    expect_status(client.get("/predict/", params={"bill": value, "flipper": "195"}), 422, f"GET /predict/ with bill={shown(value)}")
    expect_status(client.get("/predict/", params={"bill": "40.3", "flipper": "2ft"}), 422, "GET /predict/ with flipper=\"2ft\"")


@pytest.mark.going_further(
    "inches too: the unit a user may have measured in",
    hint="app/models/penguins/units.py's MILLIMETRES_PER_UNIT has the factors",
)
def test_inches_are_converted(client):
    response = client.get("/predict/", params={"bill": "1.6in", "flipper": "7.8in"})
    expect_status(response, 200, "GET /predict/?bill=1.6in&flipper=7.8in")
    parameters = response.json()["parameters"]
    expected = {"bill_length": 1.6 * 25.4, "flipper_length": 7.8 * 25.4}
    expect(parameters == pytest.approx(expected), f"1.6in and 7.8in should be {shown(expected)} in mm; they gave {shown(parameters)}")


@pytest.mark.going_further(
    "/docs (Swagger UI) refuses to send \"12cm\" in a field it documents as a number",
    hint="WithJsonSchema(LENGTH_SCHEMA) documents the parameter as a string",
)
def test_the_docs_let_you_type_a_unit(client):
    parameters = client.get("/openapi.json").json()["paths"]["/predict/"]["get"]["parameters"]
    types = {parameter["name"]: parameter["schema"].get("type") for parameter in parameters}
    expect(types == {"bill": "string", "flipper": "string"},
           f"/docs should document bill and flipper as text (\"string\"); it documents them as {shown(types)}")
