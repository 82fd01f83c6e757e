"""Importing the service must stay cheap: start-up to ready is benchmarked against `import keras`
(issue 5), and scikit-learn alone once cost 3.6 s of `import app.part3.main`."""

import subprocess
import sys

from app.paths import PROJECT_ROOT

HEAVY = ("sklearn", "keras", "tensorflow", "pandas", "skops")


def test_importing_the_service_loads_no_model_library():
    code = f"import sys, app.part3.main; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"imported at module level: {done.stdout.strip()}"


def test_the_hand_written_model_math_is_gone():
    """Part 3 serves model.onnx with ONNX Runtime (issue 11): the NumPy CNN, the skops reader and the
    digit helper were removed with their tests, and stay removed; so is the NumPy KNN built on
    scikit-learn's private attributes (Part 1 predicts with the pipeline, as the workshop does)."""
    from importlib.util import find_spec

    from app.models import mnist, penguins

    removed = ["app.mnist_numpy", "app.penguin_file", "app.part3.digit_helper"]
    assert [name for name in removed if find_spec(name) is not None] == []
    assert [
        name for name in ("FastDigitPredictor", "compiled_predictor", "one_blas_thread") if hasattr(mnist, name)
    ] == []
    assert not hasattr(penguins, "FastPenguinPredictor")
