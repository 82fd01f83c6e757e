"""A corpus of bad requests, each with the answer every service documents for it.

Each `BadRequest` names a route (method + path template); a test sends it to every app that has that
route and asserts the status and a keyword of the message (the `detail` string, or the `loc` and
`msg` of each validation error, so an echoed input never counts as naming the problem). Bodies are
built lazily, once, and kept: some are large (a 50 MB upload, 5,000 files).

The statuses, as the services document them (app/images.py, app/models/penguins/api.py, app/part3):
413 for something too large, 422 for anything else wrong in a request, 400 for a body that is not
valid multipart (Starlette's own answer), 404 for an unknown job or model version.
"""

import io
import json
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from app.images import MAX_FILES, encode_png
from app.paths import DATA_DIR

HUNDRED_KB = 100 * 1024
FIFTY_MB = 50 << 20
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

BOUNDS = frozenset({"bounds"})  # Part 1's exercise 3 on: lengths > 0 and below a maximum
UNITS = frozenset({"bounds", "units"})  # Part 1's extra challenge on: "12cm"
JOBS = frozenset({"epochs", "retrain uploads"})  # Part 3: /train/ takes epochs, /retrain/ takes images
ALL = UNITS | JOBS
Files = list[tuple[str, tuple[str | None, bytes, str]]]


# -- bodies -------------------------------------------------------------------------------------
def digit_png(digit: int = 3) -> bytes:
    return (DATA_DIR / "test_image" / f"test_img{digit}.png").read_bytes()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@cache
def png_bomb(side: int = 10_000) -> bytes:
    """A complete, valid 10,000x10,000 greyscale PNG of ~100 KB: 100 MB once decoded."""
    row = b"\0" * (side + 1)  # filter byte + pixels
    compressor = zlib.compressobj(9)
    stream = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", stream) + _chunk(b"IEND", b"")


def small_png(width: int, height: int) -> bytes:
    return encode_png(np.zeros((height, width), np.uint8))


def png_header_claiming(width: int, height: int) -> bytes:
    """Only a PNG signature and a header claiming a huge size: what a bomb's first bytes say."""
    return PNG_SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))


