"""Part 1, exercise 2: prediction on demand.

Run it:   uv run fastapi dev exercises/part1/ex2_predict.py
Try:      http://127.0.0.1:8000/predict/?bill=40.3&flipper=195
Check it: uv run workshop check part1/ex2_predict

As in the workshop, the model is trained when the app starts: `train()` fits the scaler +
11-nearest-neighbours pipeline on all of data/penguins.csv (342 penguins, a few milliseconds).
scikit-learn takes the species names as labels, so no LabelEncoder is needed to turn the answer
back into a name. Training at start-up is fine for a model this small; Part 2 shows what changes
when training takes minutes, and app/part1 serves the model the notebook exported instead.

The model answers with its own `predict`, as the workshop teaches. It was fitted on a table with
named columns (bill_length_mm, flipper_length_mm), so it is asked with one row of that table: a bare
`[[bill, flipper]]`, as in the workshop, gives the same species but makes scikit-learn warn "X does
not have valid feature names" on every request. scikit-learn checks its input on every call, about
a millisecond for one penguin: far more than the arithmetic, and still nothing next to a request's
round trip, so there is nothing to gain here from anything cleverer. (Part 3 serves the same model
through ONNX Runtime, where thousands of requests a second make the difference worth its code.)
Among its checks: no nan nor infinity, which a `float` parameter accepts ("nan", "inf"); its ValueError
becomes a 422 here rather than a 500, and exercise 3 refuses them before the function even runs.
"""

from typing import Any

import pandas as pd
from fastapi import FastAPI, HTTPException

from app.datasets import PENGUIN_FEATURES  # the columns the model was fitted on
from app.models.penguins import train
from app.offline_docs import serve_docs_offline

model = train()  # once per start (and per reload under `fastapi dev`), not per request

app = FastAPI(title="Part 1, exercise 2: prediction on demand")
# Keep this line if you paste the workshop's code over the file: FastAPI's own /docs and /redoc
# load their scripts from a CDN, so without it they are blank pages offline.
serve_docs_offline(app)


@app.get("/predict/")
def predict(bill: float, flipper: float) -> dict[str, Any]:
    # BEGIN SOLUTION return {"parameters": {"bill_length": bill, "flipper_length": flipper}, "result": <the species the model predicts>}
    parameters = {"bill_length": bill, "flipper_length": flipper}
    penguin = pd.DataFrame([[bill, flipper]], columns=list(PENGUIN_FEATURES))  # one row, named as in training
    try:
        species = model.predict(penguin)[0]
    except ValueError as error:  # scikit-learn refuses nan and infinity, which `float` lets through
        raise HTTPException(status_code=422, detail=f"no prediction for these lengths: {error}") from error
    return {"parameters": parameters, "result": str(species)}
    # END SOLUTION
