"""Digits drawn differently from MNIST's, to show (and test) what drift looks like.

Each takes and returns (n, 28, 28) uint8 images: inverted (white background), shifted off centre,
thickened strokes, and another data set's style (scikit-learn's 8x8 digits, scaled up into MNIST's
20x20 box and centred as MNIST's are).
"""

import numpy as np


def inverted(images: np.ndarray) -> np.ndarray:
    return 255 - np.asarray(images, dtype=np.uint8)


def shifted(images: np.ndarray, pixels: int = 4) -> np.ndarray:
    """Moved `pixels` right and down (what leaves the frame is cut, the rest is blank)."""
    images = np.asarray(images, dtype=np.uint8)
    moved = np.zeros_like(images)
    moved[:, pixels:, pixels:] = images[:, : images.shape[1] - pixels, : images.shape[2] - pixels]
    return moved


def thickened(images: np.ndarray, size: int = 2) -> np.ndarray:
    """Strokes dilated by a size x size maximum filter, as a thicker pen draws them."""
    from scipy import ndimage

    return ndimage.grey_dilation(np.asarray(images, dtype=np.uint8), size=(1, size, size))


def other_style(count: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 handwritten digits as 28x28 images, and their labels."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.target))[:count]
    small = (digits.images[order] * (255 / 16)).astype(np.uint8)
    images = np.stack(
        [np.pad(np.asarray(Image.fromarray(image).resize((20, 20), Image.Resampling.BILINEAR)), 4) for image in small]
    )
    return images, digits.target[order].astype(np.int64)