def zip_of(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries:
            archive.writestr(name, content)
    return buffer.getvalue()


@cache
def zip_bomb() -> bytes:
    """~100 KB that inflates to 100 MB: one 'image' of zeros."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("img000_1.png", "w", force_zip64=True) as entry:
            block = b"\0" * (1 << 20)
            for _ in range(100):
                entry.write(block)
    return buffer.getvalue()


def upload(name: str | None, content: bytes, kind: str = "image/png", field_name: str = "file") -> Files:
    return [(field_name, (name, content, kind))]


def uploads(name: str | None, content: bytes, kind: str = "image/png") -> Files:
    return upload(name, content, kind, "files")


# -- the corpus -------------------------------------------------------------------------------
@dataclass(frozen=True)
class BadRequest:
    name: str
    method: str
    route: str  # the route template the app must have for the case to apply
    status: int
    keyword: str  # a word of the message naming the problem (case-insensitive)
    path: str = ""  # the concrete path; the route template when empty
    params: dict[str, str] | None = None
    files: Callable[[], Files] | None = None
    data: dict[str, str] | None = None
    content: Callable[[], bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    raw_query: Callable[[], bytes] | None = None  # too long for httpx's URL: sent below the client
    promises: frozenset[str] = frozenset()  # what an app must promise for the case to apply (see ALL)
    over_http: tuple[int, str] | None = None  # a real server's answer, when its HTTP layer answers first
    needs_key: bool = False  # a model-changing route: send the service's API key when it has one

    @property
    def target(self) -> str:
        return self.path or self.route


def _penguin(name: str, bill: str, flipper: str, keyword: str, status: int = 422) -> BadRequest:
    return BadRequest(
        name, "GET", "/predict/", status, keyword, params={"bill": bill, "flipper": flipper}, promises=BOUNDS
    )


def _digit(name: str, files: Callable[[], Files], status: int, keyword: str) -> BadRequest:
    return BadRequest(name, "POST", "/predict/", status, keyword, files=files)


def _train(name: str, files: Callable[[], Files], status: int, keyword: str, **extra) -> BadRequest:
    return BadRequest(name, "POST", "/train/", status, keyword, files=files, needs_key=True, **extra)


@cache
def _five_thousand_files() -> Files:
    png = digit_png()
    return [("files", (f"img{i:04d}_3.png", png, "image/png")) for i in range(5000)]


@cache
def _fifty_megabytes() -> bytes:
    return digit_png() + b"\0" * (FIFTY_MB - len(digit_png()))


def _truncated_png() -> bytes:
    png = digit_png()
    return png[: len(png) // 2]


def _bad_crc_png() -> bytes:
    png = bytearray(digit_png())
    png[30] ^= 0xFF  # inside the IHDR's checksum: the header no longer matches it
    return bytes(png)


CORPUS: list[BadRequest] = [
    # penguins: numbers, units, sizes
    _penguin("bill is nan", "nan", "195", "bill"),
    _penguin("flipper is inf", "40.3", "inf", "flipper"),
    _penguin("bill is -inf", "-inf", "195", "bill"),
    _penguin("bill is huge", "1e308", "195", "bill"),
    _penguin("bill overflows to infinity", "1e400", "195", "bill"),
    _penguin("flipper is negative", "40.3", "-195", "flipper"),
    _penguin("bill is zero", "0", "195", "bill"),
    _penguin("flipper is empty", "40.3", "", "flipper"),
    _penguin("bill is not a number", "forty", "195", "bill"),
    _penguin("flipper has a misplaced decimal point", "40.3", "1950", "flipper"),
    BadRequest("flipper is missing", "GET", "/predict/", 422, "flipper", params={"bill": "40.3"}),
    BadRequest(
        "unit typo", "GET", "/predict/", 422, "unit", params={"bill": "40.3mn", "flipper": "195"}, promises=UNITS
    ),
    BadRequest(
        "unit typo cms", "GET", "/predict/", 422, "unit", params={"bill": "40.3", "flipper": "19.5cms"}, promises=UNITS
    ),
    BadRequest(
        "100 KB query string",
        "GET",
        "/predict/",
        422,
        "bill",
        raw_query=lambda: b"flipper=195&bill=" + b"9" * HUNDRED_KB,
        promises=BOUNDS,
        # uvicorn (httptools) refuses a request line over 64 KiB before any app sees it
        over_http=(400, "invalid http request"),
    ),
    # one digit image
    _digit(
        "non-image bytes named .png",
        lambda: upload("notes.png", b"hello, I am not an image"),
        422,
        "not a readable image",
    ),
    _digit("truncated PNG", lambda: upload("cut.png", _truncated_png()), 422, "not a readable image"),
    _digit(
        "PNG with a corrupt header checksum", lambda: upload("crc.png", _bad_crc_png()), 422, "not a readable image"
    ),
    _digit("empty file", lambda: upload("empty.png", b""), 422, "empty"),
    _digit("zero-byte file name", lambda: upload("", digit_png()), 422, "file"),
    _digit(
        "10,000x10,000 PNG header only",
        lambda: upload("bomb.png", png_header_claiming(10_000, 10_000)),
        422,
        "bomb.png",
    ),
    _digit("10,000x10,000 PNG, ~100 KB compressed", lambda: upload("bomb.png", png_bomb()), 422, "10000x10000"),
    _digit(
        "2^31-pixel-wide PNG header", lambda: upload("wide.png", png_header_claiming(2**31 - 1, 1)), 422, "wide.png"
    ),
    _digit("50 MB upload", lambda: upload("big.png", _fifty_megabytes()), 413, "bytes"),
    _digit(
        "a zip where one image goes",
        lambda: upload("digits.zip", zip_of([("img_1.png", digit_png())]), "application/zip"),
        422,
        "not a readable image",
    ),
    BadRequest("no file", "POST", "/predict/", 422, "file"),
    BadRequest(
        "wrong content type: JSON",
        "POST",
        "/predict/",
        422,
        "file",
        content=lambda: b'{"file": "img.png"}',
        headers={"content-type": "application/json"},
    ),
    BadRequest(
        "wrong content type: raw PNG",
        "POST",
        "/predict/",
        422,
        "file",
        content=digit_png,
        headers={"content-type": "image/png"},
    ),
    BadRequest(
        "multipart without a boundary",
        "POST",
        "/predict/",
        400,
        "boundary",
        content=lambda: b"junk",
        headers={"content-type": "multipart/form-data"},
    ),
    BadRequest(
        "malformed multipart",
        "POST",
        "/predict/",
        400,
        "multipart",
        content=lambda: b"junk",
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    ),
    # many digit images
    BadRequest(
        "batch: 5,000 files in one request",
        "POST",
        "/predict/batch/",
        400,
        "too many files",
        files=_five_thousand_files,
    ),
    BadRequest(
        "batch: one truncated PNG among good ones",
        "POST",
        "/predict/batch/",
        422,
        "cut.png",
        files=lambda: uploads("ok.png", digit_png()) + uploads("cut.png", _truncated_png()),
    ),
    # training uploads
    _train(
        "train: non-image bytes with an image name",
        lambda: uploads("img_1.png", b"GIF89a? no"),
        422,
        "not a readable image",
    ),
    _train("train: no label in the name", lambda: uploads("img.png", digit_png()), 422, "no label"),
    _train("train: label 12", lambda: uploads("img_12.png", digit_png()), 422, "label 12"),
    _train("train: label is a letter", lambda: uploads("img_x.png", digit_png()), 422, "no label"),
    _train("train: 5,000 files in one request", _five_thousand_files, 400, "too many files"),
    _train("train: zip bomb", lambda: uploads("bomb.zip", zip_bomb(), "application/zip"), 413, "size limit"),
    _train(
        "train: zip with ../../x.png",
        lambda: uploads("evil.zip", zip_of([("../../x_1.png", digit_png())]), "application/zip"),
        422,
        "unsafe path",
    ),
    _train(
        "train: zip with an absolute path",
        lambda: uploads("abs.zip", zip_of([("/tmp/x_1.png", digit_png())]), "application/zip"),
        422,
        "unsafe path",
    ),
    _train(
        "train: zip of more images than allowed",
        lambda: uploads(
            "many.zip", zip_of([(f"img{i}_1.png", digit_png()) for i in range(MAX_FILES + 1)]), "application/zip"
        ),
        413,
        f"more than {MAX_FILES}",
    ),
    _train(
        "train: not a zip, named .zip",
        lambda: uploads("fake.zip", b"PK\x03\x04 not really", "application/zip"),
        422,
        "not a readable zip",
    ),
    _train(
        "train: zip without images",
        lambda: uploads("text.zip", zip_of([("readme.txt", b"hi")]), "application/zip"),
        422,
        "no images",
    ),
    _train("train: empty file", lambda: uploads("img_1.png", b""), 422, "empty"),
    _train("train: 28x27 image", lambda: uploads("img_1.png", small_png(28, 27)), 422, "28x27"),
    _train("train: 50 MB image", lambda: uploads("big_1.png", _fifty_megabytes()), 413, "bytes"),
    _train("train: no files", None, 422, "files"),
    _train(
        "train: epochs 0", lambda: uploads("img_1.png", digit_png()), 422, "epochs", data={"epochs": "0"}, promises=JOBS
    ),
    _train(
        "train: epochs nan",
        lambda: uploads("img_1.png", digit_png()),
        422,
        "epochs",
        data={"epochs": "nan"},
        promises=JOBS,
    ),
    _train(
        "train: epochs 10**9",
        lambda: uploads("img_1.png", digit_png()),
        422,
        "epochs",
        data={"epochs": str(10**9)},
        promises=JOBS,
    ),
    BadRequest(
        "retrain: one bad image",
        "POST",
        "/retrain/",
        422,
        "not a readable image",
        files=lambda: uploads("img_1.png", _truncated_png()),
        needs_key=True,
        promises=JOBS,
    ),
    # jobs and versions
    BadRequest("unknown job id", "GET", "/jobs/{job_id}", 404, "no job", path="/jobs/" + "0" * 32),
    BadRequest("malformed job id", "GET", "/jobs/{job_id}", 422, "job_id", path="/jobs/not-a-job-id"),
    BadRequest("job id that is a path", "GET", "/jobs/{job_id}", 404, "not found", path="/jobs/..%2F..%2Fetc%2Fpasswd"),
    BadRequest(
        "unknown model version",
        "POST",
        "/models/{name}/{version}/activate",
        404,
        "no version 999",
        path="/models/mnist/999/activate",
        needs_key=True,
    ),
    BadRequest(
        "model version 0",
        "POST",
        "/models/{name}/{version}/activate",
        422,
        "version",
        path="/models/mnist/0/activate",
        needs_key=True,
    ),
    BadRequest(
        "model version not a number",
        "POST",
        "/models/{name}/{version}/activate",
        422,
        "version",
        path="/models/mnist/latest/activate",
        needs_key=True,
    ),
    BadRequest(
        "unknown model name",
        "POST",
        "/models/{name}/{version}/activate",
        404,
        "no model 'cats'",
        path="/models/cats/1/activate",
        needs_key=True,
    ),
    BadRequest(
        "model name that is a path",
        "POST",
        "/models/{name}/{version}/activate",
        404,
        "not found",
        path="/models/..%2F..%2Fetc/1/activate",
        needs_key=True,
    ),
]


def message(response) -> str:
    """What the answer says about the problem: the detail string, or each validation error's
    location and message (never the echoed input), lowercased."""
    try:
        detail = response.json().get("detail")
    except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
        return response.text.lower()
    if isinstance(detail, list):
        return " ".join(
            f"{'.'.join(map(str, error.get('loc', [])))}: {error.get('msg', '')}" for error in detail
        ).lower()
    return str(detail).lower()


def routes_of(app) -> set[tuple[str, str]]:
    """(method, path template) of every route an app serves."""
    found = set()
    for route in app.routes:
        for method in getattr(route, "methods", None) or ():
            found.add((method, route.path))
    return found


def applies(case: BadRequest, routes: set[tuple[str, str]], promises: frozenset[str] = ALL) -> bool:
    return (case.method, case.route) in routes and case.promises <= promises
