"""A challenger for the benchmark's shadow row: the serving version's own files published again, as the
promotion gate's "challenger" (the gate's live holdout publishes such versions; the benchmark makes one
at once, in its own throwaway store, so the row times shadow scoring and nothing else). Same graph,
same cost per image: the row measures what answering every request twice costs the live path."""

from pathlib import Path

from app.modelkit import SERVING_FILE
from app.store import CHALLENGER, SHADOW, STORE_OWNED, ModelStore


def publish_challenger(store_dir: Path, name: str) -> int:
    """Publish a copy of `name`'s active version as a challenger; returns its number."""
    store = ModelStore(name, store_dir)
    active = store.get(store.active() or 0)
    files = {file: (active.path / file).read_bytes() for file in (active.metadata["file"], SERVING_FILE)}

    def save(folder: Path) -> str:
        for file, content in files.items():
            (folder / file).write_bytes(content)
        return active.metadata["file"]

    metadata = {key: value for key, value in active.metadata.items() if key not in STORE_OWNED | {SHADOW}}
    metadata |= {
        "parent": active.number,
        "gate": {**active.metadata.get("gate", {}), "decision": CHALLENGER, "reason": "the benchmark's challenger"},
    }
    return store.publish(save, metadata, serving_file=SERVING_FILE).number
