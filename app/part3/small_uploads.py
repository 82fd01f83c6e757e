"""Read small file uploads without Starlette's general multipart parser.

Why: FastAPI hands every `UploadFile` route's body to Starlette's streaming parser (python-multipart,
one callback per header and chunk, a spooled file per part). For one 28x28 PNG that costs as much
as the model, and for a batch of 256 it costs more than decoding and predicting them all
(bench/RESULTS.md, item 11). Here a body of the one shape that every client sends for files (curl,
httpx, requests, a browser's FormData) is split with a few bytes operations instead:

    --BOUNDARY\\r\\n
    Content-Disposition: form-data; name="file"; filename="img_7.png"\\r\\n
    Content-Type: image/png\\r\\n
    \\r\\n
    <the file's bytes>\\r\\n
    --BOUNDARY\\r\\n
    ... (the next file, in the same shape)
    --BOUNDARY--\\r\\n

Anything else (a field that is not a file, escapes, more files than Starlette allows, chunked or
larger bodies) goes to Starlette's parser, unchanged. The result is the `FormData` that parser would
have built (a test compares the two on generated bodies), and FastAPI validates it as usual: the
routes keep `file: UploadFile` / `files: list[UploadFile]`, their OpenAPI schema and their errors.

It is wired as FastAPI's documented extension point, a custom request class behind a custom
`APIRoute` ("Custom Request and APIRoute class" in FastAPI's docs).
"""

import re
from collections.abc import Callable, Coroutine
from tempfile import SpooledTemporaryFile
from typing import Any, BinaryIO, cast

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.datastructures import FormData, Headers, UploadFile

# A 28x28 PNG is under 1 KiB, so this holds a batch of a thousand; larger bodies are streamed by Starlette.
SMALL_BODY_BYTES = 1 << 20
MAX_FILES = 1000  # Starlette's default `max_files`: beyond it, its parser gives the refusal

# RFC 2046 boundary characters, unquoted, and nothing after the boundary (no charset, no quotes).
CONTENT_TYPE = re.compile(rb"(?i:multipart/form-data); ?boundary=([0-9A-Za-z'()+_,\-./:=?]{1,70})")
# A quoted name and file name without quotes, backslashes or control characters inside.
DISPOSITION = re.compile(rb'(?i:form-data); name="([^"\\\x00-\x1f\x7f]+)"; filename="([^"\\\x00-\x1f\x7f]+)"')
HEADER = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+): ([\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)")
ALLOWED_HEADERS = {b"content-disposition", b"content-type"}


def files_form(content_type: bytes, body: bytes, max_files: int = MAX_FILES) -> FormData | None:
    """The form of a body whose every part is a file in the usual shape, else None (parse it in full)."""
    if not (match := CONTENT_TYPE.fullmatch(content_type)):
        return None
    delimiter = b"--" + match[1]
    opening = delimiter + b"\r\n"
    closing = b"\r\n" + delimiter + b"--"
    if not body.startswith(opening):
        return None
    end = body.rfind(closing)
    if end < len(opening) or body[end + len(closing) :] not in (b"", b"\r\n"):
        return None
    parts = body[len(opening) : end].split(b"\r\n" + opening)
    if len(parts) > max_files:
        return None
    files = [file for part in parts if (file := _file_part(part, delimiter)) is not None]
    if len(files) < len(parts):
        return None
    # Every part is in the usual shape: only now is a file made for each (the request closes them).
    form: list[tuple[str, str | UploadFile]] = [
        (field, _upload_file(filename, headers, content)) for field, filename, headers, content in files
    ]
    return FormData(form)


FilePart = tuple[str, str, list[tuple[bytes, bytes]], bytes]  # field, file name, headers, content


def _file_part(part: bytes, delimiter: bytes) -> FilePart | None:
    """One part's field name, file name, headers and content, or None when it is not a file in the usual shape."""
    head_end = part.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    content = part[head_end + 4 :]
    if b"\r\n" + delimiter in content:  # a delimiter line this split did not take (e.g. with padding)
        return None
    headers = []
    for line in part[:head_end].split(b"\r\n"):
        if not (header := HEADER.fullmatch(line)) or (name := header[1].lower()) not in ALLOWED_HEADERS:
            return None
        headers.append((name, header[2]))
    dispositions = [value for name, value in headers if name == b"content-disposition"]
    if len(headers) != len({name for name, _ in headers}) or len(dispositions) != 1:
        return None
    if not (disposition := DISPOSITION.fullmatch(dispositions[0])):
        return None
    try:
        return disposition[1].decode(), disposition[2].decode(), headers, content
    except UnicodeDecodeError:
        return None


def _upload_file(filename: str, headers: list[tuple[bytes, bytes]], content: bytes) -> UploadFile:
    file = SpooledTemporaryFile(max_size=SMALL_BODY_BYTES)  # as Starlette's parser spools each file
    file.write(content)
    file.seek(0)
    return UploadFile(cast(BinaryIO, file), size=len(content), filename=filename, headers=Headers(raw=headers))


class SmallUploadRequest(Request):
    # Private API: overrides Starlette's `Request._get_form` and sets its `_form` cache
    # (tests/part3/test_small_uploads.py fails when either changes).
    async def _get_form(self, **limits: Any) -> FormData:
        # Starlette keeps the parsed form in `_form` and returns it from then on (and closes its
        # files with the request). Of its limits only `max_files` can bite on files alone.
        if self._form is None and self._is_small():
            max_files = limits.get("max_files", MAX_FILES)
            content_type = self.headers.get("content-type", "").encode("latin-1")
            self._form = files_form(content_type, await self.body(), max_files)
        return await super()._get_form(**limits)

    def _is_small(self) -> bool:
        length = self.headers.get("content-length", "")
        return length.isdigit() and int(length) <= SMALL_BODY_BYTES


class SmallUploadRoute(APIRoute):
    """A route whose file uploads skip Starlette's general multipart parser (see above)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def small_upload_handler(request: Request) -> Response:
            return await handler(SmallUploadRequest(request.scope, request.receive))

        return small_upload_handler
