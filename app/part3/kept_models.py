"""The models a worker keeps in memory, and their refresh from the store.

Requests never load from disk: they read the kept (version, model) pair, one attribute read, so a
request always reports the version of the model that answered it. A background refresher calls
`refresh()` every few seconds; it compares the store's active version with the kept one and, when
they differ, loads the new version's serving file (`model.onnx`, sha256 checked by the store) into
ONNX Runtime (app/onnx_serving.py), warms it with one prediction and swaps the pair. A version published
before serving files existed has none until the trainer side exports one (training_job.py
--export-missing, or the first start's job): meanwhile the worker serves the newest version that
has one, and says so (`waiting`). Every worker does this on its own, which is how a version published by any process
(another worker, another container on the same volume, the notebook) reaches all of them.

Beside each model's champion (what serves) a worker keeps its challenger, if it has one: the newest
version in shadow (the gate's "challenger", neither promoted nor dropped since) newer than the active
one, loaded from its serving file and swapped the same way. It never answers a client: the shadow
scorer (shadow_queue.py) runs it on copies of the requests.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import registry
from app.modelkit import Model
from app.onnx_serving import ServingModel
from app.storage.store_errors import StoreUnavailable
from app.store import ModelNotFound, ModelStore, in_shadow

log = logging.getLogger(__name__)


def needs_first_models(location: Path | str, cache: Path | None = None) -> bool:
    """Whether a trainable model has no version, or a version has no serving file: then a worker queues
    the "initial" job, and the trainer (training_job.py) trains or exports what is missing. (A serve-only
    model waits for its publisher: nothing here can train it.)"""
    for model in registry.models().values():
        store = ModelStore(model.name, location, cache)
        if model.trainable and (store.latest() is None or len(store.servable()) < len(store.versions())):
            return True
    return False


@dataclass(frozen=True)
class Kept:
    version: int
    model: Any


def loader_of(model: Model) -> Callable[[Path], ServingModel]:
    """Opens a serving file the store has checked (sha256) in ONNX Runtime and warms it."""
    return lambda path: ServingModel(path, model)


class KeptModels:
    def __init__(self, location: Path | str, cache: Path | None = None) -> None:
        """`location`: the store's folder or s3:// URL; `cache`: where an object store's files are downloaded."""
        self.models = registry.models()
        self.stores = {name: ModelStore(name, location, cache) for name in self.models}
        self.loaders: dict[str, Callable[[Path], Any]] = {name: loader_of(model) for name, model in self.models.items()}
        self.kept: dict[str, Kept | None] = dict.fromkeys(self.stores)
        self.challengers: dict[str, Kept | None] = dict.fromkeys(self.stores)
        # The version of each model that failed to load, and why: not retried (a published version
        # never changes) until the store serves another one. The same for challengers.
        self.problems: dict[str, tuple[int, str]] = {}
        self.challenger_problems: dict[str, tuple[int, str]] = {}
        # The version of each model the store serves that has no serving file yet, and why it waits.
        self.waiting: dict[str, str] = {}
        self._refreshing = threading.Lock()

    def get(self, name: str) -> Kept | None:
        return self.kept[name]

    def challenger(self, name: str) -> Kept | None:
        """The challenger this worker keeps for `name`, or None (never for a client: see above)."""
        return self.challengers.get(name)

    def expected(self, name: str) -> bool:
        """Whether readiness waits for `name`: a trainable model always (the first start trains it), a
        serve-only one once a version of it is stored."""
        return self.models[name].trainable or self.stores[name].latest() is not None

    @property
    def ready(self) -> bool:
        return all(kept is not None or not self.expected(name) for name, kept in self.kept.items())

    def versions(self) -> dict[str, int | None]:
        return {name: kept.version if kept else None for name, kept in self.kept.items()}

    def refresh(self) -> dict[str, int]:
        """Load what the store now serves where it differs from the kept model (blocking: run it in
        a thread). Returns the models swapped, with their new versions."""
        swapped = {}
        with self._refreshing:
            for name, store in self.stores.items():
                with store.one_look():  # one listing of the store per model and poll
                    active = store.active()
                    try:
                        self._refresh_challenger(name, active)
                    except StoreUnavailable:
                        raise
                    except Exception:  # the champion still refreshes
                        log.exception("could not look for a %s challenger", name)
                    number = self._servable(name, active)
                kept = self.kept[name]
                if number is None or (kept is not None and kept.version == number):
                    continue
                if self.problems.get(name, (None,))[0] == number:
                    continue
                try:
                    model = store.load_serving(number, self.loaders[name])
                except StoreUnavailable:  # the store's problem, not the version's: tried again next time
                    raise
                except Exception as error:  # a corrupt or unreadable version must not stop the worker serving
                    log.exception("could not load %s version %s; still serving %s", name, number, kept and kept.version)
                    self.problems[name] = (number, f"{type(error).__name__}: {error}")
                    if kept is None and (fallback := self._newest_loadable(name, below=number)) is not None:
                        self.kept[name] = fallback
                        swapped[name] = fallback.version
                    continue
                self.problems.pop(name, None)
                self.kept[name] = Kept(number, model)
                swapped[name] = number
                log.info("serving %s version %s (was %s)", name, number, kept and kept.version)
        return swapped

    def _refresh_challenger(self, name: str, active: int | None) -> None:
        """Keep the model's challenger (see the module docstring), or none; a version that fails to
        load is noted in `challenger_problems` and not tried again."""
        number = self._challenger_number(name, active)
        kept = self.challengers[name]
        if number is None or (kept is not None and kept.version == number):
            if number is None and kept is not None:
                log.info("%s version %s is no longer in shadow", name, kept.version)
                self.challengers[name] = None
            return
        if self.challenger_problems.get(name, (None,))[0] == number:
            return
        try:
            model = self.stores[name].load_serving(number, self.loaders[name])
        except StoreUnavailable:
            raise
        except Exception as error:  # the champion serves on whatever becomes of its challenger
            log.exception("could not load %s version %s as the challenger", name, number)
            self.challenger_problems[name] = (number, f"{type(error).__name__}: {error}")
            self.challengers[name] = None
            return
        self.challenger_problems.pop(name, None)
        self.challengers[name] = Kept(number, model)
        log.info("%s version %s answers in shadow (was %s)", name, number, kept and kept.version)

    def _challenger_number(self, name: str, active: int | None) -> int | None:
        """The newest version in shadow that is newer than the active one and has a serving file."""
        store = self.stores[name]
        for number in reversed(store.versions()):
            if active is not None and number <= active:
                return None
            try:
                version = store.get(number)
            except (ModelNotFound, ValueError):  # removed meanwhile, or unreadable: never a challenger
                continue
            if in_shadow(version.metadata) and version.serving_file is not None:
                return number
        return None

    def _servable(self, name: str, active: int | None) -> int | None:
        """The active version if it has a serving file, else the newest that has one (noted in `waiting`)."""
        store = self.stores[name]
        if active is None or store.get(active).serving_file is not None:
            self.waiting.pop(name, None)
            return active
        self.waiting[name] = (
            f"{name} version {active} has no model.onnx yet: the trainer side exports it "
            "(the first start's job, or `python -m app.part3.training_job --export-missing`)"
        )
        return store.newest_servable(below=active) or store.newest_servable()

    def _newest_loadable(self, name: str, below: int) -> Kept | None:
        """A worker with nothing to serve (just started) whose version does not load serves the newest
        older version that does, rather than staying unready until someone publishes another."""
        store = self.stores[name]
        try:
            number, model = store.load_newest_loadable(self.loaders[name], below=below, load=store.load_serving)
        except ModelNotFound:
            return None
        log.warning("serving %s version %s, the newest that loads, instead of %s", name, number, below)
        return Kept(number, model)
