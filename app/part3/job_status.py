"""A training job as every API process and trainer sees it (kept in app/part3/job_records.py).

Job ids are random hex strings made here: an uploaded file name never becomes a path.
"""

import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, computed_field, model_validator

JobKind = Literal["fine-tune", "retrain", "initial"]
JobStatus = Literal["queued", "running", "succeeded", "failed"]
FINISHED: tuple[JobStatus, ...] = ("succeeded", "failed")
JOB_ID = re.compile(r"^[0-9a-f]{32}$")


class JobNotFound(LookupError):
    """No job with this id."""


class Job(BaseModel):
    # Extra fields are kept: a later step (e.g. a promotion gate's `promoted`, `gate_reason`) adds its own.
    model_config = ConfigDict(extra="allow")

    id: str
    kind: JobKind
    model: str | None = None  # the model it trains; None: the first start's job, for every model that needs it
    parameters: dict[str, Any] = {}  # as the model's declaration validated them (e.g. epochs)
    status: JobStatus = "queued"
    sequence: int = 0  # submission order across every API process (from the records' own counter)
    submitted_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None  # the running trainer's last sign of life
    epochs: int = 0  # epochs (or steps) the training runs, once known
    epoch: int = 0  # epochs completed so far
    loss: float | None = None
    accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    n_images: int = 0  # uploaded images (a retrain adds the base data set to them)
    parent: int | None = None  # the version a fine-tune started from
    version: int | None = None  # the version the job published
    metrics: dict[str, Any] | None = None
    promoted: bool | None = None  # whether the promotion gate let the new version serve
    gate_decision: str | None = None  # promoted, rejected or challenger (in shadow, never served by default)
    gate_reason: str | None = None  # the gate's decision in plain words, with its figures
    # A job on labelled feedback: the newest feedback row it trains on (the gate's live holdout is every
    # row after it), the labels left out as contradicting the serving version, why the retrain policy
    # queued it (None: someone asked), and the newest row the gate judged it on (once it ran).
    feedback_boundary: int | None = None
    n_flagged: int = 0
    retrain_reasons: list[str] | None = None
    feedback_through: int | None = None
    error: str | None = None
    trainer: str | None = None  # host:pid of the trainer that ran it
    trainer_pid: int | None = None

    @model_validator(mode="before")
    @classmethod
    def without_computed_fields(cls, data: Any) -> Any:
        # A job read back from its JSON: `progress` is computed, not an extra field to keep.
        return {key: value for key, value in data.items() if key != "progress"} if isinstance(data, dict) else data

    # pydantic documents this ignore: mypy does not accept a decorator over @property.
    @computed_field  # type: ignore[prop-decorator]
    @property
    def progress(self) -> str:
        if self.status == "running":
            return f"epoch {self.epoch} of {self.epochs}"
        if self.status == "succeeded":
            if self.gate_decision == "challenger":
                return f"published version {self.version}, a challenger in shadow: {self.gate_reason}"
            if self.promoted is False:
                return f"published version {self.version}, not promoted: {self.gate_reason}"
            return f"published version {self.version}"
        if self.status == "failed":
            return f"failed: {self.error}"
        return "waiting for the jobs before it"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def now() -> datetime:
    return datetime.now(UTC)
