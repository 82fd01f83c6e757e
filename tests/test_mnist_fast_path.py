"""predict_probabilities' compiled graph gives what a direct call of the Keras model gives."""

import gc
import weakref

import numpy as np
import pytest

from app import mnist

pytestmark = pytest.mark.slow  # imports Keras


@pytest.fixture(scope="module")
def model():
    return mnist.build_model(seed=0)  # untrained: its outputs are as good as any to compare


def eager(model, images):
    return np.asarray(model(mnist.to_model_input(images), training=False))


@pytest.mark.parametrize("count", [1, 3, 256])
def test_compiled_path_equals_the_eager_call(model, count):
    images = np.random.default_rng(count).integers(0, 256, (count, 28, 28), dtype=np.uint8)
    probabilities = mnist.predict_probabilities(model, images)
    assert probabilities.shape == (count, 10) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities, eager(model, images), atol=1e-5, rtol=0)


def test_one_graph_serves_every_batch_size(model):
    mnist.warm_up(model)
    predictor = mnist.compiled_predictor(model)
    for count in (1, 7, 64):
        mnist.predict_probabilities(model, np.zeros((count, 28, 28), np.uint8))
    assert mnist.compiled_predictor(model) is predictor
    assert predictor.experimental_get_tracing_count() == 1


def test_single_image_and_other_dtypes_keep_working(model):
    image = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    single = mnist.predict_probabilities(model, image)
    assert single.shape == (1, 10)
    as_float = mnist.predict_probabilities(model, image.astype(np.float64))  # the eager path
    np.testing.assert_allclose(single, as_float, atol=1e-5, rtol=0)
    assert mnist.predict_digits(model, np.stack([image, image])) == [int(single.argmax())] * 2


def test_weights_changed_in_place_are_seen(model):
    """The graph reads the model's variables, so a fine-tune in place is not hidden by a stale copy."""
    clone = mnist.build_model(seed=1)
    images = np.random.default_rng(1).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    before = mnist.predict_probabilities(clone, images)
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(mnist.predict_probabilities(clone, images), eager(model, images), atol=1e-5, rtol=0)
    assert not np.allclose(before, eager(model, images), atol=1e-5)


def test_the_cache_does_not_keep_a_model_alive():
    clone = mnist.build_model(seed=2)
    mnist.warm_up(clone)
    assert clone in mnist._compiled_predictors
    alive = weakref.ref(clone)
    del clone
    gc.collect()
    assert alive() is None


@pytest.mark.parametrize("count", [1, 2, 8, 32, 33, 64])
def test_fast_digit_predictor_equals_the_eager_call(model, count):
    predictor = mnist.FastDigitPredictor(model)
    assert predictor.forward is not None, "the workshop's CNN must take the NumPy path"
    images = np.random.default_rng(count).integers(0, 256, (count, 28, 28), dtype=np.uint8)
    probabilities = predictor.probabilities(images)
    assert probabilities.shape == (count, 10) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities, eager(model, images), atol=1e-5, rtol=0)
    assert predictor.digits(images) == [int(d) for d in eager(model, images).argmax(axis=-1)]


def test_fast_digit_predictor_takes_one_image_and_any_dtype(model):
    predictor = mnist.FastDigitPredictor(model)
    image = np.random.default_rng(3).integers(0, 256, (28, 28), dtype=np.uint8)
    np.testing.assert_allclose(predictor.probabilities(image), eager(model, image), atol=1e-5, rtol=0)
    np.testing.assert_allclose(predictor.probabilities(image.astype(np.float32)), eager(model, image), atol=1e-5, rtol=0)


def test_a_model_it_does_not_know_is_served_by_the_graph():
    import keras

    other = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3, padding="same"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10, activation="softmax")])
    predictor = mnist.FastDigitPredictor(other)
    assert predictor.forward is None
    images = np.random.default_rng(4).integers(0, 256, (2, 28, 28), dtype=np.uint8)
    np.testing.assert_allclose(predictor.probabilities(images), eager(other, images), atol=1e-5, rtol=0)


def other_shapes():
    import keras
    from keras import layers

    keras.utils.set_random_seed(5)
    yield "conv without pooling, 3x3 pooling that drops a row, a hidden relu Dense, linear scores", keras.Sequential([
        keras.Input((28, 28, 1)), layers.Conv2D(8, 3, activation="relu"), layers.Conv2D(6, 5, activation="relu"),
        layers.MaxPooling2D(3), layers.Flatten(), layers.Dense(16, activation="relu"), layers.Dense(10)])
    yield "no convolution: a multilayer perceptron", keras.Sequential([
        keras.Input((28, 28)), layers.Flatten(), layers.Dense(32, activation="relu"), layers.Dropout(0.2),
        layers.Dense(10, activation="softmax")])


@pytest.mark.parametrize("name", ["conv", "mlp"])
def test_the_numpy_forward_pass_follows_other_layer_stacks(name):
    description, other = dict(zip(["conv", "mlp"], other_shapes(), strict=True))[name]
    predictor = mnist.FastDigitPredictor(other)
    assert predictor.forward is not None, description
    images = np.random.default_rng(6).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    np.testing.assert_allclose(predictor.probabilities(images), eager(other, images), atol=1e-4, rtol=1e-4)
    assert predictor.digits(images) == [int(d) for d in eager(other, images).argmax(axis=-1)]


def test_pooling_windows_are_grouped_by_block_member():
    from app.mnist_numpy import window_rows

    rows = window_rows(height=5, width=5, kernel=2, pool=2)  # 4x4 outputs, pooled to 2x2
    assert rows.shape == (16, 4)
    # the first slab is every pooling block's top-left window, in pooled row-major order
    assert rows[:4, 0].tolist() == [0, 2, 10, 12]
    assert rows[0].tolist() == [0, 1, 5, 6]  # window at (0, 0): its kernel's pixels, row-major
    assert rows[4:8, 0].tolist() == [1, 3, 11, 13]  # then every block's top-right window
