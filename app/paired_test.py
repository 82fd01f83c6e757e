"""Is one model right more often than another on the same labelled examples? McNemar's exact test.

Two models answer the same examples, so their errors are paired: only the examples where exactly one
of them is right say which is better (b: the baseline right and the candidate wrong; c: the other
way round). If neither is better, each of those b + c examples is a fair coin, and the two-sided
p-value is the chance of a split at least as uneven as the one seen (scipy's exact binomial test).
Used wherever a candidate meets the serving version on live labels: shadow scoring
(app/part3/shadow.py) and the gate's live holdout.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PairedComparison:
    n: int  # labelled examples both models answered
    baseline_correct: int
    candidate_correct: int
    only_baseline: int  # b: the baseline right, the candidate wrong
    only_candidate: int  # c: the candidate right, the baseline wrong
    p_value: float  # two-sided, exact; 1.0 when they never disagree on correctness

    @property
    def baseline_accuracy(self) -> float | None:
        return self.baseline_correct / self.n if self.n else None

    @property
    def candidate_accuracy(self) -> float | None:
        return self.candidate_correct / self.n if self.n else None

    def better(self, alpha: float) -> bool:
        """The candidate is right significantly more often (at level `alpha`)."""
        return self.p_value < alpha and self.only_candidate > self.only_baseline

    def worse(self, alpha: float) -> bool:
        return self.p_value < alpha and self.only_candidate < self.only_baseline


def mcnemar_exact(baseline_correct, candidate_correct) -> PairedComparison:
    """Compare two models from whether each was right on each example (two boolean sequences, paired)."""
    baseline = np.asarray(baseline_correct, dtype=bool)
    candidate = np.asarray(candidate_correct, dtype=bool)
    if baseline.shape != candidate.shape or baseline.ndim != 1:
        raise ValueError(f"paired answers come in two sequences of one length; got {baseline.shape}, {candidate.shape}")
    only_baseline = int(np.sum(baseline & ~candidate))
    only_candidate = int(np.sum(~baseline & candidate))
    discordant = only_baseline + only_candidate
    if discordant:
        from scipy.stats import binomtest  # on first use: a worker that never compares never imports it

        p_value = float(binomtest(only_candidate, discordant, 0.5).pvalue)
    else:
        p_value = 1.0
    return PairedComparison(
        len(baseline), int(baseline.sum()), int(candidate.sum()), only_baseline, only_candidate, p_value
    )
