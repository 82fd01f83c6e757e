"""Importing the service must stay cheap: start-up to ready is benchmarked against `import keras`
(issue 5), and scikit-learn alone once cost 3.6 s of `import app.part3.main`."""

import subprocess
import sys

from app.paths import PROJECT_ROOT

HEAVY = ("sklearn", "keras", "tensorflow", "pandas")


def test_importing_the_service_loads_no_model_library():
    code = f"import sys, app.part3.main; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"imported at module level: {done.stdout.strip()}"
