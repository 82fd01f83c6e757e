"""Part 1's reference service: GET /predict/?bill=40.3&flipper=195 -> the penguin's species.

Run it:   fastapi dev app/part1/main.py

Where the exercises train at import as the workshop does, this service serves what
notebooks/penguins.ipynb published to the model store: the active version, loaded once at start-up
(sha256 checked, see app/part1/model.py) and kept in memory, so a request never touches the disk;
it predicts with the pipeline's own `predict`, as the workshop does. Lengths accept units ("19.5cm") and
are bounded as app/models/penguins/api.py explains; anything else is a 422 naming the parameter.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request

from app.models.penguins.api import BillLength, FlipperLength, PenguinMeasurements, PenguinPrediction
from app.offline_docs import serve_docs_offline
from app.part1.model import ServedModel, load_or_publish


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.model = load_or_publish()
    yield


app = FastAPI(title="Penguin species (Part 1 reference service)", lifespan=lifespan)
serve_docs_offline(app)  # /docs and /redoc with no internet: FastAPI's own pages load from a CDN


def served(request: Request) -> ServedModel:
    return request.app.state.model


@app.get("/")
def describe(request: Request) -> dict[str, Any]:
    """Which model answers, and how to ask it."""
    model = served(request)
    return {
        "service": "penguin species from bill and flipper lengths",
        "model": {
            "version": model.version,
            "classes": [str(name) for name in model.pipeline.classes_],
            "features": [str(name) for name in model.pipeline.feature_names_in_],
            "metrics": model.metadata.get("metrics", {}),
            "created_at": model.metadata.get("created_at"),
        },
        "try": "/predict/?bill=40.3&flipper=195",
        "docs": "/docs",
    }


@app.get("/predict/")
def predict(bill: BillLength, flipper: FlipperLength, request: Request) -> PenguinPrediction:
    species = served(request).predict(bill, flipper)
    return PenguinPrediction(parameters=PenguinMeasurements(bill_length=bill, flipper_length=flipper), result=species)
