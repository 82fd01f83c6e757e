"""MNIST loading: the source can be forced, and "auto" falls back to the bundled subset offline."""

import importlib.util
import sys
from pathlib import Path

import pytest

from app import datasets


def test_environment_forces_the_bundled_source(monkeypatch):
    monkeypatch.setenv(datasets.MNIST_SOURCE_ENV, "bundled")
    assert datasets.load_mnist("auto").source == "bundled"


def test_unknown_source_is_refused():
    with pytest.raises(ValueError, match="unknown MNIST source"):
        datasets.load_mnist("internet")


@pytest.mark.slow  # imports Keras
def test_auto_falls_back_when_keras_cannot_download(monkeypatch, tmp_path):
    keras = pytest.importorskip("keras")

    def offline():
        raise Exception("URL fetch failure: Name or service not known")

    monkeypatch.delenv(datasets.MNIST_SOURCE_ENV, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # nothing cached there
    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    assert datasets.load_mnist("auto").source == "bundled"
    with pytest.raises(Exception, match="URL fetch failure"):
        datasets.load_mnist("keras")


def test_auto_offline_uses_the_bundled_subset_at_once_and_quietly(monkeypatch, tmp_path, capfd):
    """No WORKSHOP_MNIST_SOURCE, nothing in Keras' cache, and a server whose name does not resolve (as on
    a machine without network): the exercises' `mnist_load_data()` gives the bundled arrays without
    importing Keras or printing Keras' "Downloading data from https://storage.googleapis.com/...".
    """
    monkeypatch.delenv(datasets.MNIST_SOURCE_ENV, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # nothing cached there
    monkeypatch.setattr(datasets, "KERAS_MNIST_HOST", "mnist.invalid")  # a name that never resolves (RFC 2606)
    keras_before = "keras" in sys.modules
    (x_train, y_train), (x_test, y_test) = datasets.mnist_load_data()
    assert (len(x_train), len(x_test)) == (len(datasets.bundled_images("train")[1]), datasets.N_BUNDLED_TEST)
    printed = capfd.readouterr()
    assert "Downloading" not in printed.out + printed.err
    assert keras_before or "keras" not in sys.modules, "it asked Keras, which would try the download"


def test_the_probed_host_is_the_one_keras_downloads_from():
    """KERAS_MNIST_HOST is read from nothing public: Keras' mnist.load_data names it in its source. Read
    without importing Keras (find_spec of the top package only locates it)."""
    spec = importlib.util.find_spec("keras")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("Keras is not installed")
    source = Path(next(iter(spec.submodule_search_locations))) / "src" / "datasets" / "mnist.py"
    assert f"https://{datasets.KERAS_MNIST_HOST}/" in source.read_text()


def test_limited_takes_a_shuffled_subset():
    data = datasets.load_mnist("bundled").limited(200, seed=1)
    assert len(data.y_train) == 200 and len(data.y_test) == 40
    assert len(set(data.y_train.tolist())) == 10
