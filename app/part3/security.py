"""The API key that guards the routes changing models (/train/, /retrain/, activate).

Set WORKSHOP_API_KEY to require it; clients send it in the X-API-Key header (in /docs: the
"Authorize" button). It is compared in constant time, so response times do not reveal how much of a
guess was right, and it is never logged: it lives in a SecretStr and the trainer's environment
does not get it.
"""

import hmac
from typing import Annotated

from fastapi import HTTPException, Security, status
from fastapi.security import APIKeyHeader

from app.part3.service import ServiceDep

API_KEY_HEADER = "X-API-Key"
api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,  # we answer 401 ourselves, and only when a key is configured
    description="required by the routes that change models when the service has WORKSHOP_API_KEY set",
)


def require_api_key(service: ServiceDep, given: Annotated[str | None, Security(api_key_header)]) -> None:
    expected = service.settings.api_key
    if expected is None:
        return
    if given is None or not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail=f"this route changes models: send the service's API key in the {API_KEY_HEADER} header",
            headers={"WWW-Authenticate": "APIKey"},
        )
