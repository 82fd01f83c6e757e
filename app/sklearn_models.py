"""A model that is a scikit-learn pipeline ending in a classifier: the `Model` declaration's training
half written once for all of them (one of the workshop's two models, and a practitioner's own).

A subclass says what `Model` asks (name, classes, input, feature names, holdout...) and builds its
pipeline in `build(parameters)`; this class fits it on the class names (so `pipeline.classes_` are the
names, and the pipeline answers them), saves it with skops (which rebuilds only the types it is told
to trust, unlike pickle) and exports it with skl2onnx (plain label and probability tensors, no
ZipMap). scikit-learn orders classes by sorting them, so `classes` are declared sorted.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from app.modelkit import Examples, Model, Parameters, Progress, Trained

if TYPE_CHECKING:
    import pandas as pd


class SklearnClassifier(Model):
    training_file = "model.skops"
    trusted_types: ClassVar[list[str]] = []  # types skops may rebuild beyond its own safe list

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        classes = getattr(cls, "classes", None)
        if classes is not None and list(classes) != sorted(classes):
            raise TypeError(
                f"{cls.__name__}.classes must be sorted, as scikit-learn orders a classifier's classes: "
                f"{tuple(sorted(classes))}"
            )

    def build(self, parameters: Parameters) -> Any:
        """A new, unfitted pipeline (or estimator) for these parameters."""
        raise NotImplementedError

    def frame(self, inputs: np.ndarray) -> "pd.DataFrame":
        """Rows as a table with the feature names, as the pipeline is fitted and asked."""
        import pandas as pd

        return pd.DataFrame(np.asarray(inputs, dtype=self.input.dtype), columns=list(self.feature_names))

    def train(self, examples: Examples, parameters: Parameters, base: Any = None, progress: Progress | None = None):
        names = np.asarray(self.classes)[np.asarray(examples.labels, dtype=np.int64)]
        pipeline = self.build(parameters).fit(self.frame(examples.inputs), names)
        if [str(name) for name in pipeline.classes_] != list(self.classes):
            raise ValueError(
                f"{self.name}: the examples hold the classes {list(pipeline.classes_)}; training needs all of "
                f"{list(self.classes)}, in that order"
            )
        accuracy = float(np.mean(pipeline.predict(self.frame(examples.inputs)) == names))
        if progress is not None:
            progress(1, 1, {"accuracy": accuracy})
        return Trained(pipeline, {"accuracy": [accuracy]})

    def probabilities(self, model: Any, inputs: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict_proba(self.frame(inputs)))

    def save(self, model: Any, folder: Path) -> str:
        import skops.io as sio

        assert self.training_file is not None
        sio.dump(model, Path(folder) / self.training_file)
        return self.training_file

    def load(self, path: Path) -> Any:
        import skops.io as sio

        return sio.load(Path(path), trusted=self.trusted_types)

    def onnx_options(self, model: Any) -> dict:
        """skl2onnx options by estimator id; by default the classifier answers tensors, not a ZipMap."""
        return {id(model.steps[-1][1] if hasattr(model, "steps") else model): {"zipmap": False}}

    def export_onnx(self, model: Any, path: Path) -> None:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

        tensor_type = DoubleTensorType if self.input.datatype == "FP64" else FloatTensorType
        onnx_model = convert_sklearn(
            model,
            initial_types=[(self.input.name, tensor_type([None, *self.input.row_shape]))],
            options=self.onnx_options(model),
        )
        Path(path).write_bytes(onnx_model.SerializeToString())

    def library_versions(self) -> dict[str, str]:
        import sklearn
        import skops

        return {"scikit-learn": sklearn.__version__, "skops": skops.__version__, "numpy": np.__version__}
