"""The benchmark's loop row: a Part 3 service with the retrain policy on meets penguins sent in bare
centimetres (what was 40.3 mm arrives as 4.03: a drift its serving version cannot read), at a steady
pace, each answer labelled with the true species, until a version the policy's fine-tune made serves.
What it measures: labelled requests and seconds from the first drifted request to the recovered
version serving, and the fine-tune's own run time (its job's start to its end) beside them."""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from bench.servers import http

# The service's settings for this row: the policy on, checking often; live accuracy on 150 labels
# recommends retraining (drift would too, earlier and on fewer labels: left out, so the row measures
# one path, the one tests/part3/test_loop_recovers.py checks).
SERVICE_ENV = {
    "WORKSHOP_RETRAIN_POLICY": "fine-tune-on-feedback",
    "WORKSHOP_RETRAIN_CHECK_INTERVAL": "0.5",
    "WORKSHOP_RETRAIN_MIN_INTERVAL": "1",
    "WORKSHOP_RETRAIN_MIN_LABELS": "150",
    "WORKSHOP_RETRAIN_ACCURACY_FLOOR": "0.8",
    "WORKSHOP_LIVE_WINDOW": "150",
    "WORKSHOP_DRIFT_WINDOW": "100000",
    "WORKSHOP_DRIFT_MIN_WINDOW": "100000",
}
BATCH = 10  # drifted requests per round, each labelled at once


@dataclass(frozen=True)
class Recovery:
    labels: int  # labelled drifted requests sent until the recovered version served
    seconds: float  # from the first drifted request until then
    fine_tune_seconds: float  # the policy's fine-tune, from its start to its end
    version: int
    gate_reason: str


def drifted_penguins(seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Every bundled penguin in centimetres (a little jitter, so no two requests are the same row)."""
    from app.models import penguins  # the registry's model: its data and classes

    model = penguins.MODEL
    rows = np.concatenate([model.training_data().inputs, model.holdout().inputs])
    labels = np.concatenate([model.training_data().labels, model.holdout().labels])
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))
    centimetres = rows[order] / 10 + rng.normal(0, 0.01, rows.shape)
    return centimetres, [model.classes[label] for label in labels[order]]


def recover(url: Callable[[str], str], per_second: float = 20, timeout: float = 600) -> Recovery:
    """Send labelled drifted requests at `per_second` until the active penguin version changes."""
    rows, labels = drifted_penguins()
    first = json.loads(http(url("/models/"))[1])["penguins"]["active"]
    started, sent = time.perf_counter(), 0
    while time.perf_counter() - started < timeout:
        chosen = [(index + sent) % len(rows) for index in range(BATCH)]
        batch = rows[chosen]
        tensor = {"name": INPUT_NAME, "shape": list(batch.shape), "datatype": "FP64", "data": batch.tolist()}
        status, body = http(url("/v2/models/penguins/infer"), json.dumps({"inputs": [tensor]}).encode(), JSON)
        if status != 200:
            raise RuntimeError(f"inference answered {status}: {body[:200]!r}")
        outputs = {output["name"]: output["data"] for output in json.loads(body)["outputs"]}
        for prediction_id, row, index in zip(outputs["prediction_id"], batch, chosen, strict=True):
            feedback = {"prediction_id": prediction_id, "label": labels[index], "input": row.tolist()}
            status, body = http(url("/feedback/"), json.dumps(feedback).encode(), JSON)
            if status != 200:
                raise RuntimeError(f"feedback answered {status}: {body[:200]!r}")
        sent += BATCH
        state = json.loads(http(url("/models/"))[1])["penguins"]
        if state["active"] != first:
            return finished(url, state, sent, time.perf_counter() - started)
        time.sleep(max(0.0, started + sent / per_second - time.perf_counter()))
    raise RuntimeError(f"no recovered version served within {timeout:.0f} s ({sent} labelled requests)")


JSON = {"Content-Type": "application/json"}
INPUT_NAME = "measurements"  # the penguin model's input tensor (app/models/penguins)


def finished(url: Callable[[str], str], state: dict, sent: int, seconds: float) -> Recovery:
    jobs = json.loads(http(url("/jobs/"))[1])
    job = next(job for job in jobs if job.get("version") == state["active"] and job["model"] == "penguins")

    def moment(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    fine_tune = (moment(job["finished_at"]) - moment(job["started_at"])).total_seconds()
    return Recovery(sent, seconds, fine_tune, state["active"], job["gate_reason"])
