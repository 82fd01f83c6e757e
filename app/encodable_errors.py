"""422 answers that JSON can always encode, whatever the refused body held.

Python's JSON parser reads `NaN`, `Infinity`, `-Infinity` and numbers too large for a float (`1e999`)
as non-finite floats. When validation refuses such a body, FastAPI's 422 answer echoes the input, and
encoding it fails (JSON has no such numbers), so the client got a 500 instead of the 422. Here every
non-finite float in the error list is written as the token the client sent ("NaN", "Infinity",
"-Infinity"), as text.

    from app.encodable_errors import answer_validation_errors_encodably
    answer_validation_errors_encodably(app)
"""

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


def encodable(value: Any) -> Any:
    """`value` (already JSON-like) with each non-finite float replaced by its JSON-ish token as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: encodable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [encodable(item) for item in value]
    return value


def answer_validation_errors_encodably(app: FastAPI) -> None:
    """FastAPI's own 422 answer (`{"detail": [...errors]}`), made encodable."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": encodable(jsonable_encoder(error.errors()))}, status_code=422)
