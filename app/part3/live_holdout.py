"""Labelled feedback for a job on feedback: what it trains on, and the live holdout the gate judges it on.

Of a model's labelled feedback that came with its input, in arrival order, the oldest rows are for
training and the newest share (WORKSHOP_LIVE_HOLDOUT_SHARE) is the live holdout. A job on feedback
records its boundary (the newest row it trains on) when it is submitted; the gate judges it on every
row after it, and after the rows its base and the serving version were trained on, so nothing a
version learned is ever judged on. Labels the audit flags (app/label_audit.py: they contradict what
the serving version knows for sure) are in neither part.

The API workers (the policy, `/models/`) and the trainer (the gate) both split feedback here.
"""

from collections.abc import Callable
from typing import Any

import numpy as np

from app import label_audit
from app.label_audit import LabelAudit
from app.modelkit import Model
from app.part3.feedback_records import FeedbackStore, LabelledRows
from app.part3.settings import Settings
from app.promotion import LiveHoldout

SOURCE = "labelled feedback"


def audited(
    feedback: FeedbackStore,
    model: Model,
    metadata: dict[str, Any],
    probabilities_of: Callable[[np.ndarray], np.ndarray],
    settings: Settings,
) -> tuple[LabelledRows, LabelAudit]:
    """Every kept labelled row of `model` with its input, and their audit against the version whose
    `metadata` is given and whose answers `probabilities_of` gives (its serving file)."""
    rows = feedback.labelled_rows(model)
    probabilities = probabilities_of(rows.inputs) if len(rows) else np.zeros((0, len(model.classes)))
    verdict = label_audit.audit(
        model, rows.inputs, rows.labels, probabilities, metadata, settings.label_audit_alpha, settings.drift_alpha
    )
    return rows, verdict


def training_part(rows: LabelledRows, verdict: LabelAudit, share: float) -> tuple[LabelledRows, int | None, int]:
    """(the rows a job submitted now trains on, its boundary, how many flagged labels it leaves out)."""
    boundary = rows.training_boundary(share)
    if boundary is None:
        return rows, None, 0
    before = rows.seqs <= boundary
    return rows.where(before & ~verdict.flagged), boundary, int(np.sum(before & verdict.flagged))


def live_part(rows: LabelledRows, verdict: LabelAudit, after: int) -> LiveHoldout:
    """The live holdout: every row after `after`, those the audit flagged left out."""
    later = rows.seqs > after
    live = rows.where(later & ~verdict.flagged)
    through = int(rows.seqs[-1]) if len(rows) else after
    return LiveHoldout(live.inputs, live.labels, SOURCE, after, through, int(np.sum(later & verdict.flagged)))


def trained_through(metadata: dict[str, Any]) -> int | None:
    """The newest feedback row a version, or a version it was fine-tuned from, trained on."""
    return (metadata.get("feedback") or {}).get("trained_through")
