"""decode_digits (many uploads at once) gives exactly what decode_digit gives one file at a time:
the same pixels for every kind of image, and the same refusal for every bad one."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from app.images import MAX_IMAGE_BYTES, UploadError, decode_digit, decode_digits, unzip_images
from app.paths import DATA_DIR

ADAM7_PASSES = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def handmade_png(pixels: np.ndarray, filters=None, interlaced=False, idat_parts=1, after_iend=b"", extra=b"") -> bytes:
    """A greyscale PNG written by hand, to reach what PIL's encoder never writes."""
    height, width = pixels.shape
    if interlaced:
        raw = b"".join(
            b"\0" + bytes(row)
            for x0, y0, dx, dy in ADAM7_PASSES
            for row in pixels[y0::dy, x0::dx]
            if pixels[y0::dy, x0::dx].size
        )
    else:
        filters = filters or [0] * height
        raw = b"".join(
            bytes([kind]) + bytes(row) for kind, row in zip(filters, filter_rows(pixels, filters), strict=True)
        )
    stream = zlib.compress(raw) + extra
    step = -(-len(stream) // idat_parts)
    idats = b"".join(chunk(b"IDAT", stream[i : i + step]) for i in range(0, len(stream), step))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, int(interlaced))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + idats + chunk(b"IEND", b"") + after_iend


def filter_rows(pixels: np.ndarray, filters: list[int]) -> list[np.ndarray]:
    """Apply PNG filter `filters[r]` to row r (one byte per pixel)."""
    rows = []
    image = pixels.astype(np.int32)
    for r, kind in enumerate(filters):
        row = image[r]
        prior = image[r - 1] if r else np.zeros_like(row)
        left = np.concatenate([[0], row[:-1]])
        upper_left = np.concatenate([[0], prior[:-1]])
        if kind == 0:
            out = row
        elif kind == 1:
            out = row - left
        elif kind == 2:
            out = row - prior
        elif kind == 3:
            out = row - (left + prior) // 2
        else:
            p = left + prior - upper_left
            pa, pb, pc = abs(p - left), abs(p - prior), abs(p - upper_left)
            predictor = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prior, upper_left))
            out = row - predictor
        rows.append((out % 256).astype(np.uint8))
    return rows


def pil_png(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, **{"format": "PNG", **options})
    return buffer.getvalue()


@pytest.fixture(scope="module")
def digit() -> np.ndarray:
    return decode_digit((DATA_DIR / "test_image" / "test_img7.png").read_bytes())


def odd_images(digit: np.ndarray) -> dict[str, bytes]:
    grey = Image.fromarray(digit)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    rgba = np.dstack([digit, 255 - digit, noise, rng.integers(0, 256, (28, 28), dtype=np.uint8)])
    return {
        "palette": pil_png(grey.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)),
        "rgb": pil_png(Image.fromarray(rgba[..., :3])),
        "rgba": pil_png(Image.fromarray(rgba)),
        "grey+alpha": pil_png(grey.convert("LA")),
        "16-bit": pil_png(Image.fromarray(digit.astype(np.uint16) * 257)),
        "1-bit": pil_png(grey.convert("1")),
        "interlaced": handmade_png(noise, interlaced=True),
        "every filter": handmade_png(noise, filters=[r % 5 for r in range(28)]),
        "Paeth everywhere": handmade_png(digit, filters=[4] * 28),
        "IDAT in three chunks": handmade_png(noise, filters=[1] * 28, idat_parts=3),
        "bytes after IEND": handmade_png(noise, after_iend=b"junk"),
        "bytes after the zlib stream": handmade_png(noise, extra=b"\0\0"),
        "text chunk": pil_png(grey, pnginfo=text_info()),
        "jpeg": pil_png(grey, format="JPEG"),
        "gif": pil_png(grey, format="GIF"),
        "bmp": pil_png(grey, format="BMP"),
    }


def text_info():
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", "a digit")
    return info


def test_same_pixels_as_decode_digit_on_the_workshop_zip():
    files = unzip_images((DATA_DIR / "train_img.zip").read_bytes())
    names, contents = [name for name, _ in files], [data for _, data in files]
    expected = np.stack([decode_digit(data, name) for name, data in files])
    decoded = decode_digits(contents, names)
    assert decoded.dtype == np.uint8 and decoded.shape == (len(files), 28, 28)
    np.testing.assert_array_equal(decoded, expected)


