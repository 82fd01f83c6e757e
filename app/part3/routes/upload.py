"""GET /upload/: a page to send many images (or a zip) for training and watch the job live."""

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from app.part3.paths import PAGES_DIR

PAGE = (PAGES_DIR / "upload.html").read_text()
router = APIRouter()


@router.get("/upload/", response_class=HTMLResponse, include_in_schema=False)
def upload_page() -> str:
    return PAGE
