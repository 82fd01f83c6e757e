"""Files the service ships: its HTML pages (the docs assets are app/docs_assets/, see app/offline_docs.py)."""

from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGES_DIR = HERE / "pages"
