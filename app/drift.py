"""Drift: does what a model is sent still look like what it was checked on?

At publication each version records a *reference*: a compact summary of its holdout set (for digits:
the model's top-class confidence, its predicted classes, and two input statistics, "ink" and
"offset"; for penguins: the two lengths). A service later compares a window of live requests with
it using standard two-sample tests (SciPy): Kolmogorov-Smirnov for each number, chi-squared for
the predicted classes. A small p-value says "these requests are unlikely to come from the
reference's distribution".

The reference keeps at most `REFERENCE_POINTS` evenly spaced quantiles of each number (they stand
for the holdout's distribution, and keep the metadata small). SciPy is imported only when a
comparison is computed: a serving worker that never reports drift never loads it.
"""

from typing import Any

import numpy as np

REFERENCE_POINTS = 200
DIGIT_SIGNALS = ("confidence", "ink", "offset")
PENGUIN_SIGNALS = {"bill_length": "bill_length_mm", "flipper_length": "flipper_length_mm"}
CLASSES_SIGNAL = "predicted_class"
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


def digit_features(probabilities: np.ndarray, images: np.ndarray) -> dict[str, np.ndarray]:
    """What drift looks at in each digit request: the model's answer and the input's statistics."""
    probabilities = np.asarray(probabilities)
    return {
        "confidence": probabilities.max(axis=1),
        CLASSES_SIGNAL: probabilities.argmax(axis=1),
        "ink": ink(images),
        "offset": offset(images),
    }


def quantile_sample(values: np.ndarray, points: int = REFERENCE_POINTS) -> list[float]:
    """At most `points` evenly spaced quantiles of `values`, observed values only (ties are kept)."""
    values = np.asarray(values, dtype=np.float64)
    count = min(points, len(values))
    levels = (np.arange(count) + 0.5) / count
    return [round(float(value), 5) for value in np.quantile(values, levels, method="inverted_cdf")]


def reference_for_digits(
    probabilities: np.ndarray, images: np.ndarray, holdout: str = "bundled test split"
) -> dict[str, Any]:
    """The reference a digit model version stores: its answers on the holdout, and the holdout's inputs."""
    features = digit_features(probabilities, images)
    n_classes = np.asarray(probabilities).shape[1]
    return {
        "holdout": holdout,
        "n": int(len(images)),
        "samples": {name: quantile_sample(features[name]) for name in DIGIT_SIGNALS},
        "classes": np.bincount(features[CLASSES_SIGNAL], minlength=n_classes).tolist(),
    }


def digit_reference_of(model) -> dict[str, Any]:
    """The reference of a trained Keras digit model, on the bundled holdout (500 images, offline)."""
    from app import mnist
    from app.datasets import bundled_images

    images, _ = bundled_images("test")
    return reference_for_digits(mnist.predict_probabilities(model, images), images)


def reference_for_penguins(frame) -> dict[str, Any]:
    """The reference a penguin version stores: the two lengths it can be asked about."""
    return {
        "holdout": "the bundled penguins",
        "n": int(len(frame)),
        "samples": {signal: quantile_sample(frame[column].dropna()) for signal, column in PENGUIN_SIGNALS.items()},
    }


def penguin_reference() -> dict[str, Any]:
    from app.datasets import load_penguins

    return reference_for_penguins(load_penguins())


def compare(reference: dict[str, Any], window: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Each signal's two-sample test of the live `window` against the `reference`:
    {signal: {"statistic": ..., "p_value": ...}}. KS for numbers, chi-squared for classes."""
    from scipy import stats

    signals = {}
    for name, sample in reference["samples"].items():
        if name in window:
            result = stats.ks_2samp(np.asarray(sample), np.asarray(window[name], dtype=np.float64))
            signals[name] = {"statistic": float(result.statistic), "p_value": float(result.pvalue)}
    if "classes" in reference and CLASSES_SIGNAL in window:
        expected = np.asarray(reference["classes"], dtype=np.float64)
        observed = np.bincount(np.asarray(window[CLASSES_SIGNAL], dtype=np.int64), minlength=len(expected))
        table = np.stack([expected, observed[: len(expected)]])
        table = table[:, table.sum(axis=0) > 0]  # a class neither sample holds says nothing
        if table.shape[1] > 1:
            statistic, p_value, _, _ = stats.chi2_contingency(table)
            signals[CLASSES_SIGNAL] = {"statistic": float(statistic), "p_value": float(p_value)}
    return signals
