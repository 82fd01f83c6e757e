"""The penguin model the Part 1 service keeps in memory: the store's active version, loaded once.

On a fresh clone the store is empty (models/ is not in git): the service then trains on the bundled
data and publishes version 1 itself, so it works before anyone runs the notebook. It does so under
the store's training lock and looks again once it holds it, so workers starting together publish
one version, not one each.
"""

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.datasets import PENGUIN_FEATURES
from app.penguins import MODEL_NAME, ExportedPenguins, load, load_latest, publish, train
from app.store import CorruptModel, ModelNotFound, ModelStore

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

FALLBACK_PARAMETERS = {"n_neighbors": 11, "trained_by": "app.part1 at start-up: the store was empty"}
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    version: int
    metadata: dict[str, Any]
    pipeline: "Pipeline"

    def predict(self, bill_length_mm: float, flipper_length_mm: float) -> str:
        """The species, from the pipeline's own `predict`, as the workshop teaches. It checks its input on
        every call, about a millisecond: nothing a request needs to save (Part 3 serves through ONNX)."""
        import pandas as pd  # here, as in app.penguins: importing it costs a service's start-up seconds

        penguin = pd.DataFrame([[bill_length_mm, flipper_length_mm]], columns=list(PENGUIN_FEATURES))
        return str(self.pipeline.predict(penguin)[0])


def load_or_publish(store: ModelStore | None = None) -> ServedModel:
    """The store's active version, after publishing one trained on the bundled data if there is none."""
    store = store or ModelStore(MODEL_NAME)
    exported = load_intact(store)
    if exported is None:
        with store.training_lock():
            exported = load_intact(store)  # another worker may have published while we waited
            if exported is None:
                # No held-out split here, hence no metrics: the notebook is where the model is evaluated.
                publish(train(), metrics={}, parameters=FALLBACK_PARAMETERS, store=store)
                exported = load_latest(store)
    if exported is None:
        raise RuntimeError(f"the penguin model just published in {store.path} cannot be read back")
    return serve(exported)


def load_intact(store: ModelStore) -> ExportedPenguins | None:
    """The active version; if its file fails its sha256 check, the newest older version that passes
    (a tampered newest version must not stop the service). CorruptModel when none does."""
    try:
        return load_latest(store)
    except CorruptModel as error:
        try:
            number, pipeline = store.load_newest_loadable(load, below=store.active())
        except ModelNotFound:
            raise error from None
        logger.error("%s; serving version %s, the newest that is intact", error, number)
        return ExportedPenguins(number, pipeline, store.get(number).metadata)


def serve(exported: ExportedPenguins) -> ServedModel:
    features = exported.metadata.get("features")
    if features != list(PENGUIN_FEATURES):
        raise RuntimeError(
            f"{MODEL_NAME} version {exported.version} takes {features}; this service passes "
            f"{list(PENGUIN_FEATURES)}: activate a version trained on those"
        )
    return ServedModel(exported.version, exported.metadata, exported.pipeline)
