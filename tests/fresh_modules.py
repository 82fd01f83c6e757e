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

_copies = itertools.count(1)


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
