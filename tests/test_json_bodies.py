"""No JSON body answers 500: Python's parser reads NaN, Infinity, -Infinity and 1e999 as non-finite
floats, and a 422 that echoed one could not be encoded (issue 22). Every route that takes JSON, found
in each app's OpenAPI schema (a new route is covered without editing this file), gets bodies with
such values in each field and as the whole body: each answer is a 4xx that strict JSON parses (a 422
when the value is in a field that holds no number), naming the problem."""

import glob
import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.paths import PROJECT_ROOT
from tests.fresh_modules import import_fresh, slow_if_it_imports_keras

NON_FINITE = ("NaN", "Infinity", "-Infinity", "1e999", "-1e999")
APP_FILES = sorted(
    str(path.relative_to(PROJECT_ROOT))
    for pattern in ("app/part1/main.py", "app/part2/main.py", "solutions/part1/*.py", "solutions/part2/*.py")
    for path in map(PROJECT_ROOT.joinpath, glob.glob(pattern, root_dir=PROJECT_ROOT))
)


def part3_app(models_dir) -> FastAPI:
    from app.part3.main import create_app
    from app.part3.settings import Settings

    return create_app(Settings(models_dir=models_dir))


def strict_json(text: str):
    def refuse(token):
        raise ValueError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


def resolve(schema: dict, openapi: dict) -> dict:
    while "$ref" in schema:
        schema = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def holds_a_number(schema: dict, openapi: dict) -> bool:
    schema = resolve(schema, openapi)
    options = schema.get("anyOf") or schema.get("oneOf") or [schema]
    return any(resolve(option, openapi).get("type") == "number" for option in options)


SAMPLES = {"string": '"x"', "integer": "1", "number": "1.5", "boolean": "true", "array": "[]", "object": "{}"}


def sample(schema: dict, openapi: dict) -> str:
    schema = resolve(schema, openapi)
    options = schema.get("anyOf") or schema.get("oneOf") or [schema]
    return SAMPLES.get(resolve(options[0], openapi).get("type", "string"), '"x"')


def hostile_bodies(operation: dict, openapi: dict) -> list[tuple[str, bool]]:
    """(body, must be 422) pairs: each non-finite value as the whole body, in a list, and in each field."""
    schema = resolve(operation["requestBody"]["content"]["application/json"]["schema"], openapi)
    fields = schema.get("properties", {})
    bodies = [(value, True) for value in NON_FINITE] + [(f"[{value}]", True) for value in NON_FINITE]
    for field, field_schema in fields.items():
        for value in NON_FINITE:
            members = [f'"{name}": {value if name == field else sample(fields[name], openapi)}' for name in fields]
            bodies.append(("{" + ", ".join(members) + "}", not holds_a_number(field_schema, openapi)))
        bodies.append(("{" + ", ".join(f'"{name}": NaN' for name in fields) + "}", True))
    return bodies


def json_operations(app: FastAPI) -> list[tuple[str, str, dict, dict]]:
    openapi = app.openapi()
    return [
        (method.upper(), path, operation, openapi)
        for path, item in openapi["paths"].items()
        for method, operation in item.items()
        if "application/json" in (operation.get("requestBody") or {}).get("content", {})
    ]


def check_every_json_route(app: FastAPI) -> list[str]:
    """Every JSON route refuses the bodies with a 4xx that strict JSON parses: a 422 in FastAPI's shape,
    or on the Open Inference Protocol's routes (/v2/...) the protocol's 400 {"error": ...}, for a model
    that exists (they parse the tensors themselves, after finding the model)."""
    from app import registry

    client = TestClient(app, raise_server_exceptions=False)  # no lifespan: validation needs no model
    checked = []
    for method, path, operation, openapi in json_operations(app):
        protocol = path.startswith("/v2/")
        url = path.replace("{name}", next(iter(registry.models()))) if protocol else path
        url = url.replace("{", "").replace("}", "")  # any other path parameter: the body is refused first
        for body, unprocessable in hostile_bodies(operation, openapi):
            response = client.request(method, url, content=body, headers={"Content-Type": "application/json"})
            what = f"{method} {path} with {body}: {response.status_code} {response.text[:200]}"
            assert 400 <= response.status_code < 500, what
            if protocol:
                assert response.status_code in (400, 404) and strict_json(response.text)["error"], what
            else:
                assert not unprocessable or response.status_code == 422, what
                assert strict_json(response.text)["detail"], what
            checked.append(f"{method} {path} {body}")
    return checked


def test_part3_answers_422_to_non_finite_numbers_in_every_json_body(tmp_path):
    checked = check_every_json_route(part3_app(tmp_path / "models"))
    assert any(entry.startswith("POST /feedback/ ") for entry in checked), "no JSON route found: the test saw nothing"
    assert any(entry.startswith("POST /v2/models/{name}/infer ") for entry in checked)


def test_the_issue_s_request_answers_422_naming_the_field(tmp_path):
    client = TestClient(part3_app(tmp_path / "models"), raise_server_exceptions=False)
    for value in ("1e999", "NaN", "-Infinity"):
        body = f'{{"prediction_id": "x", "label": {value}}}'
        response = client.post("/feedback/", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 422, response.text
        assert {tuple(error["loc"][:2]) for error in strict_json(response.text)["detail"]} == {("body", "label")}


@pytest.mark.parametrize("path", [slow_if_it_imports_keras(path, path, id=path) for path in APP_FILES])
def test_parts_1_and_2_never_answer_500_to_a_json_body(path, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKSHOP_MODELS_DIR", str(tmp_path / "models"))
    check_every_json_route(import_fresh(PROJECT_ROOT / path).app)  # today none takes JSON: any new one is checked
