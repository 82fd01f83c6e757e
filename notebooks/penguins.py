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
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Penguin species from two measurements
#
# The model behind Part 1 of the workshop: a standard scaler and an 11-nearest-neighbours vote that tell an
# Adélie, a Chinstrap and a Gentoo penguin apart by the length of their bill and flipper
# ([Palmer penguins](https://allisonhorst.github.io/palmerpenguins/), `data/penguins.csv`).
#
# This notebook trains it, measures it on penguins it did not see, draws what it learnt, and **publishes** it
# to the model store (`models/penguins/<version>/`), where `app/part1` serves it from.
#
# - Run it interactively: `uv run jupyter lab notebooks/penguins.ipynb`.
# - Run it with other parameters: `uv run papermill notebooks/penguins.ipynb /tmp/out.ipynb -p n_neighbors 7`.
# - Before committing it: `uv run jupyter nbconvert --clear-output --inplace notebooks/penguins.ipynb`
#   (notebooks are committed without outputs; `tests/test_notebooks_clean.py` checks it).
#
# The scikit-learn code lives in `app/models/penguins/`, shared with the exercises and the services: this notebook
# calls it rather than repeating it.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.inspection import DecisionBoundaryDisplay
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import train_test_split

from app import promotion
from app.datasets import PENGUIN_TARGET, load_penguins
from app.modelkit import Trained
from app.models.penguins import MODEL, MODEL_NAME, evaluate, train
from app.onnx_serving import ServingModel
from app.paths import models_location
from app.store import ModelStore

# %% [markdown]
# ## Parameters
#
# The next cell is tagged `parameters`: papermill replaces these values when it runs the notebook
# (`-p name value`), so the tests can train a small variant into a temporary store.

# %% tags=["parameters"]
n_neighbors = 11  # the workshop's k
features = ["bill_length_mm", "flipper_length_mm"]  # the services ask for these two
test_size = 0.25  # share of the penguins held out to measure the model
random_state = 42  # seeds the split, so a rerun gives the same figures
models_dir = str(models_location())  # $WORKSHOP_MODELS_URL (s3://...), else $WORKSHOP_MODELS_DIR, else models/

# %% [markdown]
# ## The data
#
# 342 penguins with both measurements (the two rows lacking them are dropped). Long flippers set the Gentoos
# apart, short bills the Adélies; the two measurements together separate all three species, nearly.

# %%
penguins = load_penguins()
colours = dict(zip(sorted(penguins[PENGUIN_TARGET].unique()), ["tab:blue", "tab:orange", "tab:green"]))
print(penguins[PENGUIN_TARGET].value_counts().to_string())
penguins[[*features, PENGUIN_TARGET]].head()

# %% tags=["figure"]
fig, ax = plt.subplots(figsize=(6, 4.5))
for species, group in penguins.groupby(PENGUIN_TARGET):
    ax.scatter(group[features[0]], group[features[1]], label=species, s=14, alpha=0.8, color=colours[species])
ax.set(xlabel=features[0], ylabel=features[1], title="The penguins")
ax.legend()
plt.show()

# %% [markdown]
# ## Train on one part, measure on the other
#
# The split is **stratified**: each species keeps its share in both parts (Chinstraps are only a fifth of the
# data; an unlucky random split could leave few of them to test on).

# %%
train_set, test_set = train_test_split(
    penguins, test_size=test_size, random_state=random_state, stratify=penguins[PENGUIN_TARGET]
)
pipeline = train(train_set, n_neighbors=n_neighbors, features=tuple(features))
metrics = evaluate(pipeline, test_set)
print(f"trained on {len(train_set)} penguins;", end=" ")
print(f"accuracy on {metrics['n_test']} held-out penguins: {metrics['accuracy']:.1%}")

# %% tags=["figure"]
ConfusionMatrixDisplay(np.array(metrics["confusion_matrix"]), display_labels=pipeline.classes_).plot(colorbar=False)
plt.title("Held-out penguins: true species (rows) against predicted")
plt.show()

# %% [markdown]
# The decision boundary: the species the model answers for every pair of measurements, with the held-out
# penguins on top (a cross marks a wrong answer). Far from the data the model still answers: the services
# refuse measurements no penguin has (see `app/models/penguins/api.py`).

# %% tags=["figure"]
fig, ax = plt.subplots(figsize=(6, 4.5))
DecisionBoundaryDisplay.from_estimator(
    pipeline,
    penguins[features],
    response_method="predict",
    grid_resolution=200,
    ax=ax,
    multiclass_colors=[colours[species] for species in pipeline.classes_],
    alpha=0.25,
)
wrong = pipeline.predict(test_set[features]) != test_set[PENGUIN_TARGET]
for species, group in test_set.groupby(PENGUIN_TARGET):
    x, y = group[features[0]], group[features[1]]
    ax.scatter(x, y, label=species, s=16, color=colours[species], edgecolor="k", linewidth=0.3)
