# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # When to retrain: live accuracy and drift
#
# A model in service is only as good as the requests it is sent look like its training data. This
# notebook runs the Part 3 service in-process (FastAPI's `TestClient`, on a temporary model store) and
# watches the two signals it keeps for that:
#
# - **live accuracy**: clients send the true label of a prediction back (`POST /feedback/` with the
#   answer's `prediction_id`); the service measures each version's accuracy on its newest labels;
# - **drift**: the service compares a window of live requests with a reference each version recorded
#   on its holdout set at publication (two-sample tests: Kolmogorov-Smirnov, chi-squared).
#
# We send ordinary MNIST digits, then digits drawn differently (shifted off centre), watch both signals
# react, and fine-tune on the collected feedback (`POST /train/feedback/`).

# %% tags=["parameters"]
# Parameters (papermill overrides them). WORKSHOP_QUICK_NOTEBOOKS=1, set by the test suite, picks tiny ones.
from app.paths import setting

quick = setting("QUICK_NOTEBOOKS") == "1"
models_dir = None  # None: a temporary folder
train_images = 600 if quick else 3490  # 3490: the bundled training split
epochs = 1 if quick else 3
fine_tune_epochs = 1 if quick else 10
batch = 40  # digits sent per step
steps_in_distribution = 4 if quick else 6
steps_shifted = 5 if quick else 8
shift = 4  # pixels
window = 120 if quick else 160  # drift window: the newest requests compared with the reference
accuracy_floor = 0.8
gate_floor = 0.0 if quick else 0.8  # the promotion gate: a candidate below this holdout accuracy never serves
gate_margin = 0.02  # ... nor one more than this below the serving version's
wrong_epochs = 3  # the fine-tune on wrongly labelled images
good_epochs = 3  # the fine-tune on the same kind of images, rightly labelled
seed = 1 if quick else 0
# quick: a one-epoch model scores too little for the default floor; the margin alone must refuse the wrong labels.

# %% [markdown]
# ## A store with a digit model and a penguin model
#
# `mnist.publish` records the version's drift reference in its metadata: its top-class confidence and
# predicted classes on the bundled holdout, and two input statistics, *ink* (mean pixel intensity) and
# *offset* (how far the ink's centre is from the image centre).

# %%
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("WORKSHOP_MNIST_SOURCE", "bundled")  # offline: never wait on a download

import matplotlib.pyplot as plt
import numpy as np

from app import images, promotion
from app.datasets import bundled_images
from app.models import mnist, penguins
from app.models.mnist import styles as digit_styles
from app.store import ModelStore

models_dir = Path(models_dir or tempfile.mkdtemp(prefix="monitoring-"))
penguin_model = penguins.MODEL
promotion.publish(
    penguin_model,
    penguin_model.train(penguin_model.training_data(), penguin_model.parameters()),
    store=ModelStore("penguins", models_dir),
)

train_x, train_y = bundled_images("train")
result = mnist.train(train_x[:train_images], train_y[:train_images], epochs=epochs, seed=seed)
digit_store = ModelStore("mnist", models_dir)
with digit_store.training_lock():  # every publication holds it: the gate compares with what serves now
    version = promotion.publish(
        mnist.MODEL,
        result,
        {
            "parameters": {"epochs": epochs},
            "data": {"source": "bundled", "n_images": int(min(train_images, len(train_y)))},
        },
        digit_store,
        floor=0.0,
    )  # the first version: this demo serves it whatever it scores
reference = version.metadata["drift_reference"]
print(f"mnist version {version.number}: holdout accuracy {version.metadata['metrics']['accuracy']:.1%}")
print(
    "its drift reference holds:",
    {name: len(values) for name, values in reference["samples"].items()},
    "and predicted-class counts",
    reference["classes"],
)

# %% [markdown]
# ## The service, in-process
#
# Settings are the service's own (`app/part3/settings.py`), here with a small drift window so the
# signals react within a few steps, and a live-accuracy window of one step's labels.

# %%
from fastapi.testclient import TestClient

from app.part3.main import create_app
from app.part3.settings import Settings

