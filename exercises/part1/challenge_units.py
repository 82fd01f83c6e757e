"""Part 1, extra challenge: lengths with units.

Run it:   uv run fastapi dev exercises/part1/challenge_units.py
Try:      http://127.0.0.1:8000/predict/?bill=4.03cm&flipper=195mm  (and flipper=0.195m, bill=2ft)
Check it: uv run workshop check part1/challenge_units

The workshop's step: millimetres, centimetres and metres (mm, cm, m, in any case, a space allowed
before the unit; a number alone is in mm, the unit of the data); anything else, "12ft" or "abc", is
a 422. Going further: inches too ("0.5in"). The parameters arrive as text such as "120mm", "12cm",
"0.195 m" or "40.3". app.models.penguins.units.to_millimetres
turns such a text into a float of millimetres (no unit means mm) and raises a ValueError naming the
accepted units otherwise. Wrapped in pydantic's BeforeValidator, it runs on the raw text *before*
pydantic checks the float, so the bounds of exercise 3 apply to the millimetres, and its ValueError
becomes a 422 naming the parameter, like any other validation error. WithJsonSchema documents the
parameter as a string, so that /docs lets you type "12cm". (app/models/penguins/units.py keeps the same type,
`Millimetres`, for the reference services.)
"""

from typing import Annotated, Any

import pandas as pd
from fastapi import FastAPI, Query
from pydantic import BeforeValidator, WithJsonSchema

from app.datasets import PENGUIN_FEATURES
from app.models.penguins import train
from app.models.penguins.api import MAX_BILL_MM, MAX_FLIPPER_MM
from app.models.penguins.units import LENGTH_SCHEMA, to_millimetres
from app.offline_docs import serve_docs_offline

model = train()

# TODO: a length type that reads a number with a unit as millimetres: mm, cm or m, in any case, with or without a space ("40.3mm", "4.03 cm", "0.195M"; no unit is mm); anything else is a 422 (app/models/penguins/units.py has to_millimetres)
LengthInMm = float

app = FastAPI(title="Part 1, extra challenge: lengths with units")
# Keep this line if you paste the workshop's code over the file: FastAPI's own /docs and /redoc
# load their scripts from a CDN, so without it they are blank pages offline.
serve_docs_offline(app)


@app.get("/predict/")
def predict(
    bill: Annotated[LengthInMm, Query(gt=0, lt=MAX_BILL_MM)],
    flipper: Annotated[LengthInMm, Query(gt=0, lt=MAX_FLIPPER_MM)],
) -> dict[str, Any]:
    parameters = {"bill_length": bill, "flipper_length": flipper}
    penguin = pd.DataFrame([[bill, flipper]], columns=list(PENGUIN_FEATURES))  # exercise 2's prediction
    return {"parameters": parameters, "result": str(model.predict(penguin)[0])}
