"""The penguin classifier: a standard scaler and an 11-nearest-neighbours vote on two measurements.

Written once for the notebook, the exercises and the services: build, train, evaluate, predict, and
save/load with skops (which, unlike pickle, only rebuilds the types we name as trusted). `publish`
is the one way a penguin model reaches the store. Beside it:

    api.py    the penguin API's contract: bounded lengths in, a species out (Parts 1 and 3)
    units.py  lengths with an optional unit ("12cm", "0.5in") in millimetres
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app import promotion
from app.datasets import PENGUIN_FEATURES, PENGUIN_TARGET, load_penguins
from app.onnx_export import SERVING_FILE

if TYPE_CHECKING:  # imported where used: pandas and scikit-learn cost seconds at a service's start-up
    import pandas as pd
    from sklearn.pipeline import Pipeline

MODEL_NAME = "penguins"
MODEL_FILE = "model.skops"
# skops refuses to rebuild any type not listed here. The list is fixed in code, never read from the
# file being loaded: trusting what a file says about itself would defeat the check.
TRUSTED_TYPES = [
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.neighbors._kd_tree.KDTree",
]


def build_pipeline(n_neighbors: int = 11) -> "Pipeline":
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline(steps=[("scaler", StandardScaler()), ("knn", KNeighborsClassifier(n_neighbors=n_neighbors))])


def train(
    frame: "pd.DataFrame | None" = None,
    n_neighbors: int = 11,
    features: tuple[str, str] = PENGUIN_FEATURES,
) -> "Pipeline":
    """Fit the pipeline on `frame` (all of the bundled data by default).

    KNeighborsClassifier takes the species names as labels directly: no LabelEncoder is needed, and
    `pipeline.classes_` holds the names.
    """
    if frame is None:
        frame = load_penguins()
    return build_pipeline(n_neighbors).fit(frame[list(features)], frame[PENGUIN_TARGET])


class FastPenguinPredictor:
    """The fitted pipeline's arithmetic in NumPy, for one measurement at a time.

    `Pipeline.predict` validates its input and checks feature names on every call, which costs far
    more than the 11-neighbour vote itself. This does the same arithmetic on arrays taken from the
    fitted pipeline once, and gives the same answers (the tests compare it with scikit-learn's).
    """

    def __init__(self, pipeline: "Pipeline") -> None:
        scaler, knn = pipeline.named_steps["scaler"], pipeline.named_steps["knn"]
        if knn.weights != "uniform" or knn.effective_metric_ != "euclidean":
            raise ValueError("the fast path implements uniform weights and the euclidean metric only")
        self._keep(scaler.mean_, scaler.scale_, knn._fit_X, knn._y, knn.n_neighbors, knn.classes_)

    def _keep(self, mean, scale, points, point_labels, k: int, classes) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.points = np.asarray(points, dtype=np.float64)
        self.point_labels = np.asarray(point_labels)
        self.k = int(k)
        self.classes = [str(name) for name in classes]
        self.n_classes = len(self.classes)

    def predict(self, bill_length_mm: float, flipper_length_mm: float) -> str:
        x = (np.array([bill_length_mm, flipper_length_mm]) - self.mean) / self.scale
        distances = ((self.points - x) ** 2).sum(axis=1)
        # A stable sort keeps scikit-learn's tie-break among equally distant neighbours.
        nearest = np.argsort(distances, kind="stable")[: self.k]
        votes = np.bincount(self.point_labels[nearest], minlength=self.n_classes)
        return self.classes[int(votes.argmax())]  # argmax: the lowest class index wins a tied vote


def features_of(pipeline: "Pipeline") -> list[str]:
    """The columns the pipeline was fitted on (a notebook may pick others than the default two)."""
    return [str(name) for name in getattr(pipeline, "feature_names_in_", PENGUIN_FEATURES)]


def evaluate(pipeline: "Pipeline", frame: "pd.DataFrame") -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, confusion_matrix

    truth = frame[PENGUIN_TARGET]
    predicted = pipeline.predict(frame[features_of(pipeline)])
    classes = list(pipeline.classes_)
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "confusion_matrix": confusion_matrix(truth, predicted, labels=classes).tolist(),
        "n_test": len(frame),
    }


def save(pipeline: "Pipeline", folder: Path) -> str:
    """Write the pipeline into `folder` with skops; returns the file name (the store's save hook)."""
    import skops.io as sio

    sio.dump(pipeline, Path(folder) / MODEL_FILE)
    return MODEL_FILE


def save_with_serving_file(pipeline: "Pipeline", folder: Path) -> str:
    """The .skops file and model.onnx (services serve it), checked against each other on every penguin
    in data/penguins.csv before the version is published (app/onnx_export.py)."""
    from app.onnx_export import export_penguins

    export_penguins(pipeline, folder)
    return save(pipeline, folder)


def load(path: Path) -> "Pipeline":
    import skops.io as sio

    return sio.load(Path(path), trusted=TRUSTED_TYPES)


@dataclass(frozen=True)
class ExportedPenguins:
    version: int
    pipeline: "Pipeline"
    metadata: dict[str, Any]


def library_versions() -> dict[str, str]:
    import sklearn
    import skops

    return {"scikit-learn": sklearn.__version__, "skops": skops.__version__, "numpy": np.__version__}


def predict_species(pipeline: "Pipeline", frame: "pd.DataFrame") -> np.ndarray:
    return np.asarray(pipeline.predict(frame[features_of(pipeline)]), dtype=str)


def publish(
    pipeline: "Pipeline",
    metrics: dict[str, Any],
    parameters: dict[str, Any],
    store=None,
    floor: float | None = None,
    margin: float | None = None,
):
    """Export a trained pipeline as the next version in the store, through the promotion gate: it
    serves only if promoted (see app/promotion.py; call it under `store.training_lock()`). The
    holdout is `promotion.penguin_split`'s: fit on its training rows, or the gate's figures are
    measured on penguins the model has seen. The version carries its serving file (model.onnx);
    app.onnx_export.ServingExportFailed (nothing published) when that cannot be made or disagrees
    with scikit-learn."""
    from app import drift
    from app.onnx_export import penguin_serving
    from app.store import ModelStore

    store = store or ModelStore(MODEL_NAME)
    metadata = {
        "classes": [str(name) for name in pipeline.classes_],
        "features": features_of(pipeline),
        "metrics": metrics,
        "parameters": parameters,
        "libraries": library_versions(),
        "drift_reference": drift.penguin_reference(),  # what live requests are compared with
        **penguin_serving(len(features_of(pipeline))),
    }
    return promotion.publish(store, GATE_KIND, pipeline, json.loads(json.dumps(metadata)), floor, margin)


def load_latest(store=None) -> ExportedPenguins | None:
    """The version the store serves, loaded and checked, or None when there is none."""
    from app.store import ModelStore

    store = store or ModelStore(MODEL_NAME)
    number = store.active()
    if number is None:
        return None
    return ExportedPenguins(number, store.load(number, load), store.get(number).metadata)


# How the promotion gate evaluates, saves and reloads a penguin model; bound once, so the gate keeps
# the real functions even where a test wraps this module's.
GATE_KIND = promotion.ModelKind(
    promotion.penguin_holdout, predict_species, save, load, save_with_serving_file, SERVING_FILE
)
