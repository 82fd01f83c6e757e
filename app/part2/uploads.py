"""Uploaded files -> digit arrays for the Part 2 routes, or an HTTP error that names the problem.

The checks themselves live in app.images (28x28 only: refused, never resized); this module only reads
an `UploadFile` with a size limit and turns an `UploadError` into an `HTTPException` with its status
(413 when something is too large, 422 otherwise). The routes that call these are plain `def`, so
FastAPI runs them in its threadpool and decoding a thousand images never blocks the event loop.
"""

import numpy as np
from fastapi import HTTPException, UploadFile

from app.images import (
    MAX_IMAGE_BYTES,
    MAX_ZIP_BYTES,
    LabelledImages,
    UploadError,
    decode_digit,
    is_zip,
    labelled_images,
    unzip_images,
)


def _http_error(error: UploadError) -> HTTPException:
    return HTTPException(status_code=error.status_code, detail=error.message)


def refuse_unless_digit(data: bytes, filename: str | None) -> None:
    """Raise the 4xx that names the problem unless `data` is one 28x28 image (the routes decode it)."""
    try:
        decode_digit(data, filename)
    except UploadError as error:
        raise _http_error(error) from None


def read_digit(file: UploadFile) -> np.ndarray:
    """The (28, 28) uint8 pixels of one uploaded image."""
    # One byte past the limit is enough to know the file is too large, without reading all of it.
    data = file.file.read(MAX_IMAGE_BYTES + 1)
    try:
        return decode_digit(data, file.filename)
    except UploadError as error:
        raise _http_error(error) from None


def _read_training_files(files: list[UploadFile]) -> list[tuple[str | None, bytes]]:
    payload: list[tuple[str | None, bytes]] = []
    total = 0
    for file in files:
        data = file.file.read(MAX_ZIP_BYTES + 1 - total)
        total += len(data)
        if total > MAX_ZIP_BYTES:
            raise HTTPException(status_code=413, detail=f"the upload is larger than {MAX_ZIP_BYTES >> 20} MiB in all")
        payload.append((file.filename, data))
    return payload


def read_training_images(files: list[UploadFile]) -> LabelledImages:
    """Images (or zips of images) labelled by their names, img123_7.png -> 7, all checked first."""
    try:
        return labelled_images(_read_training_files(files))
    except UploadError as error:
        raise _http_error(error) from None


def checked_training_files(files: list[UploadFile]) -> list[tuple[str, bytes]]:
    """The (file name, bytes) of every uploaded training image, zips opened, all checked first: one
    that is not a 28x28 image or has no one-digit label (img123_7.png) refuses the request with a 4xx
    naming it. The route decodes them itself (the workshop's lesson)."""
    payload = _read_training_files(files)
    try:
        labelled_images(payload)
        return [
            (str(name), content)
            for filename, data in payload
            for name, content in (unzip_images(data, filename) if is_zip(filename, data) else [(filename, data)])
        ]
    except UploadError as error:
        raise _http_error(error) from None
