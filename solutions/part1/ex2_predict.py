"""Part 1, exercise 2: prediction on demand.

Run it:   uv run fastapi dev exercises/part1/ex2_predict.py
Try:      http://127.0.0.1:8000/predict/?bill=40.3&flipper=195
Check it: uv run workshop check part1/ex2_predict

As in the workshop, the model is trained when the app starts: `train()` fits the scaler +
11-nearest-neighbours pipeline on all of data/penguins.csv (342 penguins, a few milliseconds).
scikit-learn takes the species names as labels, so no LabelEncoder is needed to turn the answer
back into a name. Training at start-up is fine for a model this small; Part 2 shows what changes
when training takes minutes, and app/part1 serves the model the notebook exported instead.

Why `species_of(bill, flipper)` rather than the workshop's `model.predict([[bill, flipper]])`? Both
give the same species; but the pipeline was fitted on named DataFrame columns, so a bare list makes
scikit-learn warn "X does not have valid feature names" on every request: a one-row table with those
columns does not.
"""

from typing import Any

import pandas as pd
from fastapi import FastAPI

from app.models.penguins import train
from app.offline_docs import serve_docs_offline

model = train()  # once per start (and per reload under `fastapi dev`), not per request


def species_of(bill: float, flipper: float) -> str:
    """The pipeline's own prediction for one penguin, on a table with the columns it was fitted on."""
    return str(model.predict(pd.DataFrame({"bill_length_mm": [bill], "flipper_length_mm": [flipper]}))[0])


app = FastAPI(title="Part 1, exercise 2: prediction on demand")
# Keep this line if you paste the workshop's code over the file: FastAPI's own /docs and /redoc
# load their scripts from a CDN, so without it they are blank pages offline.
serve_docs_offline(app)


@app.get("/predict/")
def predict(bill: float, flipper: float) -> dict[str, Any]:
    # BEGIN SOLUTION return {"parameters": {"bill_length": bill, "flipper_length": flipper}, "result": <the species the model predicts>}
    parameters = {"bill_length": bill, "flipper_length": flipper}
    return {"parameters": parameters, "result": species_of(bill, flipper)}
    # END SOLUTION
