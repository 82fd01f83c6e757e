"""Import a Python file as a fresh module: its own globals (store, models, app), as a new process has.

Every test that needs a second copy of an app (an exercise, a restarted service, an app file by its
path) goes through `import_fresh`, so each copy gets a unique name in sys.modules.
"""

import importlib.util
import itertools
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

_copies = itertools.count(1)
_IMPORTS_KERAS = re.compile(r"^(import|from) (keras|tensorflow)\b", re.MULTILINE)


def imports_keras(path: Path | str) -> bool:
    """Whether importing the file imports Keras or TensorFlow at its top: a quick test must not (tests/conftest.py)."""
    return bool(_IMPORTS_KERAS.search(Path(path).read_text()))


def slow_if_it_imports_keras(path: Path | str, *values, id: str | None = None):
    """pytest.param(*values) for a test that imports the file at `path`: slow when that imports Keras."""
    return pytest.param(*values, id=id, marks=[pytest.mark.slow] if imports_keras(path) else [])


def import_fresh(path: Path | str, prefix: str = "fresh") -> ModuleType:
    """A new module executed from `path`, registered in sys.modules (pydantic and pickling look it up there)."""
    path = Path(path)
    name = f"{prefix}_{re.sub(r'\W', '_', '_'.join(path.with_suffix('').parts[-3:]))}_{next(_copies)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, f"{path} is not a Python file"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