x, y = test_set.loc[wrong, features[0]], test_set.loc[wrong, features[1]]
ax.scatter(x, y, marker="x", c="k", s=40, label=f"wrong ({wrong.sum()})")
ax.set(xlabel=features[0], ylabel=features[1], title=f"{n_neighbors}-nearest neighbours")
ax.legend()
plt.show()

# %% [markdown]
# ## Export: publish the model through the promotion gate
#
# The held-out accuracy measures the *recipe* (scale, then a vote of the k nearest penguins) on penguins it has not
# seen. We export the model fitted on the training split, not refitted on all the penguins: `publish` puts every
# version through the **promotion gate** (`app/promotion.py`), which measures it on one frozen holdout, the same
# seeded 25 % for every version (with this notebook's default `test_size` and `random_state`, the very penguins held
# out above). A model refitted on all of them would be graded on penguins it has seen. The gate promotes the version
# (every service then serves it) only if its accuracy reaches a floor and is within a margin of the version served
# now; otherwise it is stored but not served. The decision and its figures are in the metadata, under `gate`.
#
# `publish` writes the model with skops (which rebuilds only the types `app/models/penguins/` lists as trusted, unlike
# pickle) and a `metadata.json` (version, classes, features, metrics, parameters, library versions, sha256, gate)
# into a new numbered folder, renamed into place only once complete. It runs under the store's training lock, so
# no other training decides against the same served version at the same time.

# %%
# The service's penguin model takes bill and flipper lengths (app/models/penguins): publish a pipeline on those.
assert tuple(features) == MODEL.feature_names, (
    f"the service takes {MODEL.feature_names}; this pipeline takes {features}"
)
store = ModelStore(MODEL_NAME, root=models_dir)
parameters = {"n_neighbors": n_neighbors, "features": features, "test_size": test_size, "random_state": random_state}
with store.training_lock():  # the gate judges it against the version that serves, which cannot change meanwhile
    version = promotion.publish(
        MODEL,
        Trained(pipeline),
        {
            "metrics": {**metrics, "n_train": len(train_set), "evaluated_on": "stratified held-out split"},
            "parameters": parameters,
        },
        store=store,
    )
gate = version.metadata["gate"]
print(f"published {MODEL_NAME} version {version.number} in {version.path}")
print(f"promotion gate: {gate['decision']} ({gate['reason']})")
{key: version.metadata[key] for key in ("version", "classes", "features", "libraries", "sha256")}

# %% [markdown]
# Load it back the way a service does (the sha256 is checked first) and make sure it answers as the model
# we trained. `store.active()` is the version every service serves: this one, unless the gate rejected it.

# %%
print(f"the store serves version {store.active()}")
assert store.active() == version.number or gate["decision"] == "rejected"
reloaded = store.load(version.number, MODEL.load)
sample = penguins.sample(20, random_state=0)[features]
assert (reloaded.predict(sample) == pipeline.predict(sample)).all()
pd.DataFrame({**sample.to_dict("list"), "predicted": reloaded.predict(sample)}).head()

# %% [markdown]
# ## What this notebook promises
#
# The test suite runs this notebook (nbval) and fails if any of these stops being true, whatever the parameters:
# the version records the run that made it, and a service loading it answers as the workshop expects.

# %%
metadata = version.metadata
assert metadata["classes"] == ["Adelie", "Chinstrap", "Gentoo"], metadata["classes"]
assert metadata["features"] == features and metadata["parameters"] == parameters, metadata
assert {"scikit-learn", "skops", "numpy"} <= set(metadata["libraries"]), metadata["libraries"]
held_out = math.ceil(test_size * len(penguins))  # scikit-learn rounds the held-out share up
confusion = metadata["metrics"]["confusion_matrix"]
assert metadata["metrics"]["n_test"] == sum(map(sum, confusion)) == held_out, metadata["metrics"]
assert metadata["metrics"]["n_train"] + metadata["metrics"]["n_test"] == len(penguins)
assert 0.8 < metadata["metrics"]["accuracy"] <= 1, metadata["metrics"]["accuracy"]
workshop_penguin = pd.DataFrame({"bill_length_mm": [40.3], "flipper_length_mm": [195.0]})
assert reloaded.predict(workshop_penguin[features])[0] == "Adelie"
serving = store.load_serving(version.number, lambda path: ServingModel(path, MODEL))  # what Part 3 serves
assert serving.predict([[40.3, 195.0]]) == ["Adelie"]
print("every promise holds")
