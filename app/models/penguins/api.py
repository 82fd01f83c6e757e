"""The penguin API's contract, written once for every service: what it accepts and what it answers.

The bounds come from the data (data/penguins.csv): bills measure 32.1-59.6 mm and flippers
172-231 mm. A k-nearest-neighbours model answers for any input, however absurd (a 2-metre flipper
still has 11 nearest penguins), so the API refuses what no penguin of these species measures:
0 or less, and more than about 1.7x the longest bill or 1.3x the longest flipper on record. The
margins keep every real measurement and catch the usual slips, such as a misplaced decimal point
(1950 for 195.0). They also refuse "nan" and "inf", which Python's float() accepts: nan fails every
comparison and infinity the upper bound.
"""

from typing import Annotated

from fastapi import Query
from pydantic import BaseModel

from app.models.penguins.units import ACCEPTED_UNITS, Millimetres

MAX_BILL_MM = 100.0
MAX_FLIPPER_MM = 300.0

# Query parameters for a route: a number with an optional unit, converted to millimetres, then
# bounded. Part 1's reference service and Part 3's production service both declare these.
BillLength = Annotated[
    Millimetres,
    Query(gt=0, lt=MAX_BILL_MM, description=f"bill length, > 0 and < {MAX_BILL_MM:g} mm; units: {ACCEPTED_UNITS}"),
]
FlipperLength = Annotated[
    Millimetres,
    Query(
        gt=0, lt=MAX_FLIPPER_MM, description=f"flipper length, > 0 and < {MAX_FLIPPER_MM:g} mm; units: {ACCEPTED_UNITS}"
    ),
]


class PenguinMeasurements(BaseModel):
    bill_length: float
    flipper_length: float


class PenguinPrediction(BaseModel):
    """`GET /predict/?bill=40.3&flipper=195` -> {"parameters": {...}, "result": "Adelie"}."""

    parameters: PenguinMeasurements
    result: str
