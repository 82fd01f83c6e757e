"""GET /upload/: a page to send many images (or a zip) for training and watch the job live."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

PAGE = (Path(__file__).resolve().parent.parent / "pages" / "upload.html").read_text()
router = APIRouter()


@router.get("/upload/", response_class=HTMLResponse, include_in_schema=False)
def upload_page() -> str:
    return PAGE
