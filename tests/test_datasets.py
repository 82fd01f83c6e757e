"""MNIST loading: the source can be forced, and "auto" falls back to the bundled subset offline."""

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


def test_limited_takes_a_shuffled_subset():
    data = datasets.load_mnist("bundled").limited(200, seed=1)
    assert len(data.y_train) == 200 and len(data.y_test) == 40
    assert len(set(data.y_train.tolist())) == 10
