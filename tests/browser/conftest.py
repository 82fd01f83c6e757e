"""The browser tests: headless Chromium (Debian's, at /usr/bin/chromium) driven by playwright, against
the Part 3 service running for real on a loopback port. playwright cannot download a browser here,
so without /usr/bin/chromium these tests skip, saying so (.ci/run installs it)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "part3"))

from part3_support import API_KEY, ServiceProcess, copy_store, wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), as .ci/run does")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def service(browser, seeded_store, tmp_path_factory):
    """The Part 3 service with a seeded store (no first training), as a real process."""
    models_dir = copy_store(seeded_store, tmp_path_factory.mktemp("browser") / "models")
    process = ServiceProcess(models_dir, env={"WORKSHOP_API_KEY": API_KEY})
    try:
        wait_until(
            lambda: (r := process.answers("/health/ready")) is not None and r.status_code == 200,
            "the Part 3 service is ready",
        )
        process.models_dir = models_dir
        yield process
    finally:
        process.stop()
