"""What a model declares: the one contract between a model folder and the generic service.

A model is a package (a folder under app/models/, or any installed package named in
WORKSHOP_MODEL_PACKAGES) whose `MODEL` is an instance of a `Model` subclass, after MLServer's `MLModel`
and KServe's `Model`. It says, once:

- who it is: its `name` (the store's folder, the routes' `{name}`) and its `classes`;
- what one request is: its `input` tensor (Open Inference Protocol datatype and shape, batch first),
  and how that tensor becomes the ONNX graph's input (`onnx_feed`);
- how it trains and fine-tunes (optional: a model with no `parameters` is serve-only, trained
  elsewhere and published as an ONNX file), on which frozen `holdout` the gate judges it, how it is
  saved, loaded and exported to ONNX;
- what drift looks at in its requests (`drift_signals`), and its default gate thresholds.

Everything else (store, gate, export check, serving, jobs, feedback, drift, the Open Inference
Protocol) is generic over these declarations. The serving side calls only the serving half, which
needs NumPy alone; the training half imports its library (Keras, scikit-learn) inside its methods.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

# The Open Inference Protocol's tensor datatypes and their NumPy types (BYTES: Python objects).
DATATYPES: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}
SERVING_FILE = "model.onnx"
Progress = Callable[[int, int, dict[str, float]], None]  # (step done, steps, metrics), e.g. per epoch


@dataclass(frozen=True)
class Tensor:
    """One tensor as the Open Inference Protocol describes it; -1 in `shape` is any size."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(DATATYPES[self.datatype])

    @property
    def row_shape(self) -> tuple[int, ...]:
        """The shape of one example (the batch dimension left out)."""
        return tuple(self.shape[1:])

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class Examples:
    """Labelled examples in a model's input form: `inputs[i]` is one row of its input tensor and
    `labels[i]` the index of its class in the model's `classes`."""

    inputs: np.ndarray
    labels: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return len(self.labels)

    def __add__(self, other: "Examples") -> "Examples":
        return Examples(
            np.concatenate([self.inputs, other.inputs]),
            np.concatenate([self.labels, other.labels]),
            "+".join(filter(None, (self.source, other.source))),
        )


@dataclass(frozen=True)
class Holdout(Examples):
    """The frozen examples every version of a model is judged on, named by the sha256 of their bytes."""

    sha256: str = ""

    @classmethod
    def of(cls, examples: Examples, description: str) -> "Holdout":
        digest = hashlib.sha256()
        for array in (examples.inputs, examples.labels):
            digest.update(np.ascontiguousarray(array).tobytes())
        return cls(examples.inputs, examples.labels, description, digest.hexdigest())


@dataclass(frozen=True)
class Trained:
    """What training returns: the training library's model and its history (e.g. loss per epoch)."""

    model: Any
    history: dict[str, list[float]] = field(default_factory=dict)


class Parameters(BaseModel):
    """What a training job of a model may set; a model declares its own subclass (e.g. epochs)."""

    model_config = ConfigDict(extra="forbid")


class Model:
    """Subclass it once per model; see the module docstring and app/models/ for two examples."""

    name: ClassVar[str]
    classes: ClassVar[tuple[str, ...]]
    input: ClassVar[Tensor]
    description: ClassVar[str] = ""
    feature_names: ClassVar[tuple[str, ...]] = ()  # names of a 2-D input's columns (the drift signals)
    gate_floor: ClassVar[float] = 0.8  # least holdout accuracy to serve (WORKSHOP_GATE_FLOOR__<NAME>)
    gate_margin: ClassVar[float] = 0.02  # how far below the serving version's (WORKSHOP_GATE_MARGIN__<NAME>)
    parameters: ClassVar[type[Parameters] | None] = None  # None: serve-only, never trained here
    fine_tunes: ClassVar[bool] = False  # train(base=...) continues from a version; else a fine-tune retrains
    training_file: ClassVar[str | None] = None  # e.g. "model.keras"; None for a serve-only model
    probabilities_output: ClassVar[int] = -1  # which output of the ONNX graph holds the class probabilities
    training_imports: ClassVar[tuple[str, ...]] = ()  # slow imports a trainer does once at start (e.g. keras)

    # -- serving: NumPy only ----------------------------------------------------------------------
    def onnx_feed(self, inputs: np.ndarray) -> np.ndarray:
        """The ONNX graph's input for a batch of request rows (e.g. pixels -> [0, 1] floats)."""
        return inputs

    def drift_signals(self, inputs: np.ndarray, probabilities: np.ndarray) -> dict[str, np.ndarray]:
        """Numbers per request that drift compares with the holdout's, beside the model's confidence and
        predicted class (which every model gets): by default each named column of a 2-D input."""
        if inputs.ndim == 2 and len(self.feature_names) == inputs.shape[1]:
            return {name: inputs[:, column].astype(np.float64) for column, name in enumerate(self.feature_names)}
        return {}

    @property
    def trainable(self) -> bool:
        return self.parameters is not None

    def class_index(self, label: str) -> int:
        """The index of `label` in `classes` (ValueError naming them when it is not one)."""
        try:
            return self.classes.index(str(label))
        except ValueError:
            raise ValueError(f"{label!r} is not a class of {self.name}; one of {', '.join(self.classes)}") from None

    # -- training: each imports its library inside ------------------------------------------------
    def training_data(self) -> Examples:
        """The base data set a training from scratch learns."""
        raise NotImplementedError(f"{self.name} is serve-only: it is trained elsewhere")

    def holdout(self) -> Holdout:
        """The frozen examples the gate judges every version on (the same ones for every version)."""
        raise NotImplementedError(f"{self.name} has no holdout of its own: publish it with a holdout file")

    def train(self, examples: Examples, parameters: Parameters, base: Any = None, progress: Progress | None = None):
        """A `Trained` model: from scratch, or, for a model that `fine_tunes`, continuing `base`."""
        raise NotImplementedError(f"{self.name} is serve-only: it is trained elsewhere")

    def probabilities(self, model: Any, inputs: np.ndarray) -> np.ndarray:
        """The training library's class probabilities for a batch of rows, (n, len(classes))."""
        raise NotImplementedError

    def save(self, model: Any, folder: Path) -> str:
        """Write the training file into `folder`; returns its name."""
        raise NotImplementedError

    def load(self, path: Path) -> Any:
        """Read a training file written by `save` (refusing one that carries code)."""
        raise NotImplementedError

    def export_onnx(self, model: Any, path: Path) -> None:
        """Write the serving file; the export check (app/onnx_export.py) then compares it with the library."""
        raise NotImplementedError

    def parity_inputs(self) -> np.ndarray:
        """Rows the serving file must answer like the training library before a version is published."""
        return self.holdout().inputs

    def parity_ignored(self, model: Any, inputs: np.ndarray) -> np.ndarray | None:
        """Rows whose answer is legitimately a matter of order (e.g. KNN ties), left out of the parity check."""
        return None

    def library_versions(self) -> dict[str, str]:
        return {"numpy": np.__version__}
