"""Read a small one-file upload without Starlette's general multipart parser.

Why: FastAPI hands every `UploadFile` route's body to Starlette's streaming parser (python-multipart,
one callback per header and chunk, a spooled file per part). For one 28x28 PNG that costs as much
as the model (bench/RESULTS.md, item 11). Here a body of the one shape that every client sends
for one file (curl, httpx, requests, a browser's FormData) is split with a few bytes operations instead:

    --BOUNDARY\\r\\n
    Content-Disposition: form-data; name="file"; filename="img_7.png"\\r\\n
    Content-Type: image/png\\r\\n
    \\r\\n
    <the file's bytes>\\r\\n
    --BOUNDARY--\\r\\n

Anything else (more parts, other parameters, escapes, chunked or larger bodies) goes to Starlette's
parser, unchanged. The result is the `FormData` that parser would have built (a test compares the
two on generated bodies), and FastAPI validates it as usual: the route keeps `file: UploadFile`, its
OpenAPI schema and its error answers.

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

SMALL_BODY_BYTES = 64 << 10  # a 28x28 PNG is under 1 KiB; larger bodies are streamed by Starlette

# RFC 2046 boundary characters, unquoted, and nothing after the boundary (no charset, no quotes).
CONTENT_TYPE = re.compile(rb"(?i:multipart/form-data); ?boundary=([0-9A-Za-z'()+_,\-./:=?]{1,70})")
# A quoted name and file name without quotes, backslashes or control characters inside.
DISPOSITION = re.compile(rb'(?i:form-data); name="([^"\\\x00-\x1f\x7f]+)"; filename="([^"\\\x00-\x1f\x7f]+)"')
HEADER = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+): ([\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)")
ALLOWED_HEADERS = {b"content-disposition", b"content-type"}


def one_file_form(content_type: bytes, body: bytes) -> FormData | None:
    """The form of a body holding exactly one file in the usual shape, else None (parse it in full)."""
    if not (match := CONTENT_TYPE.fullmatch(content_type)):
        return None
    delimiter = b"--" + match[1]
    opening = delimiter + b"\r\n"
    closing = b"\r\n" + delimiter + b"--"
    if not body.startswith(opening):
        return None
    end = body.rfind(closing)
    if end < 0 or body[end + len(closing) :] not in (b"", b"\r\n"):
        return None
    head_end = body.find(b"\r\n\r\n", len(opening), end + 2)
    if head_end < 0:
        return None
    content = body[head_end + 4 : end]
    if b"\r\n" + delimiter in content:  # a second part
        return None
    headers = []
    for line in body[len(opening) : head_end].split(b"\r\n"):
        if not (header := HEADER.fullmatch(line)) or (name := header[1].lower()) not in ALLOWED_HEADERS:
            return None
        headers.append((name, header[2]))
    dispositions = [value for name, value in headers if name == b"content-disposition"]
    if len(headers) != len({name for name, _ in headers}) or len(dispositions) != 1:
        return None
    if not (disposition := DISPOSITION.fullmatch(dispositions[0])):
        return None
    try:
        field, filename = disposition[1].decode(), disposition[2].decode()
    except UnicodeDecodeError:
        return None
    file = SpooledTemporaryFile(max_size=SMALL_BODY_BYTES)  # the request closes it, as Starlette's parser does
    file.write(content)
    file.seek(0)
    return FormData(
        [(field, UploadFile(cast(BinaryIO, file), size=len(content), filename=filename, headers=Headers(raw=headers)))]
    )


class SmallUploadRequest(Request):
    # Private API: overrides Starlette's `Request._get_form` and sets its `_form` cache
    # (tests/part3/test_small_uploads.py fails when either changes).
    async def _get_form(self, **limits: Any) -> FormData:
        # Starlette keeps the parsed form in `_form` and returns it from then on (and closes its
        # files with the request); the limits cannot bite on one file.
        if self._form is None and self._is_small():
            self._form = one_file_form(self.headers.get("content-type", "").encode("latin-1"), await self.body())
        return await super()._get_form(**limits)

    def _is_small(self) -> bool:
        length = self.headers.get("content-length", "")
        return length.isdigit() and int(length) <= SMALL_BODY_BYTES


class SmallUploadRoute(APIRoute):
    """A route whose one-file uploads skip Starlette's general multipart parser (see above)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def small_upload_handler(request: Request) -> Response:
            return await handler(SmallUploadRequest(request.scope, request.receive))

        return small_upload_handler
