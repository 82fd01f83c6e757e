"""Prepare the model store every server reads, and measure the model's own throughput in-process.

    python -m bench.prepare_models STORE_DIR --train-images 1000 --epochs 1 --seconds 3

Runs as its own process so that the benchmark's driver never imports Keras. Trains a small MNIST
model and the penguin pipeline with their model folders (app/models/), publishes both to STORE_DIR (a
model store, as Part 3 expects, each version with its model.onnx), then times the MNIST model
in-process on one image and on batches of 256: in Keras (app.models.mnist.predict_probabilities) and
in ONNX Runtime (app.onnx_serving.ServingModel, what Part 3 serves). Prints one JSON line.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np


def prepare(store_dir: Path, train_images: int, epochs: int) -> dict:
    from app import promotion
    from app.datasets import load_mnist
    from app.models import mnist, penguins
    from app.store import ModelStore

    data = load_mnist("bundled").limited(train_images, seed=0)
    result = mnist.train(data.x_train, data.y_train, epochs=epochs, seed=0)
    # floor=0: the benchmark times a deliberately small model; the promotion gate would rightly refuse it.
    digits = promotion.publish(
        mnist.MODEL,
        result,
        {"parameters": {"epochs": epochs}, "data": {"source": "bundled", "n_train": train_images}},
        store=ModelStore(mnist.MODEL_NAME, root=store_dir),
        floor=0.0,
    )
    model = penguins.MODEL
    promotion.publish(
        model, model.train(model.training_data(), model.parameters()), store=ModelStore(model.name, root=store_dir)
    )
    return {
        "model_file": str(digits.model_file),
        "serving_file": str(digits.serving_file),
        "accuracy": digits.metadata["metrics"]["accuracy"],
        "model": result.model,
        "test_images": data.x_test,
    }


def throughput(predict, images: np.ndarray, batch: int, seconds: float) -> float:
    """Images per second of `predict(pixels)` on batches of `batch` (the median of several timed rounds)."""
    pixels = np.resize(images, (batch, *images.shape[1:]))
    predict(pixels)
    predict(pixels)
    rounds: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(rounds) < 3:
        started = time.perf_counter()
        predict(pixels)
        rounds.append(batch / (time.perf_counter() - started))
    return statistics.median(rounds)


def in_process_rates(prepared: dict, batch: int, seconds: float) -> dict[str, float]:
    """Images/s of the same model in Keras and in ONNX Runtime, on one image and on `batch`."""
    from app.models import mnist
    from app.onnx_serving import ServingModel

    runtimes = {
        "keras": lambda pixels: mnist.predict_probabilities(prepared["model"], pixels),
        "onnxruntime": ServingModel(Path(prepared["serving_file"]), mnist.MODEL).probabilities,
    }
    return {
        f"{name}_{size}": throughput(predict, prepared["test_images"], size, seconds)
        for name, predict in runtimes.items()
        for size in (1, batch)
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store_dir", type=Path)
    parser.add_argument("--train-images", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    prepared = prepare(args.store_dir, args.train_images, args.epochs)
    rates = in_process_rates(prepared, args.batch, args.seconds)
    print(
        json.dumps(
            {
                "model_file": prepared["model_file"],
                "serving_file": prepared["serving_file"],
                "accuracy": prepared["accuracy"],
                "batch": args.batch,
                "rates": rates,
            }
        )
    )


if __name__ == "__main__":
    main()
