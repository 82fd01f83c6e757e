"""Label feedback: the true answer to a prediction, named by the `prediction_id` it was answered with,
for any model (the id names the model and version).

    POST /feedback/        {"prediction_id": "...", "label": "Adelie"}            (a digit: "label": 7)
                           {"prediction_id": "...", "label": "7", "input": [[0, 0, ...], ...]}
    POST /feedback/image/  multipart: prediction_id, file (the image predicted), label (or img_7.png):
                           the workshop's digits, as an upload

With the input that was predicted (its row in the model's input form: GET /models/ gives its shape),
the feedback is kept for training (POST /models/{name}/jobs with feedback=true, /train/feedback/).
Feedback is checked whole before anything is stored: an id this service did not issue (or too old),
a label that is not one of the model's classes, an input that is not the one predicted each get a
4xx naming the problem. Sending the same feedback twice changes nothing (`recorded: false`); another
label for the same prediction is 409.
"""

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Form, HTTPException, UploadFile
from pydantic import BaseModel, Field, StrictInt
from starlette.concurrency import run_in_threadpool

from app import images
from app.models import mnist
from app.part3.feedback_records import ConflictingFeedback
from app.part3.prediction_ids import MAX_ID_LENGTH, InvalidPredictionId, IssuedPrediction, input_digest
from app.part3.routes.errors import documented, reaching
from app.part3.service import Service, ServiceDep

router = APIRouter(tags=["feedback"], responses=documented(400, 404, 409, 413, 422, 503))
PredictionId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, description="from the prediction's answer")]
MAX_LABEL_LENGTH = 64


class Feedback(BaseModel):
    prediction_id: PredictionId
    label: StrictInt | Annotated[str, Field(max_length=MAX_LABEL_LENGTH)]  # a class name ("Adelie"; a digit 7 or "7")
    input: list[Any] | None = Field(
        default=None,
        description="the input that was predicted, as one row of the model's input tensor; kept for training",
    )


class FeedbackRecorded(BaseModel):
    recorded: bool  # False: this very feedback was already recorded (a retry); nothing changed
    model: str
    version: int
    predicted: str
    label: str
    correct: bool
    input_kept: bool  # the input is kept for training on feedback


def read_id(service: Service, prediction_id: str) -> IssuedPrediction:
    try:
        issued = service.monitoring.ids.read(prediction_id)
    except InvalidPredictionId as error:
        raise HTTPException(422, str(error)) from None
    if issued.model not in service.stores:
        raise HTTPException(422, f"the prediction_id names an unknown model {issued.model!r}")
    return issued


def checked_label(service: Service, issued: IssuedPrediction, label: int | str) -> str:
    """The label as stored (a digit's as "7"), or 422 when it is not one of the model's classes."""
    classes = service.kept.models[issued.model].classes
    text = str(label).strip()
    if text not in classes:
        raise HTTPException(
            422,
            f"label {label!r} is not a class of {issued.model} version {issued.version}; one of {', '.join(classes)}",
        )
    return text


def checked_input(service: Service, issued: IssuedPrediction, given: list[Any]) -> np.ndarray:
    """The input as a row of the model's input tensor, or 422 when it does not fit or is not the one predicted."""
    model = service.kept.models[issued.model]
    try:
        row = np.asarray(given, dtype=model.input.dtype)
    except (ValueError, TypeError, OverflowError) as error:
        raise HTTPException(422, f"the input is not a {model.input.datatype} tensor of {model.name}: {error}") from None
    if row.shape != model.input.row_shape:
        raise HTTPException(
            422, f"the input of {model.name} has the shape {list(model.input.row_shape)}; got {list(row.shape)}"
        )
    if input_digest(row) != issued.input_digest:
        raise HTTPException(422, "the input is not the one predicted with this prediction_id")
    return row


def record(service: Service, issued: IssuedPrediction, label: str, row=None) -> FeedbackRecorded:
    feedback = service.monitoring.feedback
    try:
        with reaching(feedback):
            recorded = feedback.record(
                issued.key, issued.model, issued.version, issued.answer, label, issued.issued_at, row
            )
    except ConflictingFeedback as error:
        raise HTTPException(409, str(error)) from None
    service.monitoring.feedback_recorded(issued.model)
    return FeedbackRecorded(
        recorded=recorded,
        model=issued.model,
        version=issued.version,
        predicted=issued.answer,
        label=label,
        correct=issued.answer == label,
        input_kept=recorded and row is not None,
    )


@router.post("/feedback/")
def send_feedback(feedback: Feedback, service: ServiceDep) -> FeedbackRecorded:
    """The true label of an earlier prediction: it counts towards that version's live accuracy. With the
    input that was predicted, a training on feedback can learn from it."""
    issued = read_id(service, feedback.prediction_id)
    row = None if feedback.input is None else checked_input(service, issued, feedback.input)
    return record(service, issued, checked_label(service, issued, feedback.label), row)


@router.post("/feedback/image/")
async def send_feedback_with_image(
    prediction_id: Annotated[str, Form(min_length=1, max_length=MAX_ID_LENGTH)],
    file: UploadFile,
    service: ServiceDep,
    label: Annotated[
        str | None, Form(max_length=MAX_LABEL_LENGTH, description="default: from the file name, img_7.png")
    ] = None,
) -> FeedbackRecorded:
    """The true label of a digit prediction, with the image that was predicted: kept (bounded) so a
    fine-tune can learn from it (POST /train/feedback/)."""
    data = await file.read()
    issued = read_id(service, prediction_id)
    if issued.model != mnist.MODEL_NAME:
        raise HTTPException(
            422, f"images come with digit feedback; send {issued.model} feedback as JSON to POST /feedback/"
        )
    pixels = await run_in_threadpool(images.decode_digit, data, file.filename)  # UploadError: 413/422
    if input_digest(pixels) != issued.input_digest:
        raise HTTPException(
            422, f"{file.filename or 'the upload'!r} is not the image predicted with this prediction_id"
        )
    given = label if label is not None else images.label_from_filename(file.filename)
    return await run_in_threadpool(record, service, issued, checked_label(service, issued, given), pixels)
