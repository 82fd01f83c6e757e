"""Publish an ONNX file trained elsewhere, through the promotion gate, so the service serves a model it
never trained.

    python -m app.publish_onnx MODEL FILE.onnx HOLDOUT.npz [--floor 0.9] [--margin 0.02] [--models-dir DIR]

MODEL is a registered model (app/registry.py): its declaration says its input tensor and classes; a
model trained only elsewhere declares no training `parameters` (serve-only). HOLDOUT.npz holds
`inputs` (rows in the model's input form) and `labels` (each row's class name, or its index in the
model's classes): the gate judges the file on them against the floor and against the version that
serves now, as it judges a trained model, and the store keeps the decision. Exit status 0 when the
version was promoted, 1 when it was stored but refused (the reason is printed), 2 when nothing was
published (the file does not run, or the holdout does not fit).
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from app import promotion, registry
from app.modelkit import Examples, Holdout, Model
from app.onnx_export import ServingExportFailed
from app.paths import models_location
from app.store import ModelStore


def read_holdout(model: Model, path: Path) -> Holdout:
    """The labelled rows of an .npz file (no pickled objects), as the model's input form and class indices."""
    with np.load(path, allow_pickle=False) as data:
        missing = {"inputs", "labels"} - set(data.files)
        if missing:
            raise ValueError(f"{path} has no {', '.join(sorted(missing))} array")
        inputs, labels = data["inputs"], data["labels"]
    if inputs.shape[1:] != model.input.row_shape or len(inputs) != len(labels) or not len(labels):
        raise ValueError(
            f"{path}: {len(labels)} labels for inputs of shape {list(inputs.shape)}; {model.name} takes rows "
            f"of shape {list(model.input.row_shape)}, one label each"
        )
    if labels.dtype.kind in "iu":
        if labels.min() < 0 or labels.max() >= len(model.classes):
            raise ValueError(f"{path}: label indices must be 0 to {len(model.classes) - 1}")
        indices = labels.astype(np.int64)
    else:
        indices = np.array([model.class_index(str(label)) for label in labels], dtype=np.int64)
    examples = Examples(np.asarray(inputs, dtype=model.input.dtype), indices)
    return Holdout.of(examples, f"{path.name} ({len(indices)} labelled rows)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.publish_onnx", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a registered model's name")
    parser.add_argument("onnx_file", type=Path)
    parser.add_argument("holdout", type=Path, help=".npz with `inputs` and `labels`")
    parser.add_argument("--floor", type=float, help="least holdout accuracy (default: the model's, or settings')")
    parser.add_argument("--margin", type=float, help="how far below the serving version's it may be")
    parser.add_argument(
        "--models-dir",
        help="the model store, a folder or s3://bucket/prefix (default: WORKSHOP_MODELS_URL, else _DIR, else models/)",
    )
    args = parser.parse_args(argv)
    try:
        model = registry.get(args.model)
        holdout = read_holdout(model, args.holdout)
        store = ModelStore(model.name, args.models_dir or models_location())
        with store.training_lock():
            version = promotion.publish_serving_file(
                model,
                args.onnx_file,
                holdout,
                {"data": {"source": str(args.onnx_file.name)}},
                store,
                args.floor,
                args.margin,
            )
    except (registry.UnknownModel, ValueError, OSError, ServingExportFailed) as error:
        print(f"nothing published: {error}", file=sys.stderr)
        return 2
    gate = version.metadata["gate"]
    print(f"{model.name} version {version.number}: {gate['decision']} ({gate['reason']})")
    return 0 if gate["decision"] == promotion.PROMOTED else 1


if __name__ == "__main__":
    sys.exit(main())
