"""McNemar's exact test: is one model better than another on the same labelled examples?

Only the examples the two answer differently count (the discordant pairs): `wins`, where the first
is right and the second wrong, and `losses`, the other way round. If neither model were better, each
discordant pair would go either way with probability 1/2, so `wins` out of `wins + losses` is a
binomial draw (SciPy's `binomtest`, one-sided each way). Ties (both right, both wrong) say nothing
about which is better, which is why this test, and not two accuracies side by side, decides.

The promotion gate uses it on the live holdout (candidate against the serving version); shadow
scoring on the labelled requests a challenger answered beside the champion.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PairedTest:
    n: int  # labelled examples both answered
    wins: int  # the first right, the second wrong
    losses: int  # the second right, the first wrong
    first_accuracy: float | None
    second_accuracy: float | None
    p_better: float  # the chance of at least `wins` of the discordant pairs if neither were better
    p_worse: float  # the same for `losses`

    def better(self, alpha: float) -> bool:
        return self.p_better < alpha

    def worse(self, alpha: float) -> bool:
        return self.p_worse < alpha


def mcnemar(wins: int, losses: int) -> tuple[float, float]:
    """(p_better, p_worse): the exact one-sided p-values of `wins` against `losses`."""
    from scipy.stats import binomtest  # SciPy only when a comparison is made

    discordant = wins + losses
    if discordant == 0:
        return 1.0, 1.0
    return (
        float(binomtest(wins, discordant, 0.5, alternative="greater").pvalue),
        float(binomtest(losses, discordant, 0.5, alternative="greater").pvalue),
    )


def compare(labels: np.ndarray, first: np.ndarray, second: np.ndarray) -> PairedTest:
    """McNemar's test of the answers `first` against `second` on the same `labels` (class indices)."""
    labels, first, second = (np.asarray(values) for values in (labels, first, second))
    first_right, second_right = first == labels, second == labels
    wins, losses = int(np.sum(first_right & ~second_right)), int(np.sum(second_right & ~first_right))
    n = len(labels)
    return PairedTest(
        n,
        wins,
        losses,
        float(first_right.mean()) if n else None,
        float(second_right.mean()) if n else None,
        *mcnemar(wins, losses),
    )
