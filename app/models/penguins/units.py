"""Lengths written with an optional unit ("120mm", "12cm", "0.5in", "40.3 mm") in millimetres.

`to_millimetres` is the logic; `Millimetres` wraps it as a pydantic type, so a FastAPI parameter or
a model field declared `Annotated[Millimetres, Query(gt=0)]` converts first and checks bounds on the
millimetres. A bad value raises `UnitError`, a ValueError, which pydantic (hence FastAPI) reports as
a 422 whose `loc` names the parameter and whose message names the accepted units.
"""

import math
import re
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

# Millimetres per unit. Names are matched case-insensitively; no unit means millimetres, the unit
# of the penguin data.
MILLIMETRES_PER_UNIT = {"mm": 1.0, "cm": 10.0, "m": 1000.0, "in": 25.4}
DEFAULT_UNIT = "mm"
ACCEPTED_UNITS = ", ".join(MILLIMETRES_PER_UNIT)

# A plain decimal number (no "nan", "inf", hex or underscores), optional spaces, optional letters.
LENGTH = re.compile(r"^\s*(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<unit>[A-Za-z]*)\s*$")


class UnitError(ValueError):
    """A length that is not a number with one of the accepted units."""


def to_millimetres(value: str | float | int) -> float:
    """The length `value` in millimetres: "12cm" -> 120.0, "40.3" -> 40.3, 195 -> 195.0."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number, unit = float(value), DEFAULT_UNIT
    elif isinstance(value, str) and (match := LENGTH.match(value)):
        number, unit = float(match["number"]), (match["unit"].lower() or DEFAULT_UNIT)
    else:
        raise UnitError(
            f"{value!r} is not a length: write a number with an optional unit, one of {ACCEPTED_UNITS} "
            f"({DEFAULT_UNIT} when none is given), e.g. '40.3', '40.3mm' or '4.03 cm'"
        )
    if unit not in MILLIMETRES_PER_UNIT:
        raise UnitError(f"unknown unit {unit!r} in {value!r}: the accepted units are {ACCEPTED_UNITS}")
    # Rounded to the nanometre so that "4.03cm" gives 40.3, not 40.300000000000004.
    millimetres = round(number * MILLIMETRES_PER_UNIT[unit], 6)
    if not math.isfinite(millimetres):  # "1e400" parses, as infinity; a float may be nan
        raise UnitError(f"{value!r} is not a finite length")
    return millimetres


# The documented schema is a string, so Swagger UI's "Try it out" lets a learner type "12cm".
LENGTH_SCHEMA = {
    "type": "string",
    "examples": ["40.3", "40.3mm", "4.03 cm", "1.6in"],
    "description": f"a number with an optional unit: {ACCEPTED_UNITS} (default {DEFAULT_UNIT})",
}
Millimetres = Annotated[float, BeforeValidator(to_millimetres), WithJsonSchema(LENGTH_SCHEMA)]
