"""Part 1, exercise 3: query parameter validation.

Run it:   uv run fastapi dev exercises/part1/ex3_validation.py
Try:      http://127.0.0.1:8000/predict/?bill=-3&flipper=195  (and bill=nan, bill=1e9, bill=abc)
Check it: uv run workshop check part1/ex3_validation

`bill: float` already refuses text with a 422. But -3, 0, 1e9 are floats, and so are "nan" and
"inf" (Python's float() accepts them): the model would answer for them all, because a nearest
neighbour always exists. `Annotated[float, Query(gt=0, lt=...)]` lets FastAPI refuse them before
the function runs, with a 422 whose `loc` names the parameter, and shows the bounds in /docs.
The bounds need no `allow_inf_nan=False`: nan fails every comparison and infinity fails `lt`.
app/models/penguins/api.py explains the maxima, taken from the data.
"""

from typing import Annotated, Any

import pandas as pd
from fastapi import FastAPI, Query

from app.datasets import PENGUIN_FEATURES
from app.models.penguins import train
from app.models.penguins.api import MAX_BILL_MM, MAX_FLIPPER_MM  # 100 mm and 300 mm
from app.offline_docs import serve_docs_offline

model = train()

app = FastAPI(title="Part 1, exercise 3: query parameter validation")
# Keep this line if you paste the workshop's code over the file: FastAPI's own /docs and /redoc
# load their scripts from a CDN, so without it they are blank pages offline.
serve_docs_offline(app)


@app.get("/predict/")
def predict(
    # BEGIN SOLUTION bound both parameters with Query(): above 0, and below a maximum of your choice
    bill: Annotated[float, Query(gt=0, lt=MAX_BILL_MM)],
    flipper: Annotated[float, Query(gt=0, lt=MAX_FLIPPER_MM)],
    # EXERCISE: bill: float,
    # EXERCISE: flipper: float,
    # END SOLUTION
) -> dict[str, Any]:
    parameters = {"bill_length": bill, "flipper_length": flipper}
    penguin = pd.DataFrame([[bill, flipper]], columns=list(PENGUIN_FEATURES))  # exercise 2's prediction
    return {"parameters": parameters, "result": str(model.predict(penguin)[0])}
