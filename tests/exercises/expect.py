"""Plain-words expectations for the exercise checks: each failure is one sentence a learner can act on.

    expect_status(response, 200, "GET /")   ->  "GET / should answer 200; it answered 501: not written
                                                 yet: TODO: return {"Hello": "World"}"
"""

from typing import Any

from fastapi.testclient import TestClient


def _what_it_said(response) -> str:
    try:
        detail = response.json().get("detail") if response.status_code in (501, 500, 422, 413, 503) else None
    except ValueError:
        detail = None
    if response.status_code == 501 and isinstance(detail, str):
        return f"not written yet: {detail}"
    if isinstance(detail, list) and all(isinstance(error, dict) and "msg" in error for error in detail):
        return "; ".join(f"{error.get('loc', ['?'])[-1]}: {error['msg']}" for error in detail)
    text = detail if isinstance(detail, str) else response.text
    return text if len(text) <= 300 else text[:300] + "…"


def expect_status(response, status: int, what: str) -> None:
    """`what` (e.g. "GET /predict/?bill=-3") should answer `status`."""
    if response.status_code != status:
        raise AssertionError(f"{what} should answer {status}; it answered {response.status_code}: {_what_it_said(response)}")


def expect_json(response, expected: Any, what: str) -> Any:
    """`what` should answer 200 with exactly `expected` as its JSON body."""
    expect_status(response, 200, what)
    body = response.json()
    if body != expected:
        raise AssertionError(f"{what} should answer {expected!r}; it answered {body!r}")
    return body


def expect(condition: bool, sentence: str) -> None:
    """`sentence` says what should be true and what was seen instead."""
    if not condition:
        raise AssertionError(sentence)


class CheckClient(TestClient):
    """A TestClient whose crashes read as a sentence: "POST /train/ crashed the app (a 500 for the user):
    UnidentifiedImageError: ...", instead of a traceback into the learner's code."""

    def request(self, method, url, *args, **kwargs):
        try:
            return super().request(method, url, *args, **kwargs)
        except AssertionError:
            raise
        except Exception as error:
            raise AssertionError(
                f"{method} {url} crashed the app (a 500 for the user, or a failed background task): "
                f"{type(error).__name__}: {error}"
            ) from error