settings = Settings(
    models_dir=models_dir,
    epochs=epochs,
    poll_interval=0.2,
    drift_window=window,
    drift_min_window=batch,
    live_window=batch,
    retrain_accuracy_floor=accuracy_floor,
    retrain_min_labels=batch // 2,
    gate_floor={"mnist": gate_floor},
    gate_margin={"mnist": gate_margin},
)
client = TestClient(create_app(settings))
client.__enter__()  # runs the app's start-up: it loads the models from the store
deadline = time.monotonic() + 300
while client.get("/health/ready").status_code != 200 and time.monotonic() < deadline:
    time.sleep(0.2)
print(client.get("/health/ready").json())

# %% [markdown]
# ## Traffic: ordinary digits, then shifted ones
#
# The digits come from the workshop's upload set (MNIST digits the model never saw). After a few
# steps the same kind of digits arrive moved `shift` pixels right and down, as a scanner that crops
# differently would send them. Every prediction gets its true label back as feedback, with its image
# (`POST /feedback/image/`), so the service can later train on it.

# %% tags=["figure"]
pool_x, pool_y = bundled_images("upload")
order = np.random.default_rng(seed).permutation(len(pool_y))
pool_x, pool_y = pool_x[order], pool_y[order]

fig, axes = plt.subplots(2, 8, figsize=(10, 2.8))
for column in range(8):
    axes[0, column].imshow(pool_x[column], cmap="gray_r")
    axes[1, column].imshow(digit_styles.shifted(pool_x[column : column + 1], shift)[0], cmap="gray_r")
for axis in axes.flat:
    axis.set_xticks([]), axis.set_yticks([])
axes[0, 0].set_ylabel("ordinary"), axes[1, 0].set_ylabel("shifted")
plt.show()


# %%
def send_step(pixels, labels):
    """Predict a batch, then send each true label back with its image; returns the step's accuracy."""
    files = [
        ("files", (f"img{i}_{label}.png", images.encode_png(image), "image/png"))
        for i, (image, label) in enumerate(zip(pixels, labels))
    ]
    answer = client.post("/predict/batch/", files=files).json()
    for (_, (name, content, kind)), item in zip(files, answer["results"]):
        sent = client.post(
            "/feedback/image/", data={"prediction_id": item["prediction_id"]}, files={"file": (name, content, kind)}
        )
        assert sent.status_code == 200, sent.text
    return np.mean([int(item["result"]) == label for item, label in zip(answer["results"], labels)])


history = []
for step in range(steps_in_distribution + steps_shifted):
    shifted = step >= steps_in_distribution
    start = (step * batch) % (len(pool_y) - batch)
    pixels, labels = pool_x[start : start + batch], pool_y[start : start + batch]
    send_step(digit_styles.shifted(pixels, shift) if shifted else pixels, labels)
    time.sleep(1.05)  # the signals are computed at most once a second, as for a Prometheus scrape
    listing = client.get("/models/").json()["mnist"]
    serving = listing["serving"]
    live = next(v["live"] for v in listing["versions"] if v["version"] == serving)
    history.append(
        {
            "step": step,
            "shifted": shifted,
            "drift": listing["drift"],
            "live": live,
            "recommended": listing["retrain_recommended"],
        }
    )
    signals = listing["drift"].get("signals", {})
    print(
        f"step {step:2d} {'shifted ' if shifted else 'ordinary'}  live accuracy {live['accuracy']:.0%}  "
        f"drift {listing['drift']['status']:9s}",
        {name: f"{s['p_value']:.2g}" for name, s in signals.items()},
    )

ordinary = [h["drift"]["status"] for h in history if not h["shifted"]]
assert set(ordinary) <= {"no drift", "collecting"}, f"ordinary digits raised drift: {ordinary}"
assert history[-1]["drift"]["status"] == "drift", "the shifted digits should show as drift by the last step"

# %% [markdown]
# ## What the signals said, step by step
#
# Each drift signal's p-value is the probability of a difference at least this large if the window came
# from the reference's distribution. The service calls a signal significant below `alpha / number of
# signals` (Bonferroni: with four signals, one of them falls below `alpha` by chance four times as
# often). Before `drift_min_window` requests there is no signal at all.

