"""One boto3 S3 client per process and endpoint, and botocore's failures turned into StoreUnavailable.

The endpoint, region and credentials are boto3's own (AWS_ENDPOINT_URL, AWS_DEFAULT_REGION,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, a profile, an instance role...), so MinIO, Cloudflare R2 and
AWS S3 all work without a setting of ours. Timeouts are short and retries few: an unreachable store
must fail in seconds, so that a service says why instead of hanging.
"""

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from app.paths import object_store_endpoint
from app.storage.store_errors import StoreUnavailable

# Error codes that are answers about an object, not about the store: the backend handles them.
OBJECT_ANSWERS = {"NoSuchKey", "404", "NotFound", "PreconditionFailed", "412", "ConditionalRequestConflict", "409"}

_clients: dict[tuple[int, str | None], Any] = {}
_clients_lock = threading.Lock()


def s3_client() -> Any:
    """The process's client for the configured endpoint (app.paths.object_store_endpoint; credentials and
    region as boto3 finds them). boto3 clients are thread-safe; a forked child makes its own (by pid)."""
    endpoint_url = object_store_endpoint()
    key = (os.getpid(), endpoint_url)
    with _clients_lock:
        if key not in _clients:
            import boto3
            from botocore.config import Config

            config = Config(
                connect_timeout=3,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
                # Path-style URLs (http://host/bucket/key) work with MinIO, R2 and S3 alike; virtual-hosted
                # ones need a DNS name per bucket, which a MinIO in compose does not have.
                s3={"addressing_style": "path"},
            )
            _clients[key] = boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)
        return _clients[key]


def endpoint_of(client: Any) -> str:
    """The endpoint's scheme, host and port, without any user information."""
    parts = urlsplit(client.meta.endpoint_url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def error_code(error: Exception) -> str | None:
    response = getattr(error, "response", None) or {}
    return str((response.get("Error") or {}).get("Code") or "") or None


@contextmanager
def reaching(location: str, client: Any) -> Iterator[None]:
    """Run S3 calls; a failure to reach or use the store becomes StoreUnavailable naming it. Answers
    about one object (no such key, a failed precondition) pass through as botocore's ClientError."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as error:
        code = error_code(error)
        if code in OBJECT_ANSWERS:
            raise
        raise StoreUnavailable(
            f"the model store {location} ({endpoint_of(client)}) refused the request: {code}"
        ) from error
    except BotoCoreError as error:
        raise StoreUnavailable(
            f"the model store {location} ({endpoint_of(client)}) cannot be reached: {error}"
        ) from error
