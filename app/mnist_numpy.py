"""The CNN's forward pass in plain NumPy, for one image or a few (see mnist.FastDigitPredictor).

Profiled, for one image: TensorFlow's compiled graph spends about 0.8 ms in its call machinery; a
layer-by-layer NumPy version (sliding windows, then a 4-d max for pooling) about 0.2 ms, most of it
copying windows and reducing over strided views, not multiplying. This version is about 0.08 ms:

- each convolution is one matrix product over its windows ("im2col"), whose rows are gathered with
  one `np.take` of precomputed row numbers (whole 32-channel rows, not single pixels);
- the windows are ordered so that the four members of each 2x2 pooling block land in four
  contiguous slabs: pooling is then an elementwise max over the first axis. Windows whose output
  pooling drops (the last odd row and column) are never computed;
- bias and ReLU come after pooling, on a quarter of the values: max(relu(x + b)) = relu(max(x) + b)
  because both are non-decreasing;
- the input scaling (pixels / 255) is folded into the first layer's weights.

Only the layers the workshop's CNN uses are compiled (Conv2D "valid" with stride 1, each optionally
followed by MaxPooling2D; Flatten; Dropout; Dense; relu/linear, softmax last). `layer_specs` (and
`forward_from_specs`) return None for anything else, and the caller uses the compiled graph instead.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MONOTONIC = {"relu": lambda x: np.maximum(x, 0, out=x), "linear": lambda x: x}


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def window_rows(height: int, width: int, kernel: int, pool: int) -> np.ndarray:
    """Row numbers (positions y * width + x of a height x width input) of each kernel x kernel window
    that survives pooling, ordered pooling-block member first: (di, dj, pooled row, pooled col)."""
    out_h, out_w = (height - kernel + 1) // pool, (width - kernel + 1) // pool
    di, dj, pi, pj, ki, kj = np.ix_(*(np.arange(n) for n in (pool, pool, out_h, out_w, kernel, kernel)))
    rows = (pi * pool + di + ki) * width + (pj * pool + dj + kj)
    return rows.reshape(pool * pool * out_h * out_w, kernel * kernel).astype(np.intp)


@dataclass(frozen=True)
class Shape:
    height: int
    width: int
    channels: int


def conv_block(shape: Shape, kernel: np.ndarray, bias: np.ndarray, activation, pool: int):
    """A Conv2D (and the MaxPooling2D after it, if any) on (n, positions, channels) arrays."""
    size, filters = kernel.shape[0], kernel.shape[3]
    rows = window_rows(shape.height, shape.width, size, pool)
    matrix = np.ascontiguousarray(kernel.reshape(size * size * shape.channels, filters))  # (ki, kj, c) order
    blocks = pool * pool
    pooled = len(rows) // blocks

    def apply(x: np.ndarray) -> np.ndarray:
        n = len(x)
        windows = np.take(x, rows, axis=1)  # (n, windows, size * size, channels)
        out = windows.reshape(-1, matrix.shape[0]).astype(np.float32, copy=False) @ matrix
        if blocks > 1:
            out = out.reshape(n, blocks, pooled, filters).max(axis=1)
        out = out.reshape(n, pooled, filters)
        out += bias
        return activation(out)

    out_shape = Shape((shape.height - size + 1) // pool, (shape.width - size + 1) // pool, filters)
    return apply, out_shape


@dataclass(frozen=True)
class NumpyForward:
    """`scores`: (n, height, width) uint8 pixels -> (n, classes) scores, before the last layer's
    softmax if it has one (`softmax_last`): the digit is their argmax either way."""

    scores: Callable[[np.ndarray], np.ndarray]
    softmax_last: bool

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        scores = self.scores(images)
        return softmax(scores) if self.softmax_last else scores


def layer_specs(model) -> list[tuple[str, dict, list[np.ndarray]]] | None:
    """The model as plain data, (kind, settings, weights) per layer, or None if it has a layer this
    module does not implement. Plain data crosses to another process (app/part3/digit_helper.py),
    which can then build the forward pass without importing Keras."""
    input_shape = tuple(model.input_shape)
    if len(input_shape) not in (3, 4) or input_shape[3:] not in ((), (1,)):
        return None
    specs: list[tuple[str, dict, list[np.ndarray]]] = [("Input", {"height": input_shape[1], "width": input_shape[2]}, [])]
    layers = list(model.layers)
    for index, layer in enumerate(layers):
        kind, config = type(layer).__name__, layer.get_config()
        weights = [np.asarray(w, dtype=np.float32) for w in layer.get_weights()]
        if kind == "Conv2D":
            plain = (config["strides"] == (1, 1) and config["padding"] == "valid" and config["dilation_rate"] == (1, 1)
                     and config["groups"] == 1 and config["data_format"] == "channels_last" and config["use_bias"]
                     and config["kernel_size"][0] == config["kernel_size"][1])
            if not plain or config["activation"] not in MONOTONIC:
                return None
            specs.append((kind, {"activation": config["activation"]}, weights))
        elif kind == "MaxPooling2D":
            size = config["pool_size"][0]
            if config["pool_size"] != (size, size) or config["strides"] != (size, size) or config["padding"] != "valid":
                return None
            specs.append((kind, {"size": size}, []))
        elif kind == "Flatten":
            specs.append((kind, {}, []))
        elif kind == "Dropout":
            continue  # inactive when predicting
        elif kind == "Dense":
            last = index == len(layers) - 1
            if not config["use_bias"] or (config["activation"] not in MONOTONIC
                                          and not (last and config["activation"] == "softmax")):
                return None
            specs.append((kind, {"activation": config["activation"]}, weights))
        else:
            return None
    return specs


def forward_from_specs(specs: list[tuple[str, dict, list[np.ndarray]]]) -> NumpyForward | None:
    """Build the forward pass from `layer_specs`' plain data (no Keras needed)."""
    (_, size, _), rest = specs[0], specs[1:]
    shape: Shape | None = Shape(size["height"], size["width"], 1)
    steps: list[Callable[[np.ndarray], np.ndarray]] = []
    scale = np.float32(1 / 255)  # folded into the first layer's weights
    softmax_last = False
    i = 0
    while i < len(rest):
        kind, settings, weights = rest[i]
        if kind == "Conv2D":
            if shape is None:
                return None
            pool = 1
            if i + 1 < len(rest) and rest[i + 1][0] == "MaxPooling2D":
                pool = rest[i + 1][1]["size"]
                i += 1
            kernel, bias = weights
            step, shape = conv_block(shape, kernel * scale, bias, MONOTONIC[settings["activation"]], pool)
            steps.append(step)
            scale = np.float32(1)
        elif kind == "Flatten":
            steps.append(lambda x: x.reshape(len(x), -1))  # (positions, channels): Keras' channels_last order
            shape = None
        elif kind == "Dense":
            if shape is not None:
                return None  # a Dense on unflattened images is not the CNN this is for
            activation = MONOTONIC.get(settings["activation"])
            if settings["activation"] == "softmax":
                activation, softmax_last = MONOTONIC["linear"], True  # left to the caller
            kernel, bias = weights
            kernel = kernel * scale

            def dense(x, kernel=kernel, bias=bias, activation=activation):
                out = x.astype(np.float32, copy=False) @ kernel
                out += bias
                return activation(out)

            steps.append(dense)
            scale = np.float32(1)
        else:  # a MaxPooling2D not after a convolution
            return None
        i += 1
    if shape is not None or not steps:
        return None  # the output must be one vector of scores per image

    def scores(images: np.ndarray) -> np.ndarray:
        x = images.reshape(len(images), -1, 1)  # (n, positions, 1 channel), still uint8
        for step in steps:
            x = step(x)
        return x

    return NumpyForward(scores, softmax_last)
