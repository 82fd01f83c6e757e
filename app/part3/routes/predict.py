"""Predictions: penguins from two lengths (Part 1's contract), digits from uploaded images (Part 2's).

These routes answer in a fraction of a millisecond, so they take the service from the request
(`service_of`) rather than through `ServiceDep`: FastAPI's dependency solving costs a tenth of a
penguin prediction (bench/RESULTS.md). The other routes use
`ServiceDep`. Their route class reads a one-image upload without Starlette's general multipart
parser (app/part3/small_uploads.py); `file: UploadFile` is validated and documented as usual.
"""

from fastapi import APIRouter, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app import mnist, penguins
from app.part3.prediction_ids import image_digest
from app.part3.routes.errors import documented
from app.part3.service import service_of
from app.part3.small_uploads import SmallUploadRoute
from app.penguins import api as penguin_api
from app.penguins.api import BillLength, FlipperLength, PenguinMeasurements

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
    answer = service.predictor.penguin(bill, flipper)
    service.monitoring.saw_penguin(answer.version, bill, flipper)
    return PenguinPrediction(
        parameters=PenguinMeasurements(bill_length=bill, flipper_length=flipper),
        result=answer.species,
        version=answer.version,
        prediction_id=service.monitoring.ids.issue(penguins.MODEL_NAME, answer.version, answer.species),
    )


@router.post("/predict/", response_model=DigitPrediction, responses=documented(400, 413, 422, 503))
async def predict_digit(file: UploadFile, request: Request) -> JSONResponse:
    """The digit in one 28x28 image."""
    service = service_of(request)
    upload = (file.filename, await file.read())
    answers = await service.predictor.digits([upload])
    service.monitoring.saw_digits(answers.version, [upload])
    digit = str(answers.digits[0])
    prediction_id = service.monitoring.ids.issue(mnist.MODEL_NAME, answers.version, digit, image_digest(upload[1]))
    # A response returned as is: FastAPI skips validating and serialising it again (bench/RESULTS.md);
    # response_model still documents it.
    return JSONResponse(
        {"filename": file.filename, "result": digit, "version": answers.version, "prediction_id": prediction_id}
    )


@router.post("/predict/batch/", response_model=DigitBatch, responses=documented(400, 413, 422, 503))
async def predict_digits(files: list[UploadFile], request: Request) -> JSONResponse:
    """The digit in each of many 28x28 images, in the order sent, all by one model version. One bad
    file refuses the request, naming the file."""
    uploads = [(file.filename, await file.read()) for file in files]
    service = service_of(request)
    answers = await service.predictor.digits(uploads)
    service.monitoring.saw_digits(answers.version, uploads)
    issue, version = service.monitoring.ids.issue, answers.version
    results = [
        {
            "filename": name,
            "result": str(digit),
            "version": version,
            "prediction_id": issue(mnist.MODEL_NAME, version, str(digit), image_digest(data)),
        }
        for (name, data), digit in zip(uploads, answers.digits, strict=True)
    ]
    return JSONResponse({"version": version, "results": results})  # as is, like predict_digit's
