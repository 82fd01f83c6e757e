"""Plain-words expectations for the exercise checks: each failure is one sentence a learner can act on.

    expect_status(response, 200, "GET /")   ->  "GET / should answer 200; it answered 501: not written
                                                 yet: TODO: return {"Hello": "World"}"

What the app answered is shown as the JSON a browser shows (`shown`), never as a Python repr: `null`,
not `None`; `{"a": 1}`, not `{'a': 1}`. A file that does not import says why as Python does, with
its line and a caret under the code (`code_error`).
"""

import json
import traceback
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.paths import PROJECT_ROOT


def shown(value: Any) -> str:
    """`value` as JSON, the way the learner sees an answer in the browser or /docs."""
    return json.dumps(value, ensure_ascii=False, default=str)


def listed(items: list[Any]) -> str:
    """"mm", "mm and cm", "mm, cm and in"."""
    words = [str(item) for item in items]
    return " and ".join([", ".join(words[:-1]), words[-1]]) if len(words) > 1 else "".join(words)


def _what_it_said(response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) and response.status_code >= 400 else None
    if response.status_code == 501 and isinstance(detail, str):
        return f"not written yet: {detail}"
    if isinstance(detail, list) and all(isinstance(error, dict) and "msg" in error for error in detail):
        return "; ".join(f"{error.get('loc', ['?'])[-1]}: {error['msg']}" for error in detail)
    text = detail if isinstance(detail, str) else (shown(body) if body is not None else response.text)
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
        raise AssertionError(f"{what} should answer {shown(expected)}; it answered {shown(body)}")
    return body


def expect(condition: bool, sentence: str) -> None:
    """`sentence` says what should be true and what was seen instead."""
    if not condition:
        raise AssertionError(sentence)


def _shown_path(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def _caret_line(code: str, start: int | None, end: int | None) -> str:
    """The learner's line, dedented, with a caret under the part Python points at (0-based columns)."""
    indent = len(code) - len(code.lstrip())
    line = code.strip()
    if start is None or start < indent:
        return f"    {line}"
    width = max(1, (end or start + 1) - start) if end and end > start else 1
    return f"    {line}\n    {' ' * (start - indent)}{'^' * min(width, len(line) - (start - indent))}"


def code_error(path: Path, error: BaseException) -> AssertionError:
    """Why the learner's file does not import, as Python says it: the error's type and message, the
    line, and a caret under the code ("…ex1_hello.py does not run: SyntaxError on line 21: …")."""
    path = Path(path)
    where, code = None, ""
    if isinstance(error, SyntaxError) and error.lineno is not None:
        where = error.lineno
        text = error.text or ""
        # SyntaxError's offsets are 1-based; 0 or less means Python points at no column.
        start = error.offset - 1 if error.offset and error.offset > 0 else None
        end = error.end_offset - 1 if error.end_offset and error.end_offset > 0 else None
        code = _caret_line(text.rstrip("\n"), start, end) if text.strip() else ""
        message = error.msg
    else:
        message = str(error)
        frames = [frame for frame in traceback.extract_tb(error.__traceback__) if Path(frame.filename) == path]
        if frames:
            frame = frames[-1]  # the learner's line that was running when it failed
            where = frame.lineno
            if frame.line:
                code = _caret_line(_source_line(path, frame.lineno) or frame.line, frame.colno, frame.end_colno)
    line = f" on line {where}" if where else ""
    sentence = f"{_shown_path(path)} does not run: {type(error).__name__}{line}: {message}"
    return AssertionError(sentence + (f"\n{code}" if code else ""))


def _source_line(path: Path, number: int | None) -> str | None:
    """The raw line (frame.line is stripped, which would move the caret)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    return lines[number - 1] if number and 0 < number <= len(lines) else None


class CheckClient(TestClient):
    """A TestClient whose crashes read as a sentence: "POST /train/ crashed the app (a 500 for the user):
    UnidentifiedImageError: ...", instead of a traceback into the learner's code. A lifespan that fails
    says so too: "the app did not start: its lifespan raised RuntimeError: ..."."""

    def __enter__(self):
        try:
            return super().__enter__()
        except AssertionError:
            raise
        except Exception as error:
            raise AssertionError(
                f"the app did not start: its lifespan raised {type(error).__name__}: {error}"
            ) from error

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