# %% tags=["figure"]
steps = [h["step"] for h in history]
first_shifted = steps_in_distribution - 0.5
threshold = next(h["drift"]["threshold"] for h in history if "threshold" in h["drift"])
fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
for signal in ("confidence", "predicted_class", "ink", "offset"):
    values = [max(h["drift"].get("signals", {}).get(signal, {}).get("p_value", np.nan), 1e-12) for h in history]
    top.plot(steps, values, marker="o", label=signal)
top.axhline(threshold, color="red", linestyle="--", label=f"significant below {threshold:.2g}")
top.set_yscale("log"), top.set_ylabel("drift p-value (log; below 1e-12 drawn at 1e-12)"), top.legend(loc="lower left")
top.set_title("Drift of the live requests against the version's reference")
bottom.plot(steps, [h["live"]["accuracy"] for h in history], marker="o", color="black", label="live accuracy")
bottom.axhline(accuracy_floor, color="red", linestyle="--", label=f"floor {accuracy_floor:.0%}")
bottom.set_ylim(0, 1.05), bottom.set_ylabel(f"accuracy on the newest {batch} labels"), bottom.set_xlabel("step")
bottom.legend(loc="lower left")
for axis in (top, bottom):
    axis.axvspan(first_shifted, steps[-1] + 0.5, color="orange", alpha=0.15)
    axis.text(first_shifted + 0.1, axis.get_ylim()[1], " shifted digits", va="top")
plt.tight_layout()
plt.show()

# %%
listing = client.get("/models/").json()["mnist"]
print("retrain_recommended:", listing["retrain_recommended"])
for reason in listing["retrain_reasons"]:
    print(" -", reason)
assert listing["retrain_recommended"], "drift and low live accuracy should recommend retraining"
metrics = [
    line
    for line in client.get("/metrics").text.splitlines()
    if line.startswith(("workshop_drift_p_value", "workshop_live_accuracy", "workshop_retrain_recommended"))
]
print("\n".join(metrics))


# %% [markdown]
# ## Should a new version serve? The promotion gate
#
# Before any fine-tune below serves, the promotion gate measures it on the model's frozen holdout
# (the same images for every version) and promotes it only if its accuracy is at least `gate_floor`
# and no more than `gate_margin` below the serving version's. A candidate that fails is stored, listed
# as `rejected` in `/models/` with the rule that refused it, and never served unless someone activates it
# with `force=true`.
#
# First, a fine-tune on images whose labels are wrong (each digit labelled as the next one), as a buggy
# labelling tool would send them: the job succeeds, the gate refuses its result, and every worker keeps
# answering with the version it had.


# %%
def wait_for(job_url, seconds=900):
    deadline = time.monotonic() + seconds
    while (job := client.get(job_url).json())["status"] not in ("succeeded", "failed") and time.monotonic() < deadline:
        time.sleep(0.5)
    return job


serving_before = client.get("/models/").json()["mnist"]["serving"]
wrong_labels = (pool_y + 1) % 10
files = [
    ("files", (f"img{i}_{label}.png", images.encode_png(image), "image/png"))
    for i, (image, label) in enumerate(zip(pool_x, wrong_labels))
]
accepted = client.post("/train/", files=files, data={"epochs": str(wrong_epochs)}).json()
wrong_job = wait_for(accepted["url"])
print({key: wrong_job.get(key) for key in ("status", "version", "promoted", "gate_reason")})
time.sleep(3 * settings.poll_interval)
serving_now = client.get("/models/").json()["mnist"]["serving"]
print("serving before:", serving_before, " serving now:", serving_now)
assert wrong_job["status"] == "succeeded" and wrong_job["version"] == version.number + 1, wrong_job
assert wrong_job["promoted"] is False and wrong_job["gate_reason"].startswith("holdout accuracy"), wrong_job
assert serving_before == serving_now == version.number, "a rejected version must never serve"

# %% [markdown]
# Then a fine-tune on ordinary digits with their true labels (all but the 200 kept aside for the end):
# it scores within the margin of the serving version, the gate promotes it, and every worker serves it
# within a poll interval.

