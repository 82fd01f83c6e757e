"""The penguin model: the species of a Palmer penguin from its bill and flipper lengths.

    knn.py    the workshop's scikit-learn pipeline (scaler + 11-nearest-neighbours): build, train, evaluate
    api.py    the workshop's query contract: bounded lengths in, a species out (Parts 1 and 3)
    units.py  lengths with an optional unit ("12cm", "0.5in") in millimetres

A request is one row of two lengths in millimetres (float64); the serving file is the whole pipeline
in ONNX (skl2onnx), its distances computed with CDist.
"""

from typing import Any

import numpy as np
from pydantic import Field

from app.datasets import PENGUIN_FEATURES, PENGUIN_TARGET, load_penguins
from app.modelkit import Examples, Holdout, Parameters, Tensor
from app.models.penguins import knn
from app.models.penguins.knn import MODEL_FILE, MODEL_NAME, build_pipeline, evaluate, features_of, split, train
from app.sklearn_models import SklearnClassifier

__all__ = ["MODEL", "MODEL_FILE", "MODEL_NAME", "build_pipeline", "evaluate", "features_of", "split", "train"]
CLASSES = ("Adelie", "Chinstrap", "Gentoo")


class PenguinParameters(Parameters):
    n_neighbors: int = Field(default=11, ge=1, le=100, description="neighbours that vote")


def examples_of(frame, source: str) -> Examples:
    inputs = frame[list(PENGUIN_FEATURES)].to_numpy(dtype=np.float64)
    labels = np.array([CLASSES.index(species) for species in frame[PENGUIN_TARGET]], dtype=np.int64)
    return Examples(inputs, labels, source)


class Penguins(SklearnClassifier):
    name = MODEL_NAME
    classes = CLASSES
    input = Tensor("measurements", "FP64", (-1, len(PENGUIN_FEATURES)))
    feature_names = PENGUIN_FEATURES
    description = "the species of a penguin from its bill and flipper lengths in millimetres"
    parameters = PenguinParameters
    training_file = MODEL_FILE
    trusted_types = knn.TRUSTED_TYPES

    def build(self, parameters: Parameters) -> Any:
        assert isinstance(parameters, PenguinParameters)
        return build_pipeline(parameters.n_neighbors)

    def training_data(self) -> Examples:
        return examples_of(split()[0], "data/penguins.csv, the rows not held out")

    def holdout(self) -> Holdout:
        return Holdout.of(examples_of(split()[1], ""), "seeded 25% of data/penguins.csv")

    def parity_inputs(self) -> np.ndarray:
        """Every penguin in data/penguins.csv."""
        return load_penguins()[list(PENGUIN_FEATURES)].to_numpy(dtype=np.float64)

    def parity_ignored(self, model: Any, inputs: np.ndarray) -> np.ndarray:
        return knn.tied_neighbours(model, self.frame(inputs))

    def onnx_options(self, model: Any) -> dict:
        # CDist (an ONNX Runtime contrib op) for the distances: many times faster than the default Scan
        # loop (bench/RESULTS.md).
        return {id(model.steps[-1][1]): {"zipmap": False, "optim": "cdist"}}


MODEL = Penguins()
