"""The penguin model the Part 1 service keeps in memory: the store's active version, loaded once.

On a fresh clone the store is empty (models/ is not in git): the service then trains on the bundled
data and publishes version 1 itself, through the promotion gate, so it works before anyone runs the
notebook. It does so under the store's training lock and looks again once it holds it, so workers
starting together publish one version, not one each.

It answers as the workshop teaches: the pipeline's own `predict`, on a one-row table with the
columns it was fitted on (scikit-learn checks its input on every call, about a millisecond: nothing
a request waiting on the network notices).
"""

import logging
from dataclasses import dataclass
from typing import Any

from app import promotion
from app.datasets import PENGUIN_FEATURES
from app.models import penguins
from app.store import CorruptModel, ModelNotFound, ModelStore

FALLBACK_PARAMETERS = {"n_neighbors": 11, "trained_by": "app.part1 at start-up: the store was empty"}
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    version: int
    metadata: dict[str, Any]
    pipeline: Any  # the fitted scikit-learn pipeline

    def predict(self, bill_length_mm: float, flipper_length_mm: float) -> str:
        import pandas as pd

        row = pd.DataFrame([[bill_length_mm, flipper_length_mm]], columns=list(PENGUIN_FEATURES))
        return str(self.pipeline.predict(row)[0])


def load_or_publish(store: ModelStore | None = None) -> ServedModel:
    """The store's active version, after publishing one trained on the bundled data if there is none."""
    store = store or ModelStore(penguins.MODEL_NAME)
    served = load_intact(store)
    if served is None:
        with store.training_lock():
            served = load_intact(store)  # another worker may have published while we waited
            if served is None:
                model = penguins.MODEL
                trained = model.train(model.training_data(), model.parameters())
                promotion.publish(model, trained, {"parameters": FALLBACK_PARAMETERS}, store=store)
                served = load_intact(store)
    if served is None:
        raise RuntimeError(
            f"the penguin model just trained in {store.path} was not promoted by the gate: see its metadata.json"
        )
    return check_features(served)


def load_intact(store: ModelStore) -> ServedModel | None:
    """The active version; if its file fails its sha256 check, the newest older version that passes
    (a tampered newest version must not stop the service). CorruptModel when none does."""
    number = store.active()
    if number is None:
        return None
    try:
        return ServedModel(number, store.get(number).metadata, store.load(number, penguins.MODEL.load))
    except CorruptModel as error:
        try:
            number, pipeline = store.load_newest_loadable(penguins.MODEL.load, below=number)
        except ModelNotFound:
            raise error from None
        logger.error("%s; serving version %s, the newest that is intact", error, number)
        return ServedModel(number, store.get(number).metadata, pipeline)


def check_features(served: ServedModel) -> ServedModel:
    features = list(getattr(served.pipeline, "feature_names_in_", []))
    if features != list(PENGUIN_FEATURES):
        raise RuntimeError(
            f"{penguins.MODEL_NAME} version {served.version} takes {features}; this service passes "
            f"{list(PENGUIN_FEATURES)}: activate a version trained on those"
        )
    return served
