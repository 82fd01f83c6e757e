"""GET /upload/: a page to send many images (or a zip) for training and watch the job live."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

PAGES_DIR = Path(__file__).resolve().parents[1] / "pages"  # app/part3/pages: the HTML the service ships
PAGE = (PAGES_DIR / "upload.html").read_text()
router = APIRouter()


@router.get("/upload/", response_class=HTMLResponse, include_in_schema=False)
def upload_page() -> str:
    return PAGE
