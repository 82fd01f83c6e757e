"""Part 1, exercise 2: prediction on demand.

Run it:   uv run fastapi dev exercises/part1/ex2_predict.py
Try:      http://127.0.0.1:8000/predict/?bill=40.3&flipper=195
Check it: uv run workshop check part1/ex2_predict

As in the workshop, the model is trained when the app starts: `train()` fits the scaler +
11-nearest-neighbours pipeline on all of data/penguins.csv (342 penguins, a few milliseconds).
scikit-learn takes the species names as labels, so no LabelEncoder is needed to turn the answer
back into a name. Training at start-up is fine for a model this small; Part 2 shows what changes
when training takes minutes, and app/part1 serves the model the notebook exported instead.

Why `predictor.predict(bill, flipper)` rather than the workshop's `model.predict([[bill, flipper]])`?
Both give the same species, but scikit-learn's `predict` checks its input on every call (type,
shape, finite values), which costs about a millisecond for one penguin, some fifty times the
arithmetic; and the pipeline was fitted on named DataFrame columns, so a bare list makes it warn
"X does not have valid feature names" on every request. FastPenguinPredictor reads the fitted
numbers out of the pipeline once and does the same arithmetic in NumPy (tests/test_penguins.py
checks that it gives scikit-learn's answers).
"""

from typing import Any

from fastapi import FastAPI

from app.offline_docs import serve_docs_offline
from app.penguins import FastPenguinPredictor, train

model = train()  # once per start (and per reload under `fastapi dev`), not per request
predictor = FastPenguinPredictor(model)

app = FastAPI(title="Part 1, exercise 2: prediction on demand")
# Keep this line if you paste the workshop's code over the file: FastAPI's own /docs and /redoc
# load their scripts from a CDN, so without it they are blank pages offline.
serve_docs_offline(app)


@app.get("/predict/")
def predict(bill: float, flipper: float) -> dict[str, Any]:
    # BEGIN SOLUTION return {"parameters": {"bill_length": bill, "flipper_length": flipper}, "result": <the species the model predicts>}
    parameters = {"bill_length": bill, "flipper_length": flipper}
    return {"parameters": parameters, "result": predictor.predict(bill, flipper)}
    # END SOLUTION
