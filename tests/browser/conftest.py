"""The browser tests: headless Chromium (Debian's, at /usr/bin/chromium) driven by playwright, against
the Part 3 service running for real on a loopback port (tests/conftest.py's `real_service`, shared
with the reliability suite). playwright cannot download a browser here, so without /usr/bin/chromium
these tests skip, saying so (.ci/run installs it)."""

from pathlib import Path

import pytest

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
def service(browser, real_service):
    """The shared real service, asked for after the browser: without Chromium it is not started here."""
    return real_service
