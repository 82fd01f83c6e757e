"""The error answers routes document in OpenAPI, so clients (and schema-based testers) know them.

Every refusal has the shape {"detail": ...}: a sentence naming the problem, or FastAPI's list of
validation errors for a parameter that does not parse.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException
from pydantic import BaseModel

from app.part3.feedback_backends import FEEDBACK_ERRORS
from app.part3.feedback_records import FeedbackStore


class Problem(BaseModel):
    detail: str


class ValidationProblem(BaseModel):
    detail: list[dict] | str  # FastAPI's validation errors, or one sentence for a bad upload


DESCRIPTIONS = {
    400: "the body (multipart or JSON) is malformed or holds more files than the service accepts",
    401: "the service has an API key and the X-API-Key header is missing or wrong",
    404: "no such job or model version",
    409: (
        "a conflict: the promotion gate rejected this version (activate it with force=true to serve it anyway),"
        " or this prediction already has feedback with another label"
    ),
    413: "the request body or one of its files is too large",
    422: "a parameter or an uploaded file is not acceptable; the detail names it and why",
    429: "too many training jobs are waiting; try again later",
    503: (
        "the model is not loaded yet (see /health/ready), or the training queue, the model store or the feedback "
        "store is unreachable"
    ),
}


def documented(*codes: int) -> dict[int | str, dict]:
    return {
        code: {"model": ValidationProblem if code == 422 else Problem, "description": DESCRIPTIONS[code]}
        for code in codes
    }


@contextmanager
def reaching(feedback: FeedbackStore) -> Iterator[None]:
    """The feedback store's connection errors as a 503 naming it, never a 500 (a retry is safe: the same
    feedback again changes nothing)."""
    try:
        yield
    except FEEDBACK_ERRORS as error:
        raise HTTPException(
            503,
            f"{feedback.where} is unreachable ({type(error).__name__}: {error}); try again later",
            headers={"Retry-After": "10"},
        ) from error