# %%
serving_before = client.get("/models/").json()["mnist"]["serving"]
files = [
    ("files", (f"img{i}_{label}.png", images.encode_png(image), "image/png"))
    for i, (image, label) in enumerate(zip(pool_x[:-200], pool_y[:-200]))
]
accepted = client.post("/train/", files=files, data={"epochs": str(good_epochs)}).json()
good_job = wait_for(accepted["url"])
print("good labels:", {key: good_job.get(key) for key in ("status", "version", "promoted", "gate_reason")})
deadline = time.monotonic() + 60
while client.get("/models/").json()["mnist"]["serving"] == serving_before and time.monotonic() < deadline:
    time.sleep(0.2)
serving_now = client.get("/models/").json()["mnist"]["serving"]
print("serving before the good fine-tune:", serving_before, " after it:", serving_now)
assert good_job["status"] == "succeeded" and good_job["promoted"] is True, good_job
assert (serving_before, serving_now) == (version.number, good_job["version"]), "the promoted version should serve"

# %% [markdown]
# ## Retrain on the feedback
#
# `POST /train/feedback/` queues a fine-tune of the served version on the images that came back with
# their labels. It is a job like any other (`GET /jobs/{id}`), and the same gate decides whether its result serves
# (`promoted`, `gate_reason` on the job).
#
# Whether its result serves is the gate's call, on two holdouts. It trains on the oldest 70 % of the
# feedback only: the newest 30 % is its *live holdout*, where it meets the serving version on the
# traffic the service answers now (McNemar's exact test on the digits exactly one of them reads
# right). On the frozen holdout of ordinary digits it must stay above the floor and not forget too
# much. Significantly better on live traffic: promoted. Neither better nor worse, or refused by the
# frozen margin while the traffic moved: a *challenger*, stored and never served, which answers a copy
# of live requests in shadow until their labels decide. With this notebook's few labels the frozen
# holdout mostly decides (app/part3/README.md, "The loop closes").

# %%
accepted = client.post("/train/feedback/", data={"epochs": str(fine_tune_epochs)}).json()
print(accepted)
job = wait_for(accepted["url"])
print({key: job.get(key) for key in ("status", "progress", "n_images", "parent", "version", "promoted", "gate_reason")})
assert job["status"] == "succeeded", job
sent = (steps_in_distribution + steps_shifted) * batch
# It trains on the oldest 70 %: the newest share (settings.live_holdout_share) is its live holdout.
trained = sent - int(sent * settings.live_holdout_share)
assert job["n_images"] + job["n_flagged"] == trained, f"{trained} of the {sent} labelled digits, not {job['n_images']}"
new_version = job.get("version")
if new_version is not None:
    print(
        "gate decision recorded in the version:",
        ModelStore("mnist", models_dir).get(new_version).metadata.get("gate", "none (no gate here)"),
    )

# %% tags=["figure"]
# Every version the gate judged, on the same holdout: what it scored, and what the gate decided.
versions = client.get("/models/").json()["mnist"]["versions"]
colours = {"active": "tab:green", "promoted": "tab:blue", "rejected": "tab:red", "challenger": "tab:orange"}
colours["dropped"] = "tab:gray"
plt.figure(figsize=(6, 3.5))
plt.bar(
    [str(v["version"]) for v in versions],
    [v["gate"]["accuracy"] for v in versions],
    color=[colours[v["status"]] for v in versions],
)
plt.axhline(gate_floor, color="black", linestyle="--", label=f"floor {gate_floor:.0%}")
for v in versions:
    plt.text(str(v["version"]), v["gate"]["accuracy"] + 0.02, v["status"], ha="center")
plt.ylim(0, 1.1), plt.xlabel("version"), plt.ylabel("holdout accuracy"), plt.legend(loc="lower right")
plt.title("The promotion gate's decisions")
plt.show()
for v in versions:
    print(f"version {v['version']}: {v['status']:9s} {v['gate']['reason']}")
assert next(v for v in versions if v["version"] == wrong_job["version"])["status"] == "rejected"

# %% tags=["figure"]
deadline = time.monotonic() + 60
while (
    client.get("/models/").json()["mnist"]["serving"] != client.get("/models/").json()["mnist"]["active"]
    and time.monotonic() < deadline
):
    time.sleep(0.2)
