"""The Part 3 service against its own OpenAPI schema, with schemathesis: every operation, all checks.

The service runs for real (`fastapi run` on a loopback port) with an API key the generated requests
do not know, so the model-changing routes answer 401 rather than queueing hundreds of trainings;
one test sends the key too, so their answers to generated bodies are checked as well, without any
body schemathesis makes being a valid training set (it cannot name files img_7.png and fill them
with PNG bytes), hence without a training. Examples are bounded per operation.

One check is left out, for the operations that take files only: `positive_data_acceptance`
expects any body that fits the schema to be accepted, but no OpenAPI schema can say "a 28x28
image" or "named img123_7.png", so schema-valid bytes get the documented 422 naming the file.
Every other check (no 5xx, documented status codes, response bodies and headers matching the
schema, Allow headers, auth...) runs on every operation.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from app.part3.main import create_app
from app.part3.settings import Settings
from app.store import ModelStore
from part3_support import API_KEY, ServiceProcess, wait_until

pytestmark = pytest.mark.slow
EXAMPLES = settings(
    max_examples=25,
    deadline=None,  # other suites share the two cores: slowness is not what this tests
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same examples every run, so a failure reproduces
)


@pytest.fixture(scope="module")
def service(models_dir):
    process = ServiceProcess(models_dir, env={"WORKSHOP_API_KEY": API_KEY})
    try:
        wait_until(lambda: (r := process.answers("/health/ready")) is not None and r.status_code == 200,
                   "the Part 3 service is ready")
        yield process
    finally:
        process.stop()


# The schema as the code declares it, loaded at collection (schemathesis' lazy fixture loader does
# not work with this pytest); the first test checks the running service serves exactly this one.
OPENAPI = create_app(Settings(api_key=API_KEY)).openapi()
schema = schemathesis.openapi.from_dict(OPENAPI)


def test_the_service_serves_the_schema_tested_here(service):
    assert service.get("/openapi.json").json() == OPENAPI


def excluded_for(case) -> list:
    body = case.operation.definition.raw.get("requestBody", {}).get("content", {})
    return [schemathesis.checks.positive_data_acceptance] if "multipart/form-data" in body else []


@schema.parametrize()
@EXAMPLES
def test_no_server_error_and_every_answer_matches_the_schema(case, service):
    case.call_and_validate(base_url=service.url, excluded_checks=excluded_for(case))


@schema.include(method="POST").parametrize()
@EXAMPLES
def test_model_changing_routes_with_the_key_still_answer_as_documented(case, service, models_dir):
    before = ModelStore("mnist", models_dir).versions()
    case.call_and_validate(base_url=service.url, headers={"X-API-Key": API_KEY}, excluded_checks=excluded_for(case))
    assert ModelStore("mnist", models_dir).versions() == before
