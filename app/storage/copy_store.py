"""Copy a model store into another, e.g. a local folder into S3-compatible object storage:

    python -m app.storage.copy_store models s3://models/team      # every model found in the source

Each version is published into the target in order, its files and metadata as they are (the target
numbers them from its own newest: into an empty store, the same numbers). A pinned version is pinned
again. The source is only read; a version whose file does not match its sha256 stops the copy.
"""

import argparse
import shutil
import sys
from pathlib import Path

from app.store import ModelStore, is_object_store

RECORDED_BY_PUBLISH = ("name", "file", "sha256", "serving_file", "serving_sha256", "created_at")


def copy_model(source: ModelStore, target: ModelStore) -> list[tuple[int, int]]:
    """Publish each version of `source` into `target`; returns (source number, target number) pairs."""
    copied = []
    for version in source.all_versions():
        model_file = source.load(version.number, Path)  # the checked file (downloaded from a bucket)
        serving_file = source.load_serving(version.number, Path) if version.serving_file else None
        metadata = {key: value for key, value in version.metadata.items() if key not in RECORDED_BY_PUBLISH}

        def save(folder: Path, model_file=model_file, serving_file=serving_file) -> str:
            for path in filter(None, (model_file, serving_file)):
                shutil.copyfile(path, folder / path.name)
            return model_file.name

        published = target.publish(save, metadata, serving_file=serving_file.name if serving_file else None)
        copied.append((version.number, published.number))
    pinned = source.backend.pinned()
    numbers = dict(copied)
    if pinned in numbers:
        target.activate(numbers[pinned])
    return copied


def model_names(root: str | Path) -> list[str]:
    """The models a folder store holds (an object store is named model by model: give --model)."""
    if is_object_store(root):
        raise SystemExit("name the models to copy from an object store with --model")
    return sorted(path.name for path in Path(root).iterdir() if path.is_dir() and path.name.isidentifier())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.storage.copy_store", description=__doc__.split("\n")[0])
    parser.add_argument("source", help="a folder or s3://bucket/prefix")
    parser.add_argument("target", help="a folder or s3://bucket/prefix")
    parser.add_argument("--model", action="append", help="a model to copy (default: every model in a source folder)")
    args = parser.parse_args(argv)
    for name in args.model or model_names(args.source):
        copied = copy_model(ModelStore(name, args.source), ModelStore(name, args.target))
        print(f"{name}: " + (", ".join(f"{a} -> {b}" for a, b in copied) or "no versions"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
