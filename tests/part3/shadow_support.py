"""Challengers for the shadow scoring tests, made from a stored version without training anything.

- `rotated(onnx_bytes, model)`: the same graph with its class probabilities moved one class along, so
  it answers class i-1 wherever the original answers class i: wrong wherever the original is right,
  and never in agreement with it.
- `publish_from(store, number, decision, rotate)`: a new version with that version's files (its
  serving file rotated or not) and its metadata, the gate's decision being `decision` ("challenger",
  "promoted"): what the gate's live holdout will publish, made directly, as only a test may.
- `answer_of(store, model, number, rows)`: what a stored version answers, through its serving file.
"""

from pathlib import Path

import numpy as np

from app.modelkit import SERVING_FILE, Model
from app.onnx_serving import ServingModel
from app.store import STORE_OWNED, ModelStore, Version


def rotated(onnx_bytes: bytes, model: Model) -> bytes:
    import onnx
    from onnx import helper, numpy_helper

    graph = onnx.load_from_string(onnx_bytes)
    name = graph.graph.output[model.probabilities_output].name
    unrotated = f"{name}_before_rotation_{len(graph.graph.node)}"  # unique: a rotated graph may be rotated again
    for node in graph.graph.node:
        for field in (node.input, node.output):
            renamed = [unrotated if entry == name else entry for entry in field]
            del field[:]
            field.extend(renamed)
    size = len(model.classes)
    order = np.array([(j + 1) % size for j in range(size)], dtype=np.int64)
    order = numpy_helper.from_array(order, f"{unrotated}_order")
    graph.graph.initializer.append(order)
    graph.graph.node.append(helper.make_node("Gather", [unrotated, order.name], [name], axis=1))
    return graph.SerializeToString()


def publish_from(store: ModelStore, model: Model, number: int, decision: str, rotate: bool = False) -> Version:
    source = store.get(number)
    serving = store.load_serving(number, Path.read_bytes)
    serving = rotated(serving, model) if rotate else serving
    training_file = source.metadata["file"]
    training = source.model_file.read_bytes()  # kept as it was: these tests only serve

    def save(folder: Path) -> str:
        (folder / SERVING_FILE).write_bytes(serving)
        (folder / training_file).write_bytes(training)
        return training_file

    # Its own decision, not the source's (nor what became of the source in shadow).
    metadata = {key: value for key, value in source.metadata.items() if key not in STORE_OWNED | {"shadow"}}
    metadata |= {
        "parent": number,
        "gate": {"decision": decision, "rule": None, "reason": f"a test's {decision}", "rotated": rotate},
    }
    return store.publish(save, metadata, serving_file=SERVING_FILE)


def answer_of(store: ModelStore, model: Model, number: int, rows: np.ndarray) -> list[str]:
    return store.load_serving(number, lambda path: ServingModel(path, model)).predict(rows)
