"""The service's pages in a real browser: /upload/ trains on data/train_img.zip's 1,000 images and
follows the job to the end; /docs renders its operations with every non-loopback request blocked.

A screenshot of the finished upload page is saved as artifacts/upload-finished.png (git-ignored).
"""

import zipfile
from urllib.parse import urlsplit

import pytest
from part3_support import API_KEY, wait_until

from app.paths import DATA_DIR, PROJECT_ROOT
from app.store import ModelStore
from tests.polling import WAIT

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ARTIFACTS = PROJECT_ROOT / "artifacts"
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1000, "height": 1400})
    blocked: list[str] = []

    def only_loopback(route):
        if urlsplit(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", only_loopback)  # the network is cut to this machine for every page
    page = context.new_page()
    page.blocked = blocked
    yield page
    context.close()


@pytest.fixture(scope="module")
def training_images(tmp_path_factory) -> list[str]:
    """The 1,000 images of data/train_img.zip as files, as a learner would select them."""
    folder = tmp_path_factory.mktemp("train_img")
    with zipfile.ZipFile(DATA_DIR / "train_img.zip") as archive:
        names = [name for name in archive.namelist() if name.endswith(".png")]
        for name in names:
            (folder / name.rsplit("/", 1)[-1]).write_bytes(archive.read(name))
    return sorted(str(path) for path in folder.iterdir())


def test_upload_page_trains_on_1000_files_follows_the_job_and_the_new_version_serves(page, service, training_images):
    store = ModelStore("mnist", service.models_dir)
    before = store.latest()
    assert len(training_images) == 1000

    page.goto(f"{service.url}/upload/")
    page.set_input_files("#files", training_images)
    page.fill("#epochs", "1")
    page.fill("#api-key", API_KEY)
    page.click("#submit")

    page.wait_for_selector("#progress:not([hidden])", timeout=WAIT * 1000)
    status = page.locator("#status")
    seen: list[str] = []  # what the page shows, as it changes

    def finished() -> bool:
        shown = status.get_attribute("data-status")
        if shown and (not seen or seen[-1] != shown):
            seen.append(shown)
        return shown in ("succeeded", "failed")

    wait_until(finished, "the page shows the job's end", step=0.2)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "upload-finished.png"), full_page=True)

    assert status.get_attribute("data-status") == "succeeded", page.inner_text("body")
    assert "running" in seen and seen == sorted(seen, key=["queued", "running", "succeeded"].index), seen
    assert page.inner_text("#error") == ""
    job_id = page.inner_text("#job-id")
    job = service.get(f"/jobs/{job_id}").json()
    assert (job["status"], job["n_images"], job["parent"]) == ("succeeded", 1000, before)
    assert f"version {job['version']}" in status.inner_text()
    assert page.get_attribute("#bar", "value") == page.get_attribute("#bar", "max") == "1"
    assert store.latest() == job["version"]

    # The new version answers predictions (the service swaps to it on its own).
    def predicted_version():
        sample = open(training_images[0], "rb").read()
        return service.client.post("/predict/", files={"file": ("x.png", sample, "image/png")}).json()["version"]

    wait_until(lambda: predicted_version() == job["version"], "the new version serves")
    assert page.blocked == []


def test_docs_render_every_operation_with_the_network_cut_to_loopback(page, service):
    operations = sum(len(item) for item in service.get("/openapi.json").json()["paths"].values())
    page.goto(f"{service.url}/docs")
    page.wait_for_selector(".opblock", timeout=60_000)
    assert page.locator(".opblock").count() == operations
    assert "The workshop's model service" in page.inner_text(".information-container")
    assert page.blocked == [], f"the docs asked the internet for {page.blocked}"
