"""Drift: does what a model is sent still look like what it was checked on?

At publication each version records a *reference*: a compact summary of its holdout set, the same
numbers for every model (its top-class confidence and its predicted classes) and those the model
declares (`Model.drift_signals`: for digits, the image's "ink" and "offset"; for a table, each
column). A service later compares a window of live requests with it using standard two-sample tests
(SciPy): Kolmogorov-Smirnov for each number, chi-squared for the predicted classes. A small p-value
says "these requests are unlikely to come from the reference's distribution".

The reference keeps at most `REFERENCE_POINTS` evenly spaced quantiles of each number (they stand
for the holdout's distribution, and keep the metadata small). SciPy is imported only when a
comparison is computed: a serving worker that never reports drift never loads it.
"""

from typing import Any

import numpy as np

from app.modelkit import Model

REFERENCE_POINTS = 200
CONFIDENCE = "confidence"
CLASSES_SIGNAL = "predicted_class"


def features(model: Model, inputs: np.ndarray, probabilities: np.ndarray) -> dict[str, np.ndarray]:
    """What drift looks at in each request: the model's answer, and the numbers the model declares."""
    probabilities = np.asarray(probabilities)
    return {
        CONFIDENCE: probabilities.max(axis=1),
        CLASSES_SIGNAL: probabilities.argmax(axis=1),
        **model.drift_signals(np.asarray(inputs), probabilities),
    }


def quantile_sample(values: np.ndarray, points: int = REFERENCE_POINTS) -> list[float]:
    """At most `points` evenly spaced quantiles of `values`, observed values only (ties are kept)."""
    values = np.asarray(values, dtype=np.float64)
    count = min(points, len(values))
    levels = (np.arange(count) + 0.5) / count
    return [round(float(value), 5) for value in np.quantile(values, levels, method="inverted_cdf")]


def reference(model: Model, inputs: np.ndarray, probabilities: np.ndarray, holdout: str) -> dict[str, Any]:
    """The reference a version stores: its answers on the holdout, and the holdout's own numbers."""
    found = features(model, inputs, probabilities)
    classes = found.pop(CLASSES_SIGNAL)
    return {
        "holdout": holdout,
        "n": int(len(inputs)),
        "samples": {name: quantile_sample(values) for name, values in found.items()},
        "classes": np.bincount(classes, minlength=np.asarray(probabilities).shape[1]).tolist(),
    }


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
