"""The workshop's prediction routes, as it teaches them: penguins from two lengths (Part 1's contract),
digits from uploaded images (Part 2's). Thin adapters onto the generic prediction path
(app/part3/predictor.py); the Open Inference Protocol's `/v2/models/{name}/infer` (inference.py) is
the same path for any model.

These routes answer in a fraction of a millisecond, so they take the service from the request
(`service_of`) rather than through `ServiceDep`: FastAPI's dependency solving costs a tenth of a
penguin prediction (bench/RESULTS.md). Their route class reads file uploads without Starlette's
general multipart parser (app/part3/small_uploads.py); `file: UploadFile` is validated and
documented as usual.
"""

import numpy as np
from fastapi import APIRouter, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.images import UploadError, decode_digits
from app.models import mnist, penguins
from app.models.penguins import api as penguin_api
from app.models.penguins.api import BillLength, FlipperLength, PenguinMeasurements
from app.part3.routes.errors import documented
from app.part3.service import service_of
from app.part3.small_uploads import SmallUploadRoute

router = APIRouter(tags=["predict"], route_class=SmallUploadRoute)


class PenguinPrediction(penguin_api.PenguinPrediction):
    """Part 1's answer (lengths in millimetres, whatever unit was sent) and the model version."""

    version: int
    prediction_id: str  # send it back with the true label to POST /feedback/


class DigitPrediction(BaseModel):
    filename: str | None
    result: str  # a string, as in the workshop: "7"
    version: int
    prediction_id: str  # send it back with the true label to POST /feedback/


class DigitBatch(BaseModel):
    version: int
    results: list[DigitPrediction]


@router.get("/predict/", responses=documented(422, 503))
async def predict_penguin(bill: BillLength, flipper: FlipperLength, request: Request) -> PenguinPrediction:
    """The species of a penguin from its bill and flipper lengths ("40.3", "40.3mm", "4.03cm", ...)."""
    service = service_of(request)
    answers = service.predictor.predict(penguins.MODEL_NAME, np.array([[bill, flipper]], dtype=np.float64))
    (prediction_id,) = service.monitoring.answered(penguins.MODEL_NAME, answers.version, answers.labels, answers.inputs)
    return PenguinPrediction(
        parameters=PenguinMeasurements(bill_length=bill, flipper_length=flipper),
        result=answers.labels[0],
        version=answers.version,
        prediction_id=prediction_id,
    )


@router.post("/predict/", response_model=DigitPrediction, responses=documented(400, 413, 422, 503))
async def predict_digit(file: UploadFile, request: Request) -> JSONResponse:
    """The digit in one 28x28 image."""
    service = service_of(request)
    answers = await service.predictor.predict_encoded(
        mnist.MODEL_NAME, [(file.filename, await file.read())], decode_digits
    )
    (prediction_id,) = service.monitoring.answered(mnist.MODEL_NAME, answers.version, answers.labels, answers.inputs)
    # A response returned as is: FastAPI skips validating and serialising it again (bench/RESULTS.md);
    # response_model still documents it.
    return JSONResponse(
        {
            "filename": file.filename,
            "result": answers.labels[0],
            "version": answers.version,
            "prediction_id": prediction_id,
        }
    )


@router.post("/predict/batch/", response_model=DigitBatch, responses=documented(400, 413, 422, 503))
async def predict_digits(files: list[UploadFile], request: Request) -> JSONResponse:
    """The digit in each of many 28x28 images, in the order sent, all by one model version. One bad
    file refuses the request, naming the file."""
    uploads = [(file.filename, await file.read()) for file in files]
    if not uploads:
        raise UploadError("no files were uploaded; send one or more images as 'files'")
    service = service_of(request)
    answers = await service.predictor.predict_encoded(mnist.MODEL_NAME, uploads, decode_digits)
    version = answers.version
    ids = service.monitoring.answered(mnist.MODEL_NAME, version, answers.labels, answers.inputs)
    results = [
        {"filename": name, "result": label, "version": version, "prediction_id": prediction_id}
        for (name, _), label, prediction_id in zip(uploads, answers.labels, ids, strict=True)
    ]
    return JSONResponse({"version": version, "results": results})  # as is, like predict_digit's
