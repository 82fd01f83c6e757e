"""The penguin classifier as the workshop builds it: a standard scaler and an 11-nearest-neighbours vote
on two measurements, in scikit-learn (the notebook, Part 1 and the service's trainer use it).

The gate judges every version on the same held-out rows (`split`): a model meant for the service is
fitted on the other rows only, or its figures would be measured on penguins it has seen.
"""

from typing import TYPE_CHECKING, Any

from app.datasets import PENGUIN_FEATURES, PENGUIN_TARGET, load_penguins

if TYPE_CHECKING:  # imported where used: pandas and scikit-learn cost seconds at a service's start-up
    import pandas as pd
    from sklearn.pipeline import Pipeline

MODEL_NAME = "penguins"
MODEL_FILE = "model.skops"
HOLDOUT_SHARE = 0.25  # the penguins notebook's split, frozen: every version is measured on it
HOLDOUT_SEED = 42
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


def split(frame: "pd.DataFrame | None" = None) -> tuple["pd.DataFrame", "pd.DataFrame"]:
    """(training rows, holdout rows): stratified and seeded, so always the same rows."""
    from sklearn.model_selection import train_test_split

    frame = load_penguins() if frame is None else frame
    training, holdout = train_test_split(
        frame, test_size=HOLDOUT_SHARE, random_state=HOLDOUT_SEED, stratify=frame[PENGUIN_TARGET]
    )
    return training, holdout


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


def tied_neighbours(pipeline: "Pipeline", measurements) -> Any:
    """Which inputs have a tie for the k-th nearest neighbour (the k-th and k+1-th equally distant).

    For those, which neighbour counts is a matter of order: scikit-learn's KD tree (or argpartition)
    and ONNX's TopK (the lower training row first) may pick differently, and neither is wrong. The
    export check compares every other input; a model with no such ties is compared on all of them.
    """
    import numpy as np

    knn = pipeline.steps[-1][1]
    if not hasattr(knn, "kneighbors") or knn.n_neighbors >= knn.n_samples_fit_:
        return np.zeros(len(measurements), dtype=bool)
    scaled = pipeline[:-1].transform(measurements) if len(pipeline.steps) > 1 else measurements
    distances, _ = knn.kneighbors(np.asarray(scaled), n_neighbors=knn.n_neighbors + 1)
    return np.isclose(distances[:, -2], distances[:, -1], rtol=1e-9, atol=1e-12)