served = client.get("/models/").json()["mnist"]["serving"]
fresh_x, fresh_y = pool_x[-200:], pool_y[-200:]  # digits neither version trained on


def accuracy_of(pixels, labels):
    files = [("files", (f"img{i}.png", images.encode_png(image), "image/png")) for i, image in enumerate(pixels)]
    answer = client.post("/predict/batch/", files=files).json()
    return answer["version"], np.mean([int(item["result"]) == label for item, label in zip(answer["results"], labels)])


after = {
    kind: accuracy_of(pixels, fresh_y)
    for kind, pixels in (("ordinary", fresh_x), ("shifted", digit_styles.shifted(fresh_x, shift)))
}
before = {
    "ordinary": history[steps_in_distribution - 1]["live"]["accuracy"],
    "shifted": history[-1]["live"]["accuracy"],
}
print(f"serving version {served}:", {kind: f"{value:.0%}" for kind, (_, value) in after.items()})
positions = np.arange(2)
plt.figure(figsize=(6, 3.5))
plt.bar(positions - 0.2, [before["ordinary"], before["shifted"]], width=0.4, label=f"version {version.number} (live)")
plt.bar(
    positions + 0.2, [after["ordinary"][1], after["shifted"][1]], width=0.4, label=f"version {served} (unseen digits)"
)
plt.xticks(positions, ["ordinary digits", "shifted digits"]), plt.ylim(0, 1), plt.ylabel("accuracy")
plt.title("The first version, and the one the gate left serving"), plt.legend(loc="lower right")
plt.show()

# %%
client.__exit__(None, None, None)  # stops the service's background work

# %% [markdown]
# ## The loop closes by itself
#
# Above, we called `/train/feedback/` and the frozen holdout mostly decided. Now nobody calls
# `/train/`: the service runs with `retrain_policy="fine-tune-on-feedback"`, and the loop goes
# *recommendation → one fine-tune on the feedback (with a replay of the old data) → the gate on both
# holdouts → served*, by itself.
#
# We show it on the penguin model: it is a scikit-learn k-nearest-neighbours model that retrains in
# well under a second with no Keras import in the trainer, so the whole loop fits in this notebook's
# quick run. The loop's code (policy, live holdout, gate, label audit) never looks at what kind of
# model it retrains: the same steps serve the digit model, only slower.
#
# The drift: a client starts sending centimetres as bare numbers (a bill of 40.3 mm arrives as 4.03),
# and the labels it sends back are the true species. Version 1 has never seen such inputs and reads
# them wrong. The service gets a fresh copy of the store (the digit and penguin versions, without the
# feedback and jobs of the sections above), with short intervals so the policy reacts within seconds.

# %%
import shutil

loop_seed = 0
loop_floor = 0.8  # live accuracy under this recommends retraining
loop_labels = 150  # labels on the serving version before its live accuracy can recommend it
loop_batch = 40  # penguins per request
loop_wait = 300  # seconds: a generous limit for each wait (a shared machine), never a speed claim
loop_settings = {
    "epochs": epochs,
    "poll_interval": 0.2,
    "retrain_policy": "fine-tune-on-feedback",
    "retrain_check_interval": 0.2,
    "retrain_min_interval": 1.0,
    "retrain_min_labels": loop_labels,
    "retrain_accuracy_floor": loop_floor,
    "live_window": loop_labels,
    "drift_window": 10_000,  # the trigger here is the live accuracy (the drift signals are shown above)
    "drift_min_window": 10_000,
}
template_dir = Path(tempfile.mkdtemp(prefix="monitoring-loop-")) / "template"
# The versions only: the sections above left feedback and jobs in the store's SQLite files.
shutil.copytree(models_dir, template_dir, ignore=shutil.ignore_patterns(".*.sqlite3*"))


def start_service(name):
    """The service in-process, with the policy on, on a fresh copy of the template store."""
    store_copy = shutil.copytree(template_dir, template_dir.parent / name)
    started = TestClient(create_app(Settings(models_dir=store_copy, **loop_settings)))
    started.__enter__()  # the lifespan: loads the models, starts the trainer and the policy
    deadline = time.monotonic() + loop_wait
    while started.get("/health/ready").status_code != 200:
        assert time.monotonic() < deadline, "the service did not become ready"
        time.sleep(0.2)
    return started


