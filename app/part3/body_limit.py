"""Refuse a request body larger than WORKSHOP_MAX_UPLOAD_BYTES with a 413 that names the limit.

A body whose Content-Length is too large is refused before a byte of it is read. A body sent without
one (chunked) is counted as it arrives and refused as soon as it passes the limit, so an upload
never fills memory or disk beyond it. (FastAPI's own `max_body_size` does the same but answers a
bare plain-text "Content Too Large"; this keeps the JSON shape of every other refusal.)
"""

import json

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def too_large_message(limit: int) -> str:
    return f"the request body is larger than the {limit} bytes this service accepts (WORKSHOP_MAX_UPLOAD_BYTES)"


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        self.app = app
        self.max_body_size = max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_size:
            await self.refuse(send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_size:
                # Raised inside the app: FastAPI passes an HTTPException from body parsing through
                # to its handler, which answers {"detail": ...} with this status.
                raise HTTPException(status_code=413, detail=too_large_message(self.max_body_size))
            return message

        await self.app(scope, counting_receive, send)

    async def refuse(self, send: Send) -> None:
        body = json.dumps({"detail": too_large_message(self.max_body_size)}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
