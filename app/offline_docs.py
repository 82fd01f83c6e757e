"""/docs and /redoc that work with no internet, for every app of the workshop.

FastAPI's own /docs and /redoc pages load Swagger UI and ReDoc from a CDN, so offline they stay blank.
`serve_docs_offline(app)` swaps them for the same pages with their JavaScript and CSS served by the app
itself from app/docs_assets/ (FastAPI's "Custom Docs UI Static Assets (Self-Hosting)"; the vendored
versions and licences are in the README there).

    app = FastAPI()
    serve_docs_offline(app)
"""

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.paths import APP_DIR

ASSETS_DIR = APP_DIR / "docs_assets"
ASSETS_URL = "/docs-assets"
DOCS_URL, OAUTH2_REDIRECT_URL, REDOC_URL = "/docs", "/docs/oauth2-redirect", "/redoc"
FAVICON = ASSETS_DIR / "swagger-ui" / "favicon-32x32.png"
# ReDoc's bundle asks a CDN for its vendor's logo. This policy keeps the browser on this app (the
# refused logo hides itself); the inline script and styles are the page's own, and ReDoc runs its
# search in a blob: worker. Swagger UI's page asks for nothing elsewhere and gets no policy, so that
# browser tests may evaluate scripts in it.
SAME_ORIGIN_ONLY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
    ]
)
router = APIRouter(include_in_schema=False)


def serve_docs_offline(app: FastAPI) -> None:
    """Replace FastAPI's CDN-backed /docs and /redoc with pages whose assets this app serves."""
    cdn_pages = {app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url} - {None}
    app.router.routes[:] = [route for route in app.router.routes if getattr(route, "path", None) not in cdn_pages]
    app.include_router(router)
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")


@router.get(DOCS_URL)
def swagger_ui(request: Request) -> HTMLResponse:
    app = request.app
    return get_swagger_ui_html(
        openapi_url=app.openapi_url,
        title=f"{app.title} - Swagger UI",
        oauth2_redirect_url=OAUTH2_REDIRECT_URL,
        swagger_js_url=f"{ASSETS_URL}/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_URL}/swagger-ui/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_URL}/swagger-ui/favicon-32x32.png",
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from swagger.io
    )


@router.get(OAUTH2_REDIRECT_URL)
def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get(REDOC_URL)
def redoc(request: Request) -> HTMLResponse:
    app = request.app
    page = get_redoc_html(
        openapi_url=app.openapi_url,
        title=f"{app.title} - ReDoc",
        redoc_js_url=f"{ASSETS_URL}/redoc/redoc.standalone.js",
        redoc_favicon_url=f"{ASSETS_URL}/swagger-ui/favicon-32x32.png",
        with_google_fonts=False,
    )
    page.headers["Content-Security-Policy"] = SAME_ORIGIN_ONLY
    return page


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    return FileResponse(FAVICON)
