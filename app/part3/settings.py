"""Every setting of the production service, in one place, read from WORKSHOP_* environment variables.

    WORKSHOP_MODELS_DIR=/code/models WORKSHOP_API_KEY=s3cret fastapi run app/part3/main.py

The trainers (`uv run workshop trainer`) read the same variables, so both sides read this class.
Settings of one model are keyed by its name after a double underscore, e.g.
WORKSHOP_GATE_FLOOR__WINE=0.9 or WORKSHOP_TRAINING__WINE__C=0.5; a model's own declaration
(app/modelkit.py) gives the defaults.
"""

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PositiveFloat, PositiveInt, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app import images
from app.modelkit import Model
from app.paths import models_cache_dir, models_dir, models_url
from app.store import ModelStore

JOBS_FOLDER = ".jobs"  # the jobs' uploaded images, a file per job
QUEUE_FILE = ".queue.sqlite3"  # the embedded queue and job records
TRAINER_LOCK = ".trainer.lock"  # the embedded mode's one trainer holds it for its whole life
# Set by the service for the trainer it starts (the fields trainer_parent and trainer_lock_fd below).
PARENT_ENV = "WORKSHOP_TRAINER_PARENT"
LOCK_FD_ENV = "WORKSHOP_TRAINER_LOCK_FD"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WORKSHOP_", env_nested_delimiter="__", extra="ignore")

    models_dir: Path = Field(default_factory=models_dir, description="the model store, shared by every worker")
    models_url: str | None = Field(
        default_factory=models_url,
        pattern=r"^s3://[^/]+(/.*)?$",
        description="s3://bucket/prefix: the model store in S3-compatible object storage (endpoint and "
        "credentials from the AWS_* variables) instead of models_dir",
    )
    models_cache: Path = Field(
        default_factory=models_cache_dir,
        description="where a worker keeps the files it downloaded from an object store (sha256-checked)",
    )
    api_key: SecretStr | None = Field(
        default=None, description="when set, /train/, /retrain/ and activate require it in the X-API-Key header"
    )
    max_upload_bytes: PositiveInt = Field(
        default=16 << 20, description="largest request body a route accepts (413 above it)"
    )
    max_files: PositiveInt = Field(default=images.MAX_FILES, description="most files in one upload request")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        default="info", description="level of the service's own loggers"
    )
    training_threads: PositiveInt = Field(
        default=1, description="TensorFlow threads a training may use, so predictions keep a core"
    )
    epochs: PositiveInt | None = Field(
        default=None, description="epochs of a training job by default, for every model that has epochs"
    )
    training: dict[str, dict[str, Any]] = Field(
        default={}, description="a model's default training parameters: WORKSHOP_TRAINING__<MODEL>__<PARAMETER>"
    )
    max_queued_jobs: PositiveInt = Field(
        default=50, description="training requests beyond this many waiting jobs get 429 (uploads wait on disk)"
    )
    jobs_kept: PositiveInt = Field(
        default=1000, description="finished training jobs kept (listed at /jobs/); older ones are removed"
    )
    initial_epochs: PositiveInt | None = Field(
        default=None, description="epochs of the first training on an empty store (default: epochs)"
    )
    poll_interval: PositiveFloat = Field(
        default=1.0, description="seconds between a worker's checks for a new model version or queued job"
    )
    queue_url: str | None = Field(
        default=None,
        description="redis://host:port/db: the queue, the job records and their examples, the feedback in Redis, "
        "trainers started on their own (distributed mode); unset: SQLite in the models folder, one trainer "
        "started by the service",
    )
    heartbeat_interval: PositiveFloat = Field(default=2.0, description="seconds between a running trainer's heartbeats")
    heartbeat_timeout: PositiveFloat = Field(
        default=30.0,
        description="a running job without a heartbeat for this long is failed: its trainer is gone (and its "
        "training lock, in Redis or an object store, is free again)",
    )
    shutdown_grace: PositiveFloat = Field(
        default=10.0, description="seconds a stopping service gives a running trainer before killing it"
    )
    # The promotion gate (app/promotion.py): a new version serves only when it passes both.
    gate_floor: dict[str, float] = Field(
        default={}, description="least holdout accuracy a model needs to be served: WORKSHOP_GATE_FLOOR__<MODEL>"
    )
    gate_margin: dict[str, float] = Field(
        default={},
        description="how far below the serving version's holdout accuracy a new one may be: "
        "WORKSHOP_GATE_MARGIN__<MODEL>",
    )

    # -- feedback, live accuracy, drift and when to retrain (README: "When to retrain") ------------
    feedback_secret: SecretStr | None = Field(
        default=None,
        description="signs prediction ids (default: a random secret made once, in Redis in the distributed mode, "
        "else in <models dir>/.secret)",
    )
    feedback_max_age: PositiveFloat = Field(
        default=30 * 24 * 3600.0, description="seconds after a prediction during which feedback on it is taken"
    )
    feedback_kept: PositiveInt = Field(
        default=10_000, description="labelled feedbacks kept per model (the oldest are removed)"
    )
    live_window: PositiveInt = Field(
        default=500, description="live accuracy is measured on each version's newest this many labels"
    )
    drift_window: PositiveInt = Field(
        default=500, description="live requests per model a worker compares with the reference"
    )
    drift_min_window: PositiveInt = Field(
        default=100, description="requests needed before any drift signal is reported"
    )
    drift_alpha: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="significance level of drift, shared by all of a model's signals (Bonferroni)",
    )
    retrain_accuracy_floor: float = Field(
        default=0.9, ge=0, le=1, description="live accuracy below this (on enough labels) recommends retraining"
    )
    retrain_min_labels: PositiveInt = Field(
        default=50, description="labels live accuracy must rest on before it can recommend retraining"
    )
    retrain_policy: Literal["off", "fine-tune-on-feedback"] = Field(
        default="off", description="what the service does itself when retraining is recommended"
    )
    retrain_min_interval: PositiveFloat = Field(
        default=3600.0, description="seconds between two fine-tunes the policy queues"
    )
    retrain_check_interval: PositiveFloat = Field(
        default=30.0, description="seconds between a worker's checks of the retrain policy"
    )
    retrain_min_new_labels: PositiveInt = Field(
        default=50,
        description="after a fine-tune on feedback (refused, a challenger, or promoted), the policy waits for this "
        "many new labels (with their inputs) before it queues the next one",
    )

    # -- the loop: live holdout, replay, the gate on live traffic, poisoned labels, pruning ---------
    live_holdout_share: float = Field(
        default=0.3,
        gt=0,
        lt=1,
        description="the newest share of a model's labelled feedback (with inputs) a job on feedback never trains "
        "on: the gate's live holdout",
    )
    replay_share: float = Field(
        default=0.5,
        ge=0,
        lt=1,
        description="share of a fine-tune on feedback drawn from the data the serving version learned from, so it "
        "learns the new traffic without forgetting the old",
    )
    gate_live_min_labels: PositiveInt = Field(
        default=50, description="labels the live holdout needs before the gate judges a candidate on it"
    )
    gate_live_alpha: float = Field(
        default=0.05, gt=0, lt=1, description="significance level of the gate's paired test on the live holdout"
    )
    gate_forgetting: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="how far below the serving version's frozen-holdout accuracy a candidate better on the live "
        "holdout may be",
    )
    shadow: bool = Field(
        default=True,
        description="shadow scoring: a candidate the live holdout cannot judge becomes a challenger (never served) "
        "instead of being decided by the frozen holdout alone",
    )
    label_audit_alpha: float = Field(
        default=0.001,
        gt=0,
        lt=1,
        description="significance level at which labels contradicting what the serving version knows for sure are "
        "flagged as wrong (and kept out of training)",
    )
    rejected_kept: PositiveInt = Field(
        default=5, description="versions the gate rejected kept per model; the trainer removes the oldest"
    )

    # -- shadow scoring: a challenger answers copies of live requests (README: "Shadow scoring") ---
    shadow_queue_rows: PositiveInt = Field(
        default=10_000,
        description="rows of live requests a worker holds for its challengers; copies beyond are dropped (counted)",
    )
    shadow_batch_rows: PositiveInt = Field(default=1024, description="most rows a challenger answers in one call")
    shadow_gather_seconds: float = Field(
        default=0.5, ge=0, description="seconds the shadow scorer lets copies gather into one batch"
    )
    shadow_kept: PositiveInt = Field(
        default=100_000, description="challenger answers kept per model, waiting for labels (the oldest are removed)"
    )
    shadow_min_labels: PositiveInt = Field(
        default=100, description="labelled requests both answered before a challenger is promoted or dropped"
    )
    shadow_max_labels: PositiveInt = Field(
        default=1000, description="a challenger not significantly better on this many labels is dropped"
    )
    shadow_alpha: float = Field(
        default=0.01, gt=0, lt=1, description="significance level of McNemar's test between challenger and champion"
    )
    shadow_check_interval: PositiveFloat = Field(
        default=10.0, description="seconds between checks of the challengers' labels (one worker at a time)"
    )

    prometheus_multiproc_dir: Path | None = Field(
        default=None,
        validation_alias="PROMETHEUS_MULTIPROC_DIR",  # prometheus_client's own variable, without our prefix
        description="a folder every worker writes its metrics to, so /metrics adds up all workers (made at start)",
    )

    # -- set by the service for the trainer it starts (trainer_keeper.py), never by hand ----------
    trainer_parent: int | None = Field(
        default=None, description="pid of the service that started this trainer: the trainer exits when it is gone"
    )
    trainer_lock_fd: int | None = Field(
        default=None, description="an open descriptor already holding the trainer lock, passed by that service"
    )

    @field_validator(
        "api_key",
        "models_url",
        "queue_url",
        "feedback_secret",
        "trainer_parent",
        "trainer_lock_fd",
        "prometheus_multiproc_dir",
        mode="before",
    )
    @classmethod
    def empty_means_unset(cls, value):
        # compose passes `WORKSHOP_API_KEY=${WORKSHOP_API_KEY:-}`: an empty value means "no key" (or no Redis).
        return None if value in ("", None) else value

    @model_validator(mode="after")
    def shadow_labels_in_order(self) -> "Settings":
        if self.shadow_max_labels < self.shadow_min_labels:
            raise ValueError(
                f"shadow_max_labels ({self.shadow_max_labels}) is below shadow_min_labels ({self.shadow_min_labels})"
            )
        return self

    @field_validator("log_level", mode="before")
    @classmethod
    def any_case(cls, value):
        return value.lower() if isinstance(value, str) else value

    @property
    def store_location(self) -> str | Path:
        """What ModelStore takes as its root: the object store's URL when set, else the folder."""
        return self.models_url or self.models_dir

    def store(self, name: str) -> ModelStore:
        """One model's versions, where this service keeps them (object store or folder)."""
        # A training in a bucket is a trainer gone silent like a job is: its lease and the job expire together.
        return ModelStore(name, self.store_location, self.models_cache, lease_ttl=self.heartbeat_timeout)

    @property
    def jobs_dir(self) -> Path:
        return self.models_dir / JOBS_FOLDER

    @field_validator("gate_floor", "gate_margin")
    @classmethod
    def fractions(cls, value: dict[str, float]) -> dict[str, float]:
        for name, fraction in value.items():
            if not 0 <= fraction <= 1:
                raise ValueError(f"{name}: {fraction} is not between 0 and 1")
        return value

    def floor_for(self, model: Model) -> float:
        return self.gate_floor.get(model.name, model.gate_floor)

    def margin_for(self, model: Model) -> float:
        return self.gate_margin.get(model.name, model.gate_margin)

    def training_parameters(self, model: Model, asked: dict[str, Any] | None = None):
        """The parameters of a job of `model`: what it asks, else this service's defaults for the model,
        else the model's own (pydantic's ValidationError names a bad one)."""
        assert model.parameters is not None, f"{model.name} is serve-only"
        defaults: dict[str, Any] = dict(self.training.get(model.name, {}))
        if self.epochs is not None and "epochs" in model.parameters.model_fields:
            defaults.setdefault("epochs", self.epochs)
        return model.parameters.model_validate({**defaults, **(asked or {})})

    @property
    def queue_file(self) -> Path:
        return self.models_dir / QUEUE_FILE
