"""Part 2 checks: each test file runs in its own temporary folder, with the check's own small trainings.

Before the exercise is imported, a module's checks
- move into a new temporary folder with an empty `models/` (the workshop's `models/...` paths, and the
  model store through WORKSHOP_MODELS_DIR, land there; nothing is written anywhere else) and say which;
- replace Keras' `fit` (tests/part2_support.FitGate): one epoch on at most 512 images, shown as it runs;
- make `keras.datasets.mnist.load_data()` fail at once, with what to write instead, when MNIST is not
  in Keras' cache (there is no internet to download it).
"""

import pytest

from tests.part2_support import FitGate

OFFLINE = (
    "keras.datasets.mnist.load_data() downloads MNIST, and there is no internet here: write "
    "`(x_train, y_train), _ = mnist_load_data()` with `from app.datasets import mnist_load_data`, "
    "which gives the same arrays offline"
)


@pytest.fixture(scope="module")
def check_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("check")
    (folder / "models").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setenv("WORKSHOP_MODELS_DIR", str(folder / "models"))
        print(f"\n    [check] working in a temporary folder: models are saved in {folder / 'models'}", flush=True)
        yield folder


@pytest.fixture(scope="module")
def fit_gate():
    import keras

    from app.datasets import _keras_mnist_cached

    with pytest.MonkeyPatch.context() as patch:
        gate = FitGate().install(patch)
        if not _keras_mnist_cached():
            def load_data(*args, **kwargs):
                raise RuntimeError(OFFLINE)

            patch.setattr(keras.datasets.mnist, "load_data", load_data)
        yield gate
        gate.open()


@pytest.fixture(scope="module")
def exercise(check_folder, fit_gate, exercise):
    """The shared `exercise` fixture, imported once the module has its folder and its small trainings."""
    return exercise


@pytest.fixture
def trainings(fit_gate):
    """The module's FitGate, for one test: `trainings.new_models` are the models fitted during the test."""
    fit_gate.start = fit_gate.calls
    yield fit_gate
    fit_gate.open()
