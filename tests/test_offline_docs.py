"""/docs and /redoc work with no internet in every app of the workshop (app/offline_docs.py): each
page references only assets the app serves itself, and those are the real Swagger UI and ReDoc.
(tests/browser renders Part 3's /docs with the network cut.)"""

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.part3.main import create_app
from app.part3.settings import Settings
from app.paths import PROJECT_ROOT
from tests.fresh_modules import import_fresh, slow_if_it_imports_keras
from workshop import exercises

SOLUTIONS = sorted(
    path.relative_to(PROJECT_ROOT).as_posix()
    for pattern in ("solutions/part[12]/*.py", "app/part[12]/main.py")
    for path in PROJECT_ROOT.glob(pattern)
)
# The starters as `workshop generate` writes them, into a temporary folder: exercises/ is the learner's,
# and what they leave there must not change this test (tests/conftest.py fails a test that reads it).
STARTERS = sorted(f"starter:{path.as_posix()}" for path in exercises.expected_exercises() if path.suffix == ".py")
APP_FILES = [*STARTERS, *SOLUTIONS]
PART3 = "app/part3/main.py"


def source_of(name: str) -> Path:
    """The file whose imports the app has: a starter imports what its solution does."""
    return exercises.SOLUTIONS / name.removeprefix("starter:") if name.startswith("starter:") else PROJECT_ROOT / name


def load_app(name: str, tmp_path_factory):
    if name == PART3:
        return create_app(Settings(models_dir=tmp_path_factory.mktemp("docs") / "models"))
    if name.startswith("starter:"):
        relative = Path(name.removeprefix("starter:"))
        starter = tmp_path_factory.mktemp("starters") / relative
        starter.parent.mkdir(parents=True, exist_ok=True)
        starter.write_text(exercises.expected_exercises()[relative])
        return import_fresh(starter, prefix="offline_docs").app
    return import_fresh(PROJECT_ROOT / name, prefix="offline_docs").app


# An app file that imports Keras at its top would cost the quick loop a Keras import: slow.
PARAMS = [slow_if_it_imports_keras(source_of(name), name, id=name) for name in [*APP_FILES, PART3]]


@pytest.fixture(scope="module", params=PARAMS)
def client(request, tmp_path_factory):
    """The app, without its lifespan: the docs need no model."""
    return TestClient(load_app(request.param, tmp_path_factory))


def test_every_exercise_and_solution_app_is_covered():
    assert len(APP_FILES) == 2 + 2 * len(list(PROJECT_ROOT.glob("solutions/part[12]/*.py"))) >= 22


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_load_only_assets_the_app_serves(client, page):
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    references = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    references += re.findall(r"""(?:url|openapi_url|spec-url)\s*[:=]\s*['"]([^'"]+)['"]""", html)
    assert references, html
    assert not [ref for ref in references if re.match(r"(https?:)?//", ref)], references
    assert not re.search(r"""["'](https?:)?//(cdn|fonts|unpkg)""", html)
    for reference in references:
        asset = client.get(reference)
        assert asset.status_code == 200, reference
        assert len(asset.content) > 0
    own_pages = [getattr(route, "path", None) for route in client.app.router.routes]
    assert page not in own_pages, "FastAPI's own page (from a CDN) must be gone; ours comes from an included router"


def test_redoc_keeps_the_browser_on_this_app(client):
    # ReDoc's bundle asks a CDN for a logo; the page's policy refuses anything not from here.
    policy = client.get("/redoc").headers["content-security-policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data:" in policy
    assert client.get("/favicon.ico").headers["content-type"] == "image/png"


def test_docs_assets_are_the_real_libraries(client):
    assert "SwaggerUIBundle" in client.get("/docs-assets/swagger-ui/swagger-ui-bundle.js").text
    assert "Redoc" in client.get("/docs-assets/redoc/redoc.standalone.js").text
    assert client.get("/docs-assets/swagger-ui/swagger-ui.css").headers["content-type"].startswith("text/css")
    assert client.get("/docs/oauth2-redirect").status_code == 200
