"""Predictions: penguins from two lengths (Part 1's contract), digits from uploaded images (Part 2's)."""

from fastapi import APIRouter, UploadFile
from pydantic import BaseModel

from app import penguin_api
from app.part3.routes.errors import documented
from app.part3.service import ServiceDep
from app.penguin_api import BillLength, FlipperLength, PenguinMeasurements

router = APIRouter(tags=["predict"])


class PenguinPrediction(penguin_api.PenguinPrediction):
    """Part 1's answer (lengths in millimetres, whatever unit was sent) and the model version."""

    version: int


class DigitPrediction(BaseModel):
    filename: str | None
    result: str  # a string, as in the workshop: "7"
    version: int


class DigitBatch(BaseModel):
    version: int
    results: list[DigitPrediction]


@router.get("/predict/", responses=documented(422, 503))
def predict_penguin(bill: BillLength, flipper: FlipperLength, service: ServiceDep) -> PenguinPrediction:
    """The species of a penguin from its bill and flipper lengths ("40.3", "40.3mm", "4.03cm", ...)."""
    answer = service.predictor.penguin(bill, flipper)
    return PenguinPrediction(
        parameters=PenguinMeasurements(bill_length=bill, flipper_length=flipper), result=answer.species, version=answer.version
    )


@router.post("/predict/", responses=documented(400, 413, 422, 503))
async def predict_digit(file: UploadFile, service: ServiceDep) -> DigitPrediction:
    """The digit in one 28x28 image."""
    answers = await service.predictor.digits([(file.filename, await file.read())])
    return DigitPrediction(filename=file.filename, result=str(answers.digits[0]), version=answers.version)


@router.post("/predict/batch/", responses=documented(400, 413, 422, 503))
async def predict_digits(files: list[UploadFile], service: ServiceDep) -> DigitBatch:
    """The digit in each of many 28x28 images, in the order sent, all by one model version. One bad
    file refuses the request, naming the file."""
    uploads = [(file.filename, await file.read()) for file in files]
    answers = await service.predictor.digits(uploads)
    return DigitBatch(
        version=answers.version,
        results=[
            DigitPrediction(filename=name, result=str(digit), version=answers.version)
            for (name, _), digit in zip(uploads, answers.digits, strict=True)
        ],
    )
