"""The models the project knows: every folder under app/models/, and the packages named in
WORKSHOP_MODEL_PACKAGES (comma-separated importable names, e.g. `wine_model,acme.fraud`).

Each is a package whose `MODEL` is an `app.modelkit.Model`. Adding a model is adding such a package:
nothing else in the project names it. Importing a model package must stay cheap (NumPy, pydantic):
a serving worker imports every one of them, and no training library.
"""

import importlib
import pkgutil
from functools import cache

from app.modelkit import Model
from app.paths import setting

BUILT_IN = "app.models"


class UnknownModel(LookupError):
    """No model of that name is registered."""


def package_names() -> list[str]:
    """The built-in model folders, then the WORKSHOP_MODEL_PACKAGES ones, in that order."""
    built_in = importlib.import_module(BUILT_IN)
    names = [f"{BUILT_IN}.{info.name}" for info in pkgutil.iter_modules(built_in.__path__) if info.ispkg]
    extra = [name.strip() for name in (setting("MODEL_PACKAGES") or "").split(",") if name.strip()]
    return sorted(names) + [name for name in extra if name not in names]


@cache
def _models(packages: tuple[str, ...]) -> dict[str, Model]:
    found: dict[str, Model] = {}
    for package in packages:
        model = getattr(importlib.import_module(package), "MODEL", None)
        if not isinstance(model, Model):
            raise TypeError(f"{package} has no MODEL (an app.modelkit.Model instance)")
        if not model.name.isidentifier():
            raise ValueError(f"{package}: model names are identifiers (a folder and a URL segment), got {model.name!r}")
        if model.name in found:
            raise ValueError(f"two packages declare the model {model.name!r}")
        found[model.name] = model
    return found


def models() -> dict[str, Model]:
    """Every registered model by name (WORKSHOP_MODEL_PACKAGES read at call time, so a test can set it)."""
    return _models(tuple(package_names()))


def get(name: str) -> Model:
    try:
        return models()[name]
    except KeyError:
        raise UnknownModel(f"no model {name!r}; the models are {', '.join(models())}") from None
