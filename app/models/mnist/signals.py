"""What drift looks at in a digit, beside the model's confidence and predicted class: two statistics of
the image itself, so a change in what is sent shows even where the model's answers do not."""

import numpy as np

CENTRE = 13.5  # of a 28x28 image, in pixels


def ink(images: np.ndarray) -> np.ndarray:
    """Mean pixel intensity of each (28, 28) uint8 image, in [0, 1]: inverted or thickened digits move it."""
    images = np.asarray(images, dtype=np.float32).reshape(len(images), -1)
    return images.mean(axis=1) / 255.0


def offset(images: np.ndarray) -> np.ndarray:
    """Distance in pixels from each image's centre of ink to the image centre. MNIST digits are
    centred by their centre of mass, so a shifted digit moves it."""
    images = np.asarray(images, dtype=np.float64)
    total = images.sum(axis=(1, 2))
    safe = np.where(total > 0, total, 1.0)
    positions = np.arange(images.shape[1], dtype=np.float64)
    rows = (images.sum(axis=2) * positions).sum(axis=1) / safe
    columns = (images.sum(axis=1) * positions).sum(axis=1) / safe
    distance = np.hypot(rows - CENTRE, columns - CENTRE)
    return np.where(total > 0, distance, 0.0)
