"""Read the fitted penguin KNN's arrays from its skops file without importing scikit-learn.

Why: a service needs only the arrays behind `penguins.FastPenguinPredictor`, and importing
scikit-learn (with the SciPy and pandas it pulls in) took 3 to 4.5 s of Part 3's start-up, a third
of it (measured, bench/RESULTS.md). A skops file is a zip: `schema.json` describes the object tree,
and each array is an `.npy` member. This reads exactly the tree `penguins.train` fits (a Pipeline of
a StandardScaler "scaler" and a uniform, euclidean KNeighborsClassifier "knn", on the two default
features) and returns None for anything else: the caller then loads the file with skops, as before.

Nothing here rebuilds an object: it reads JSON, and `.npy` arrays with `allow_pickle=False`.
"""

import json
import zipfile
from pathlib import Path

import numpy as np

from app.datasets import PENGUIN_FEATURES
from app.penguins import FastPenguinPredictor

SKOPS_PROTOCOL = 2  # the schema layout this reader knows; another one takes the skops path
PIPELINE = ("sklearn.pipeline", "Pipeline")
SCALER = ("sklearn.preprocessing._data", "StandardScaler")
KNN = ("sklearn.neighbors._classification", "KNeighborsClassifier")


class Unexpected(Exception):
    """The file is not the tree this reader knows."""


def read_fast_predictor(path: Path) -> FastPenguinPredictor | None:
    """The predictor from the file's arrays, or None when the file is not the usual pipeline."""
    try:
        with zipfile.ZipFile(path) as archive:
            return _read(archive)
    except (Unexpected, KeyError, IndexError, TypeError, ValueError, OSError, zipfile.BadZipFile):
        return None  # json.JSONDecodeError is a ValueError


def _read(archive: zipfile.ZipFile) -> FastPenguinPredictor:
    root = json.loads(archive.read("schema.json"))
    if root.get("protocol") != SKOPS_PROTOCOL:
        raise Unexpected(f"skops protocol {root.get('protocol')}")
    steps = _attributes(root, PIPELINE)["steps"]
    named = {_value(archive, step["content"][0]): step["content"][1] for step in _items(steps, "ListNode")}
    if list(named) != ["scaler", "knn"]:
        raise Unexpected(f"steps {list(named)}")
    scaler, knn = _attributes(named["scaler"], SCALER), _attributes(named["knn"], KNN)

    def value(attributes: dict, name: str):
        return _value(archive, attributes[name])

    if not (value(scaler, "with_mean") and value(scaler, "with_std")):
        raise Unexpected("a scaler that does not centre and scale")
    if [str(name) for name in value(scaler, "feature_names_in_")] != list(PENGUIN_FEATURES):
        raise Unexpected("other features")
    if value(knn, "weights") != "uniform" or value(knn, "effective_metric_") != "euclidean":
        raise Unexpected("weights or metric")
    points, labels, classes = value(knn, "_fit_X"), value(knn, "_y"), value(knn, "classes_")
    if points.ndim != 2 or points.shape[1] != len(PENGUIN_FEATURES) or labels.shape != points.shape[:1]:
        raise Unexpected("array shapes")
    if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= len(classes):
        raise Unexpected("labels")
    return FastPenguinPredictor.from_arrays(
        value(scaler, "mean_"), value(scaler, "scale_"), points, labels, value(knn, "n_neighbors"), classes
    )


def _attributes(node: dict, kind: tuple[str, str]) -> dict:
    if (node["__module__"], node["__class__"], node["__loader__"]) != (*kind, "ObjectNode"):
        raise Unexpected(f"{node['__module__']}.{node['__class__']}")
    return node["content"]["content"]


def _items(node: dict, loader: str) -> list:
    if node["__loader__"] != loader:
        raise Unexpected(node["__loader__"])
    return node["content"]


def _value(archive: zipfile.ZipFile, node: dict):
    """A JSON value or an array; any other node is unexpected here."""
    loader = node["__loader__"]
    if loader == "JsonNode":
        return json.loads(node["content"])
    if loader == "NdArrayNode" and node["type"] == "numpy":
        with archive.open(node["file"]) as member:
            return np.load(member, allow_pickle=False)
    if loader == "NdArrayNode" and node["type"] == "json":
        return np.array([_value(archive, item) for item in node["content"]])
    raise Unexpected(loader)