def poll(condition, what):
    """Ask `condition` every 0.2 s until it answers something truthy; fail after `loop_wait` seconds."""
    deadline = time.monotonic() + loop_wait
    while not (found := condition()):
        assert time.monotonic() < deadline, f"gave up waiting until {what}"
        time.sleep(0.2)
    return found


def send_penguins(service, rows, labels, feedback=True):
    """One Open Inference Protocol request; each true label goes back as feedback with its input.
    Returns the share answered right and the version that answered."""
    tensor = {"name": penguin_model.input.name, "shape": list(rows.shape), "datatype": penguin_model.input.datatype}
    response = service.post("/v2/models/penguins/infer", json={"inputs": [{**tensor, "data": rows.tolist()}]})
    assert response.status_code == 200, response.text
    answer = response.json()
    outputs = {output["name"]: output["data"] for output in answer["outputs"]}
    truth = [penguin_model.classes[label] for label in labels]
    if feedback:
        for prediction_id, row, label in zip(outputs["prediction_id"], rows, truth):
            sent = {"prediction_id": prediction_id, "label": label, "input": row.tolist()}
            assert service.post("/feedback/", json=sent).status_code == 200
    right = np.mean([said == label for said, label in zip(outputs["label"], truth)])
    return float(right), int(answer["model_version"])


def penguins_now(service):
    return service.get("/models/").json()["penguins"]


loop_client = start_service("loop")
print("serving:", penguins_now(loop_client)["serving"], " policy:", penguins_now(loop_client)["retrain_policy"])

# %% [markdown]
# First ordinary penguins (the holdout's first 40, with their labels), then 200 labelled penguins in
# centimetres. Then we only watch `/models/`: its `retrain_policy` entry says what the policy is doing.

# %%
ordinary_data, penguin_holdout = penguin_model.training_data(), penguin_model.holdout()
loop_order = np.random.default_rng(loop_seed).permutation(len(ordinary_data))
drifted_rows = ordinary_data.inputs[loop_order] / 10  # centimetres, as bare numbers
drifted_labels = ordinary_data.labels[loop_order]

timeline = []  # one entry per request: what the client saw
right, answered_by = send_penguins(
    loop_client, penguin_holdout.inputs[:loop_batch], penguin_holdout.labels[:loop_batch]
)
timeline.append({"traffic": "ordinary", "accuracy": right, "version": answered_by})
loop_started = time.monotonic()
for start in range(0, 200, loop_batch):
    rows, labels = drifted_rows[start : start + loop_batch], drifted_labels[start : start + loop_batch]
    right, answered_by = send_penguins(loop_client, rows, labels)
    timeline.append({"traffic": "drifted", "accuracy": right, "version": answered_by})
for entry in timeline:
    print(f"{entry['traffic']:8s} answered by version {entry['version']}: {entry['accuracy']:.0%} right")

policy_states = []


def recovered():
    """Version 2 active and served, its job finished; each new policy state is printed on the way."""
    state = penguins_now(loop_client)
    policy = state["retrain_policy"]
    if not policy_states or policy_states[-1] != policy:
        policy_states.append(policy)
        print(f"{time.monotonic() - loop_started:5.1f} s  serving {state['serving']}  policy {policy}")
    finished = policy["state"] != "training"
    return state if state["active"] == state["serving"] == 2 and finished else None


loop_state = poll(recovered, "the policy's fine-tune serves")
loop_seconds = time.monotonic() - loop_started
print(f"version 2 serves {loop_seconds:.0f} s after the first drifted request")

# %% [markdown]
# What decided: the new version's `gate` entry in `/models/` keeps both holdouts' figures. On the
# frozen holdout (ordinary penguins) it must stay above the floor and not forget; on the live holdout
# (the newest labelled feedback, which its fine-tune never trained on) it meets version 1 on the same
# rows, and McNemar's exact test says whether it is better by more than chance.

# %%
from workshop.notebook import claim