def test_same_pixels_as_decode_digit_on_odd_images(digit):
    images = odd_images(digit)
    decoded = decode_digits(list(images.values()), list(images))
    for (kind, data), pixels in zip(images.items(), decoded, strict=True):
        np.testing.assert_array_equal(pixels, decode_digit(data, kind), err_msg=kind)
    # The hand-written PNGs hold the pixels they were written from.
    np.testing.assert_array_equal(decoded[list(images).index("Paeth everywhere")], digit)


def test_one_image_and_none():
    data = (DATA_DIR / "test_image" / "test_img3.png").read_bytes()
    np.testing.assert_array_equal(decode_digits([data])[0], decode_digit(data))
    assert decode_digits([]).shape == (0, 28, 28)


def corrupted(digit: np.ndarray) -> dict[str, bytes]:
    good = pil_png(Image.fromarray(digit))
    bad_header_crc = bytearray(good)
    bad_header_crc[29] ^= 0xFF  # IHDR's checksum
    bad_filter = handmade_png(digit)
    raw = bytearray(zlib.decompress(bad_filter[41:-16]))
    raw[29 * 5] = 7  # no such filter type
    return {
        "empty.png": b"",
        "huge.png": good + bytes(MAX_IMAGE_BYTES),
        "big.png": pil_png(Image.new("L", (56, 56))),
        "text.png": b"not an image at all",
        "truncated.png": good[: len(good) // 2],
        "header-crc.png": bytes(bad_header_crc),
        "bad-filter.png": handmade_png(digit)[:33] + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b""),
        "short-stream.png": handmade_png(digit)[:33]
        + chunk(b"IDAT", zlib.compress(bytes(29 * 27)))
        + chunk(b"IEND", b""),
        "bomb.png": handmade_png(digit)[:33] + chunk(b"IDAT", zlib.compress(bytes(1 << 22))) + chunk(b"IEND", b""),
    }


def refusal(call):
    try:
        result = call()
    except UploadError as error:
        return ("refused", error.status_code, error.message)
    return ("accepted", result.tolist())


@pytest.mark.parametrize("name", list(corrupted(np.zeros((28, 28), np.uint8))))
def test_same_answer_as_decode_digit_on_bad_files(digit, name):
    data = corrupted(digit)[name]
    good = pil_png(Image.fromarray(digit))
    expected = refusal(lambda: decode_digit(data, name))
    # Alone, and in the middle of good files: the answer is the bad file's own.
    assert refusal(lambda: decode_digits([data], [name])[0]) == expected
    assert refusal(lambda: decode_digits([good, data, good], ["a.png", name, "b.png"])[1]) == expected


def test_refusals_name_the_file_and_say_why(digit):
    files = corrupted(digit)
    with pytest.raises(UploadError, match="'empty.png' is empty"):
        decode_digits([files["empty.png"]], ["empty.png"])
    with pytest.raises(UploadError, match="56x56") as error:
        decode_digits([pil_png(Image.fromarray(digit)), files["big.png"]], ["ok.png", "big.png"])
    assert error.value.status_code == 422
    with pytest.raises(UploadError) as error:
        decode_digits([files["huge.png"]])
    assert error.value.status_code == 413


def test_names_must_match_the_images():
    with pytest.raises(ValueError, match="2 images but 1 file names"):
        decode_digits([b"a", b"b"], ["a.png"])


def test_the_fast_path_takes_plain_greyscale_pngs_and_nothing_else(digit):
    """Guards the tests above: they must exercise the bulk path, not only the per-file fallback."""
    from app.images import _plain_png_scanlines

    images = odd_images(digit)
    fast = {kind for kind, data in images.items() if _plain_png_scanlines(data) is not None}
    assert {"every filter", "Paeth everywhere", "IDAT in three chunks", "bytes after IEND"} <= fast
    assert not fast & {"palette", "rgb", "rgba", "16-bit", "1-bit", "interlaced", "text chunk", "jpeg"}
    files = unzip_images((DATA_DIR / "train_img.zip").read_bytes())
    assert all(_plain_png_scanlines(data) is not None for _, data in files)
