"""app.models.penguins.units: a length with an optional unit, in millimetres, or a UnitError naming the
accepted units."""

import math

import pytest

from app.models.penguins.units import ACCEPTED_UNITS, MILLIMETRES_PER_UNIT, UnitError, to_millimetres


@pytest.mark.parametrize(
    ("text", "millimetres"),
    [
        ("120mm", 120.0),
        ("12cm", 120.0),
        ("0.5in", 12.7),
        ("40.3 mm", 40.3),
        ("40.3", 40.3),
        (" 40.3 ", 40.3),
        ("4.03cm", 40.3),
        ("0.0403 m", 40.3),
        ("19.5CM", 195.0),
        (".5cm", 5.0),
        ("1e2mm", 100.0),
        ("-3cm", -30.0),  # a sign is parsed; whether a negative length is allowed is the caller's bound
    ],
)
def test_lengths_in_each_unit(text, millimetres):
    assert to_millimetres(text) == millimetres


@pytest.mark.parametrize("unit", MILLIMETRES_PER_UNIT)
def test_every_accepted_unit_scales_its_number(unit):
    assert to_millimetres(f"2{unit}") == pytest.approx(2 * MILLIMETRES_PER_UNIT[unit])
    assert to_millimetres(f"2 {unit.upper()}") == to_millimetres(f"2{unit}")


def test_numbers_pass_through_as_millimetres():
    assert to_millimetres(195) == 195.0 and isinstance(to_millimetres(195), float)
    assert to_millimetres(40.3) == 40.3


@pytest.mark.parametrize("text", ["12ft", "3 furlongs", "40.3 mmm", "1e"])
def test_an_unknown_unit_is_named_with_the_accepted_ones(text):
    with pytest.raises(UnitError) as caught:
        to_millimetres(text)
    message = str(caught.value)
    assert "unknown unit" in message and ACCEPTED_UNITS in message


@pytest.mark.parametrize(
    "value", ["", "mm", "abc", "nan", "inf", "-inf", "4,03cm", "1_000", "12 c m", "0x10", None, [1]]
)
def test_a_malformed_value_is_refused_naming_the_accepted_units(value):
    with pytest.raises(UnitError, match=ACCEPTED_UNITS):
        to_millimetres(value)


@pytest.mark.parametrize("value", ["1e400", "1e400cm", math.nan, math.inf])
def test_infinite_or_nan_lengths_are_refused(value):
    with pytest.raises(UnitError, match="finite"):
        to_millimetres(value)


def test_unit_error_is_a_value_error():
    """pydantic turns a ValueError raised by a validator into a 422; any other exception is a 500."""
    assert issubclass(UnitError, ValueError)


def test_the_pydantic_type_converts_and_reports_errors_on_the_field():
    from typing import Annotated

    from pydantic import BaseModel, Field, ValidationError

    from app.models.penguins.units import Millimetres

    class Penguin(BaseModel):
        flipper: Annotated[Millimetres, Field(gt=0, lt=300)]

    assert Penguin(flipper="19.5cm").flipper == 195.0
    with pytest.raises(ValidationError) as caught:
        Penguin(flipper="2ft")
    [error] = caught.value.errors()
    assert error["loc"] == ("flipper",) and ACCEPTED_UNITS in error["msg"]
    with pytest.raises(ValidationError, match="less than 300"):
        Penguin(flipper="2m")  # the bound applies to the millimetres
    assert Penguin.model_json_schema()["properties"]["flipper"]["type"] == "string"