new_entry = loop_state["versions"][-1]
new_gate = new_entry["gate"]
(loop_job,) = loop_client.get("/jobs/").json()
print("gate:", {key: new_gate.get(key) for key in ("decision", "rule", "accuracy", "active_accuracy", "reason")})
print("live holdout:", new_gate["live"])
with claim("the policy's fine-tune, which nobody asked for, was promoted by the gate on the live holdout"):
    assert (new_entry["version"], new_entry["status"], new_gate["decision"]) == (2, "active", "promoted")
    assert loop_job["kind"] == "fine-tune" and loop_job["retrain_reasons"], loop_job
    assert new_gate["rule"] == "live" and "significantly better" in loop_job["gate_reason"], loop_job["gate_reason"]
with claim("its gate entry records both holdouts' figures: frozen above the floor, live better by McNemar's test"):
    live_figures = new_gate["live"]
    assert new_gate["accuracy"] >= loop_floor  # the frozen holdout: ordinary penguins not forgotten
    assert live_figures["n"] >= settings.gate_live_min_labels
    assert live_figures["after"] == new_entry["feedback"]["trained_through"]  # labels it never trained on
    assert live_figures["first_accuracy"] > live_figures["second_accuracy"] and live_figures["p_better"] < 0.05

# %% [markdown]
# Recovered? New penguins of the drifted kind, which no version saw in any form (the holdout in
# centimetres), and ordinary ones.

# %%
for start in range(0, len(penguin_holdout), loop_batch):
    rows = penguin_holdout.inputs[start : start + loop_batch] / 10
    right, answered_by = send_penguins(loop_client, rows, penguin_holdout.labels[start : start + loop_batch])
    timeline.append({"traffic": "after", "accuracy": right, "version": answered_by})
after_drifted = np.mean([entry["accuracy"] for entry in timeline if entry["traffic"] == "after"])
after_ordinary, _ = send_penguins(loop_client, penguin_holdout.inputs, penguin_holdout.labels, feedback=False)
during_drifted = np.mean([entry["accuracy"] for entry in timeline if entry["traffic"] == "drifted"])
print(
    f"live accuracy: before {timeline[0]['accuracy']:.0%} (ordinary), during the drift {during_drifted:.0%}, "
    f"after {after_drifted:.0%} on unseen drifted penguins; ordinary ones now {after_ordinary:.0%}"
)
with claim("live accuracy on unseen drifted penguins is back above the floor, and ordinary ones are still right"):
    assert during_drifted < loop_floor <= after_drifted
    assert after_ordinary >= 0.95

# %% tags=["figure"]
loop_versions = penguins_now(loop_client)["versions"]
fig, (left, right_axis) = plt.subplots(1, 2, figsize=(11, 3.8))
kinds = {"ordinary": "tab:green", "drifted": "tab:red", "after": "tab:blue"}
left.bar(
    range(len(timeline)),
    [entry["accuracy"] for entry in timeline],
    color=[kinds[entry["traffic"]] for entry in timeline],
)
for index, entry in enumerate(timeline):
    left.text(index, entry["accuracy"] + 0.02, f"v{entry['version']}", ha="center")
left.axhline(loop_floor, color="black", linestyle="--", label=f"floor {loop_floor:.0%}")
for traffic, colour in kinds.items():  # one legend entry per kind of traffic
    left.bar([0], [0], color=colour, label={"after": "drifted, unseen, after recovery"}.get(traffic, traffic))
left.set_xlabel(f"request ({loop_batch} penguins each; above each bar the version that answered)")
left.set_ylabel("share answered right"), left.set_ylim(0, 1.35), left.legend(loc="upper center", ncol=2)
left.set_title("Live accuracy, and the version that answered")
judged = [v for v in loop_versions if v["gate"].get("live")]
positions = np.arange(len(loop_versions))
right_axis.bar(positions - 0.2, [v["gate"]["accuracy"] for v in loop_versions], width=0.4, label="frozen holdout")
right_axis.bar(
    [positions[loop_versions.index(v)] + 0.2 for v in judged],
    [v["gate"]["live"]["first_accuracy"] for v in judged],
    width=0.4,
    label="live holdout",
)
for v in judged:  # the serving version's figure on the same live rows
    right_axis.plot(
        positions[loop_versions.index(v)] + 0.2, v["gate"]["live"]["second_accuracy"], "k_", markersize=25, mew=2
    )
