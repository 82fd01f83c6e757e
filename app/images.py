"""Turn uploaded bytes into 28x28 digit arrays, and refuse what is not one, with a reason.

Policy: an image must be exactly 28x28 pixels. We refuse other sizes instead of resizing them,
because the model only ever saw 28x28 MNIST digits: a silently shrunk photo gets a confident, wrong
answer. The size is read from the header before any pixel is decoded, so a decompression bomb costs
nothing. Colour images are converted to greyscale as the workshop does.

Every refusal is an `UploadError` whose `status_code` the services answer with (413 when something
is too large, 422 otherwise) and whose message names the file and the problem.
"""

import io
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

SIDE = 28
MAX_IMAGE_BYTES = 1 << 20  # a 28x28 PNG is under 1 KB; 1 MiB leaves room for any sane encoding
MAX_FILES = 2000  # the workshop's zip holds 1,000
MAX_ZIP_BYTES = 64 << 20  # uncompressed, all entries together
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
# img123_7.png -> 7: the label is the one digit between the last underscore and the suffix.
LABEL_PATTERN = re.compile(r"_(\d+)\.[A-Za-z]+$")


class UploadError(ValueError):
    """An upload we refuse; `status_code` is the HTTP status to answer with."""

    def __init__(self, message: str, status_code: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


def _named(filename: str | None) -> str:
    return repr(filename) if filename else "the upload"


def decode_digit(data: bytes, filename: str | None = None) -> np.ndarray:
    """Decode one image into a (28, 28) uint8 array, refusing anything that is not a 28x28 image."""
    name = _named(filename)
    if not data:
        raise UploadError(f"{name} is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise UploadError(f"{name} is {len(data)} bytes; an image may be at most {MAX_IMAGE_BYTES}", 413)
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.size != (SIDE, SIDE):  # known from the header, before decoding any pixel
                width, height = image.size
                raise UploadError(f"{name} is {width}x{height} pixels; images must be {SIDE}x{SIDE}")
            pixels = np.asarray(image.convert("L"), dtype=np.uint8)
    except UploadError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise UploadError(f"{name} is not a readable image ({type(error).__name__})") from None
    return pixels


# The fast path of decode_digits: a PNG that is exactly signature, IHDR, IDAT..., IEND, 28x28,
# 8-bit greyscale, not interlaced (what the workshop's files, PIL and most tools write for MNIST).
# Its first 33 bytes and its last chunk are constants.
def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


PLAIN_PNG_HEAD = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", SIDE, SIDE, 8, 0, 0, 0, 0))
PNG_END = _png_chunk(b"IEND", b"")
SCANLINE = SIDE + 1  # a filter-type byte, then one byte per pixel
MAX_FILTER_TYPE = 4  # None, Sub, Up, Average, Paeth
# Deflate inflates at most ~1032x: capping the compressed size caps the memory a bomb can take.
# A 28x28 greyscale image deflates to well under this; a larger stream just takes the slow path.
MAX_FAST_COMPRESSED = 4096


def _plain_png_scanlines(data: bytes) -> bytes | None:
    """The decompressed, still filtered scanlines of a plain 28x28 8-bit greyscale PNG, or None.

    None means "not the common case": anything unusual (other chunks, a bad checksum, a zlib stream
    of the wrong length) goes to decode_digit, which accepts or refuses it exactly as it always
    has. So this only has to be right about what it accepts.
    """
    if not data.startswith(PLAIN_PNG_HEAD) or len(data) > MAX_IMAGE_BYTES:
        return None
    view = memoryview(data)
    position = len(PLAIN_PNG_HEAD)
    compressed = []
    try:
        while data[position + 4 : position + 8] == b"IDAT":
            (length,) = struct.unpack_from(">I", data, position)
            body_end = position + 8 + length
            if len(data) < body_end + 4:
                return None
            if zlib.crc32(view[position + 4 : body_end]) != int.from_bytes(view[body_end : body_end + 4]):
                return None
            compressed.append(view[position + 8 : body_end])
            position = body_end + 4
    except struct.error:  # truncated
        return None
    # What follows IEND is ignored, as PIL does.
    if not compressed or data[position : position + len(PNG_END)] != PNG_END:
        return None
    stream = b"".join(compressed)
    if len(stream) > MAX_FAST_COMPRESSED:
        return None
    try:
        scanlines = zlib.decompress(stream, bufsize=SIDE * SCANLINE)
    except zlib.error:  # corrupt or truncated
        return None
    return scanlines if len(scanlines) == SIDE * SCANLINE else None


def decode_digits(contents: Sequence[bytes], filenames: Sequence[str | None] | None = None) -> np.ndarray:
    """Decode many images into an (n, 28, 28) uint8 array: the same pixels and the same refusals
    (the first bad file's UploadError) as calling decode_digit on each, in a fraction of the time.

    decode_digit spends most of its time in PIL's per-file Python (open, parse chunks, convert,
    copy), not in decoding. Here each plain greyscale PNG costs a chunk walk and a zlib inflate; then
    all their filtered scanlines, each image preceded by a row of zeros (so its first row is
    unfiltered against zeros, as in its own file), go through PIL's PNG unfilter in ONE call, as one
    tall image. Any other file takes decode_digit.
    """
    if filenames is None:
        filenames = [None] * len(contents)
    elif len(filenames) != len(contents):
        raise ValueError(f"{len(contents)} images but {len(filenames)} file names")
    pixels = np.empty((len(contents), SIDE, SIDE), dtype=np.uint8)
    separator = bytes(SCANLINE)  # filter type 0 and 28 zeros
    fast_rows: list[int] = []
    fast_parts: list[bytes] = []
    for row, (data, filename) in enumerate(zip(contents, filenames, strict=True)):
        scanlines = _plain_png_scanlines(data)
        if scanlines is not None and max(scanlines[::SCANLINE]) <= MAX_FILTER_TYPE:
            fast_rows.append(row)
            fast_parts += (separator, scanlines)
        else:
            pixels[row] = decode_digit(data, filename)
    if fast_rows:
        height = len(fast_rows) * (SIDE + 1)
        tall = Image.frombytes("L", (SIDE, height), zlib.compress(b"".join(fast_parts), 0), "zip", "L")
        pixels[fast_rows] = np.asarray(tall).reshape(len(fast_rows), SIDE + 1, SIDE)[:, 1:]
    return pixels


def label_from_filename(filename: str | None) -> int:
    """The digit in a training file's name: `img123_7.png` -> 7.

    The workshop reads `filename.split("_")[-1][0]`, which takes `img_12.png` for a 1 and fails with a
    500 on `img.png`. We insist on exactly one digit.
    """
    base = PurePosixPath((filename or "").replace("\\", "/")).name
    match = LABEL_PATTERN.search(base)
    if not match:
        raise UploadError(f"{_named(filename)} has no label: name training images like img123_7.png (label 7)")
    if len(match.group(1)) != 1:
        raise UploadError(f"{_named(filename)} has label {match.group(1)}; a label is one digit, 0 to 9")
    return int(match.group(1))


def is_zip(filename: str | None, data: bytes) -> bool:
    return (filename or "").lower().endswith(".zip") or data[:4] == b"PK\x03\x04"


def unzip_images(data: bytes, filename: str | None = None) -> list[tuple[str, bytes]]:
    """The (name, bytes) of the images in a zip, read in memory: nothing is extracted to disk.

    Folders, macOS resource forks and non-image files are skipped. A path that climbs out
    (`../x.png`) or is absolute is refused, as are more than MAX_FILES images or MAX_ZIP_BYTES of
    content (a zip bomb declares small sizes and inflates; we count the bytes actually read).
    """
    name = _named(filename)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        raise UploadError(f"{name} is not a readable zip file") from None
    entries: list[tuple[str, bytes]] = []
    total = 0
    with archive:
        for info in archive.infolist():
            path = PurePosixPath(info.filename.replace("\\", "/"))
            if info.filename.startswith("/") or ".." in path.parts:
                raise UploadError(f"{name} holds an unsafe path {info.filename!r}")
            if info.is_dir() or "__MACOSX" in path.parts or path.name.startswith("."):
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if len(entries) >= MAX_FILES:
                raise UploadError(f"{name} holds more than {MAX_FILES} images", 413)
            budget = min(MAX_IMAGE_BYTES, MAX_ZIP_BYTES - total) + 1
            try:
                with archive.open(info) as member:
                    content = member.read(budget)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as error:
                raise UploadError(f"{name}: entry {info.filename!r} cannot be read ({error})") from None
            if len(content) >= budget:
                raise UploadError(f"{name}: entry {info.filename!r} inflates past the size limit", 413)
            total += len(content)
            entries.append((path.name, content))
    if not entries:
        raise UploadError(f"{name} holds no images")
    return entries


@dataclass(frozen=True)
class LabelledImages:
    images: np.ndarray  # (n, 28, 28) uint8
    labels: np.ndarray  # (n,) int64
    names: list[str]


def labelled_images(files: Iterable[tuple[str | None, bytes]]) -> LabelledImages:
    """Decode uploaded training files (images, or zips of images) and read each label from its name.

    Everything is checked before anything is used: one bad file refuses the whole request, so a
    training never runs on a silently trimmed data set.
    """
    images: list[np.ndarray] = []
    labels: list[int] = []
    names: list[str] = []
    for filename, data in files:
        members = unzip_images(data, filename) if is_zip(filename, data) else [(filename, data)]
        for name, content in members:
            if len(images) >= MAX_FILES:
                raise UploadError(f"more than {MAX_FILES} images in one request", 413)
            labels.append(label_from_filename(name))
            images.append(decode_digit(content, name))
            names.append(str(name))
    if not images:
        raise UploadError("no files were uploaded; send one or more images (or a zip) as 'files'")
    return LabelledImages(np.stack(images), np.array(labels, dtype=np.int64), names)


def encode_png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
