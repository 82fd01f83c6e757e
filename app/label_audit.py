"""Labels that contradict what a version knows for sure: poisoned feedback, flagged and kept out of training.

A version is *sure* of an answer when the input looks like its frozen holdout and it answers as
confidently as it does on the better half of that holdout. At publication the gate records how often
it is right there (`calibration`: the confidence of the holdout's median answer, and the errors above
it). On labelled feedback, `audit` then asks whether the labels contradict those sure answers more
often than the holdout allows:

1. familiar inputs: each of the model's declared drift signals (`Model.drift_signals`, e.g. a digit's
   ink and offset, a penguin's bill length) inside the range the holdout spans;
2. no drift among them: as a group, those inputs must not drift from the holdout (the service's own
   Kolmogorov-Smirnov tests, Bonferroni over the signals); otherwise nothing is judged, since a
   labeller cannot be told from new truth on new traffic;
3. the test: among the familiar inputs answered at least as confidently as the median holdout answer,
   the labels that differ from the answer are a binomial count; its null rate is the highest error rate
   the holdout allows there (the Clopper-Pearson upper bound at `alpha`). A count that rate makes
   impossible (one-sided binomial test, p < alpha) means the labels, not the model, are wrong;
4. then every label that contradicts the version on a familiar input is flagged: such a source's
   corrections of familiar inputs are no evidence. Labels on unfamiliar inputs are never flagged.

What it cannot catch: a labeller consistently wrong about new traffic (it is indistinguishable from
new truth), or one wrong less often than the version's own holdout error rate (the gate's frozen
floor and forgetting rules still refuse a candidate that learned enough of it to forget the old).
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app import drift
from app.modelkit import Model

FLAGGED, CONSISTENT, NOT_JUDGED = "flagged", "consistent", "not judged"


def calibration(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """What the audit needs from a version's frozen holdout: the median answer's confidence, and how
    many of the answers at least that confident were wrong."""
    probabilities = np.asarray(probabilities)
    confidence = probabilities.max(axis=1)
    threshold = float(np.median(confidence))
    sure = confidence >= threshold
    errors = int(np.sum(probabilities.argmax(axis=1)[sure] != np.asarray(labels)[sure]))
    return {"min_confidence": threshold, "n": int(sure.sum()), "errors": errors}


@dataclass(frozen=True)
class LabelAudit:
    status: str  # FLAGGED, CONSISTENT or NOT_JUDGED
    detail: str  # why, in words
    n_labels: int = 0
    n_familiar: int = 0  # inputs that look like the holdout's
    n_sure: int = 0  # of those, answered confidently
    n_contradicting: int = 0  # of those, labelled otherwise than the version answered
    expected_error: float | None = None  # the highest error rate on sure answers the holdout allows
    p_value: float | None = None
    flagged: np.ndarray = field(default_factory=lambda: np.zeros(0, bool), repr=False)  # one per label

    @property
    def n_flagged(self) -> int:
        return int(self.flagged.sum())

    def describe(self) -> dict[str, Any]:
        """For /models/: the figures and the verdict, without the per-label mask."""
        return {
            "status": self.status,
            "detail": self.detail,
            "n_labels": self.n_labels,
            "n_familiar": self.n_familiar,
            "n_sure": self.n_sure,
            "n_contradicting": self.n_contradicting,
            "expected_error": self.expected_error,
            "p_value": self.p_value,
            "n_flagged": self.n_flagged,
        }


def highest_error_rate(errors: int, n: int, alpha: float) -> float:
    """The one-sided Clopper-Pearson upper bound of an error rate seen as `errors` in `n`."""
    from scipy.stats import beta

    return 1.0 if errors >= n else float(beta.ppf(1 - alpha, errors + 1, n - errors))


def familiar(model: Model, inputs: np.ndarray, probabilities: np.ndarray, reference: dict[str, Any]) -> np.ndarray:
    """Rows whose declared drift signals each lie within the range of the holdout's."""
    inside = np.ones(len(inputs), dtype=bool)
    for name, values in model.drift_signals(inputs, probabilities).items():
        sample = reference.get("samples", {}).get(name)
        if sample:
            inside &= (values >= min(sample)) & (values <= max(sample))
    return inside


def audit(
    model: Model,
    inputs: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray,
    metadata: dict[str, Any],
    alpha: float,
    drift_alpha: float,
) -> LabelAudit:
    """Audit `labels` (class indices) of `inputs` against the answers (`probabilities`) of the version
    whose `metadata` (its drift reference and label check) is given; see the module docstring."""
    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    none = np.zeros(len(labels), dtype=bool)
    reference, checked = metadata.get("drift_reference"), metadata.get("label_check")
    if not len(labels):
        return LabelAudit(NOT_JUDGED, "no labelled feedback with its input yet", flagged=none)
    if reference is None or checked is None:
        detail = f"version {metadata.get('version')} was published without a label check: nothing is judged"
        return LabelAudit(NOT_JUDGED, detail, len(labels), flagged=none)
    known = familiar(model, inputs, probabilities, reference)
    signals = model.drift_signals(inputs[known], probabilities[known])
    found = drift.compare(reference, signals) if known.sum() > 1 else {}
    threshold = drift_alpha / max(len(found), 1)
    drifting = sorted(name for name, test in found.items() if test["p_value"] < threshold)
    if drifting:
        detail = (
            f"the {int(known.sum())} inputs that look familiar one by one still drift from the holdout as a group "
            f"({', '.join(drifting)}): a wrong labeller cannot be told from new truth there, nothing is judged"
        )
        return LabelAudit(NOT_JUDGED, detail, len(labels), int(known.sum()), flagged=none)
    wrong = probabilities.argmax(axis=1) != labels
    sure = known & (probabilities.max(axis=1) >= checked["min_confidence"])
    n, contradicting = int(sure.sum()), int(np.sum(sure & wrong))
    counts = (len(labels), int(known.sum()), n, contradicting)
    if n == 0:
        return LabelAudit(NOT_JUDGED, "no familiar input was answered confidently", *counts, flagged=none)
    from scipy.stats import binomtest

    expected = highest_error_rate(checked["errors"], checked["n"], alpha)
    p_value = float(binomtest(contradicting, n, expected, alternative="greater").pvalue)
    said = (
        f"{contradicting} of the {n} labels of familiar inputs answered confidently contradict the answer of "
        f"version {metadata.get('version')}, which its holdout says is wrong there at most {expected:.1%} of the "
        f"time (binomial test: p = {p_value:.2g}"
    )
    if p_value < alpha:
        flagged = known & wrong
        detail = (
            f"{said} < {alpha:g}): the labels are wrong, not the model; the {int(flagged.sum())} labels that "
            "contradict it on familiar inputs are kept out of training and out of the live holdout"
        )
        return LabelAudit(FLAGGED, detail, *counts, expected, p_value, flagged)
    return LabelAudit(CONSISTENT, f"{said} >= {alpha:g}): nothing flagged", *counts, expected, p_value, none)