right_axis.plot([], [], "k_", markersize=12, mew=2, label="live holdout, the version it replaced")
right_axis.set_xticks(positions, [f"v{v['version']}\n{v['status']}" for v in loop_versions])
right_axis.set_ylim(0, 1.35), right_axis.set_ylabel("accuracy"), right_axis.legend(loc="upper center")
right_axis.set_title("The gate's two figures per version")
plt.tight_layout()
plt.show()
loop_client.__exit__(None, None, None)

# %% [markdown]
# ### A poisoned relabelling never serves
#
# A new fresh copy, and labels that lie: 200 ordinary penguins sent back all labelled Gentoo. Taken at
# their word, they would make version 1's live accuracy fall as a drift does, and the policy would act.
# But these inputs look like the frozen holdout, where version 1 is sure of its answers and rarely
# wrong; the label audit finds far more contradictions than that allows, flags them in `/models/`
# (`labels`), and leaves them out of training, of the live holdout and of live accuracy. So the policy
# sees no reason to retrain (had it one, a fine-tune would learn from the unflagged labels only, and
# the gate would judge it like any candidate); whatever serves must read ordinary penguins as they are.

# %%
poison_client = start_service("poisoned")
gentoo = penguin_model.classes.index("Gentoo")
for start in range(0, 200, loop_batch):
    rows = ordinary_data.inputs[start : start + loop_batch]
    send_penguins(poison_client, rows, np.full(len(rows), gentoo))


def settled():
    """Every label is in: once the audit has judged them and no job runs, the policy has decided."""
    state = penguins_now(poison_client)
    jobs = poison_client.get("/jobs/").json()
    judged = state["labels"]["status"] == "flagged"
    done = all(job["status"] in ("succeeded", "failed") for job in jobs)
    return (state, jobs) if judged and done and state["retrain_policy"]["state"] != "training" else None


poison_state, poison_jobs = poll(settled, "the policy decided on the relabelled feedback")
poll(lambda: (s := penguins_now(poison_client))["serving"] == s["active"], "every worker serves the active version")
print("labels:", poison_state["labels"]["detail"])
print("policy:", poison_state["retrain_policy"])
for job in poison_jobs:
    print("job:", {key: job.get(key) for key in ("kind", "status", "n_images", "n_flagged", "version", "gate_reason")})
moved = penguin_holdout.labels != gentoo
serving_right, serving_version = send_penguins(
    poison_client, penguin_holdout.inputs, penguin_holdout.labels, feedback=False
)
as_poisoned, _ = send_penguins(
    poison_client, penguin_holdout.inputs[moved], np.full(moved.sum(), gentoo), feedback=False
)
with claim("the relabelling is flagged in /models/, and no fine-tune learns from a flagged label"):
    assert poison_state["labels"]["status"] == "flagged" and poison_state["labels"]["n_flagged"] > 0
    for job in poison_jobs:  # a fine-tune, if any, on the labels the audit did not flag only
        assert job["n_flagged"] > 0 and job["n_images"] + job["n_flagged"] <= 200, job
with claim("the version serving reads ordinary penguins as they are, never as the relabelling says"):
    print(f"version {serving_version}: {serving_right:.0%} right, {as_poisoned:.0%} 'Gentoo' as the labels said")
    assert serving_right >= 0.95 and as_poisoned <= 0.05
poison_client.__exit__(None, None, None)

# %% [markdown]
# ## What to tune
#
# - `WORKSHOP_DRIFT_WINDOW` and `WORKSHOP_DRIFT_MIN_WINDOW`: a larger window sees smaller shifts, later;
# - `WORKSHOP_DRIFT_ALPHA`: how often ordinary traffic may raise a false alarm;
# - `WORKSHOP_RETRAIN_ACCURACY_FLOOR` and `WORKSHOP_RETRAIN_MIN_LABELS`: what accuracy is too low, on how
#   many labels;
# - `WORKSHOP_RETRAIN_POLICY=fine-tune-on-feedback` queues this fine-tune by itself when retraining is
#   recommended (at most one at a time, at most every `WORKSHOP_RETRAIN_MIN_INTERVAL` seconds).
#
# The Part 3 README's "When to retrain" section has the details.
