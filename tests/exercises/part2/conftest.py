"""Part 2 checks: each test file runs in its own temporary folder, with the check's own small trainings.

Before the exercise is imported, a module's checks
- move into a new, empty temporary folder and point WORKSHOP_MODELS_DIR at its `models/` (the exercises'
  own store, models/exercises/, lands there; nothing is written anywhere else) and say which. The
  folder is not made for the exercise: a starter that saves files makes its folder itself, as it must
  on a fresh clone, where models/ is not in git;
- replace Keras' `fit` (tests/part2_support.FitGate): one epoch on at most 512 images, shown as it runs,
  and record a background task that fails, so a check waiting for a training fails at once with why;
- switch Keras' progress bars off (a prediction's bar is 2 lines of colour codes in the check's output);
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
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setenv("WORKSHOP_MODELS_DIR", str(folder / "models"))
        print(f"\n    [check] working in a temporary folder: models are saved under {folder / 'models'}", flush=True)
        yield folder


@pytest.fixture(scope="module")
def fit_gate():
    import keras

    from app.datasets import _keras_mnist_cached

    interactive = keras.config.is_interactive_logging_enabled()
    keras.config.disable_interactive_logging()  # progress bars go to absl's log, which shows warnings only
    with pytest.MonkeyPatch.context() as patch:
        gate = FitGate().install(patch)
        if not _keras_mnist_cached():
            def load_data(*args, **kwargs):
                raise RuntimeError(OFFLINE)

            patch.setattr(keras.datasets.mnist, "load_data", load_data)
        yield gate
        gate.open()
    if interactive:
        keras.config.enable_interactive_logging()


@pytest.fixture(scope="module")
def exercise(check_folder, fit_gate, exercise):
    """The shared `exercise` fixture, imported once the module has its folder and its small trainings."""
    return exercise


@pytest.fixture
def trainings(fit_gate):
    """The module's FitGate, for one test: `trainings.new_models` are the models fitted during the test."""
    fit_gate.since_now()
    yield fit_gate
    fit_gate.open()
