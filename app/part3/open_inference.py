"""The Open Inference Protocol's (KServe V2) tensors: an inference request's body in, NumPy out, and
the answer's tensors back into a body. Generic over the registry: each model's input tensor comes
from its declaration (app/modelkit.py).

Two encodings of a body, both as the protocol's clients send them:
- JSON: every tensor's `data` in the JSON, flat in row-major order or nested;
- the binary tensor data extension (Triton's, which tritonclient uses by default): the JSON header
  is the first `Inference-Header-Content-Length` bytes, and a tensor whose `parameters` give a
  `binary_data_size` takes that many raw bytes of the rest, in order (BYTES elements as a 4-byte
  little-endian length and the bytes). An answer uses it for the outputs asked for with
  `binary_data: true`, or for all of them with the request parameter `binary_data_output: true`.

Every refusal is an `InferenceError` whose message names the problem, answered as {"error": ...}.
"""

import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.modelkit import DATATYPES, Model, Tensor

HEADER_LENGTH = "Inference-Header-Content-Length"
MAX_ROWS = 4096
OUTPUTS = (
    Tensor("label", "BYTES", (-1,)),  # each row's class name, so a client needs no class table
    Tensor("probabilities", "FP32", (-1, -1)),  # (rows, classes), in the model's class order
    Tensor("prediction_id", "BYTES", (-1,)),  # send it back to POST /feedback/ with the true label
)


class InferenceError(ValueError):
    """A request the protocol's routes refuse: `status_code` and a message naming the problem."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


def outputs_of(model: Model) -> list[dict[str, Any]]:
    """The model's output tensors as its metadata describes them."""
    described = [output.describe() for output in OUTPUTS]
    described[1]["shape"] = [-1, len(model.classes)]
    return described


@dataclass(frozen=True)
class InferenceRequest:
    rows: np.ndarray  # the input tensor, converted to the model's datatype
    id: str | None
    binary_outputs: set[str]  # the outputs to answer in binary
    outputs: list[str]  # the outputs asked for, in order (all when none was named)


def split_body(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    """(the JSON header, the binary rest) of a body."""
    if header_length is None:
        json_part, binary = body, b""
    else:
        try:
            size = int(header_length)
        except ValueError:
            raise InferenceError(f"the {HEADER_LENGTH} header is not a number: {header_length!r}") from None
        if not 0 < size <= len(body):
            raise InferenceError(f"the {HEADER_LENGTH} header says {size} bytes; the body has {len(body)}")
        json_part, binary = body[:size], body[size:]
    try:
        header = json.loads(json_part)
    except (ValueError, UnicodeDecodeError) as error:
        raise InferenceError(f"the body is not JSON ({error})") from None
    if not isinstance(header, dict):
        raise InferenceError("the body must be a JSON object with an `inputs` list")
    return header, binary


def bytes_elements(raw: bytes) -> list[bytes]:
    """The elements of a BYTES tensor in the binary extension: each a 4-byte length, then its bytes."""
    elements, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InferenceError("a BYTES tensor's binary data ends inside an element's length")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise InferenceError("a BYTES tensor's binary data ends inside an element")
        elements.append(raw[offset : offset + length])
        offset += length
    return elements


def as_model_input(model: Model, values: np.ndarray, datatype: str) -> np.ndarray:
    """`values` in the model's datatype, refusing a conversion that would change a value (e.g. 3.5 or 300
    for UINT8) or a number that is not finite."""
    expected = model.input
    if datatype == "BYTES" or expected.datatype == "BYTES":
        if datatype != expected.datatype:
            raise InferenceError(f"input {expected.name!r} is {expected.datatype}, not {datatype}")
        return values
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise InferenceError(f"input {expected.name!r} holds a number that is not finite (NaN or infinity)")
    converted = values.astype(expected.dtype)
    if expected.dtype.kind in "iub" and not np.array_equal(converted.astype(np.float64), values.astype(np.float64)):
        limits = np.iinfo(expected.dtype) if expected.dtype.kind in "iu" else None
        bounds = f" from {limits.min} to {limits.max}" if limits is not None else ""
        raise InferenceError(f"input {expected.name!r} takes whole numbers{bounds} ({expected.datatype})")
    if expected.dtype.kind == "f" and not np.isfinite(converted).all():
        raise InferenceError(f"input {expected.name!r} holds a number too large for {expected.datatype}")
    return converted


def parse_request(model: Model, body: bytes, header_length: str | None) -> InferenceRequest:
    """The request's input tensor for `model`, checked against its declaration."""
    header, binary = split_body(body, header_length)
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InferenceError("the request has no `inputs` list")
    expected = model.input
    named = [tensor for tensor in inputs if isinstance(tensor, dict) and tensor.get("name") == expected.name]
    others = [tensor.get("name") if isinstance(tensor, dict) else tensor for tensor in inputs if tensor not in named]
    if others:
        raise InferenceError(f"{model.name} has one input, {expected.name!r}; the request also names {others}")
    if len(named) != 1:
        raise InferenceError(f"the request must give the input {expected.name!r} once")
    tensor = named[0]
    datatype = tensor.get("datatype")
    if datatype not in DATATYPES:
        raise InferenceError(f"input {expected.name!r} has the datatype {datatype!r}; one of {', '.join(DATATYPES)}")
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(isinstance(size, int) and size >= 0 for size in shape):
        raise InferenceError(f"input {expected.name!r} needs a `shape`: a list of sizes")
    if len(shape) != len(expected.shape) or tuple(shape[1:]) != expected.row_shape:
        wanted = ["n", *expected.row_shape]
        raise InferenceError(f"input {expected.name!r} has the shape {shape}; {model.name} takes {wanted}")
    if not 1 <= shape[0] <= MAX_ROWS:
        raise InferenceError(f"input {expected.name!r} holds {shape[0]} rows; send 1 to {MAX_ROWS}")
    count = math.prod(shape)
    parameters = tensor.get("parameters") or {}
    binary_size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if binary_size is not None:
        if not isinstance(binary_size, int) or binary_size != len(binary):
            raise InferenceError(
                f"input {expected.name!r} says binary_data_size {binary_size}; the body carries {len(binary)} bytes"
            )
        if datatype == "BYTES":
            values = np.array(bytes_elements(binary), dtype=object)
        else:
            item = np.dtype(DATATYPES[datatype]).newbyteorder("<")
            if len(binary) != count * item.itemsize:
                raise InferenceError(
                    f"input {expected.name!r}: {len(binary)} bytes of binary data, not {count} {datatype} values"
                )
            values = np.frombuffer(binary, dtype=item)
    else:
        if "data" not in tensor:
            raise InferenceError(f"input {expected.name!r} has no `data`")
        try:
            values = np.asarray(tensor["data"], dtype=object if datatype == "BYTES" else DATATYPES[datatype])
        except (ValueError, TypeError, OverflowError) as error:
            raise InferenceError(f"input {expected.name!r}: its data are not {datatype} values ({error})") from None
    if values.size != count:
        raise InferenceError(f"input {expected.name!r} has {values.size} values; its shape {shape} needs {count}")
    rows = as_model_input(model, values.reshape(shape), datatype)
    return InferenceRequest(rows, header.get("id"), *asked_outputs(header))


def asked_outputs(header: dict[str, Any]) -> tuple[set[str], list[str]]:
    """(the outputs to answer in binary, the outputs asked for in order)."""
    known = [output.name for output in OUTPUTS]
    parameters = header.get("parameters") or {}
    all_binary = isinstance(parameters, dict) and parameters.get("binary_data_output") is True
    asked = header.get("outputs")
    if asked is None:
        return (set(known) if all_binary else set()), known
    if not isinstance(asked, list) or not all(isinstance(output, dict) for output in asked):
        raise InferenceError("`outputs` must be a list of objects with a `name`")
    names = [output.get("name") for output in asked]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise InferenceError(f"no output {unknown[0]!r}; the outputs are {', '.join(known)}")
    binary = {
        output["name"]
        for output in asked
        if all_binary or (isinstance(output.get("parameters"), dict) and output["parameters"].get("binary_data"))
    }
    return binary, names


def encode_response(
    model_name: str, version: int, request: InferenceRequest, tensors: dict[str, np.ndarray]
) -> tuple[bytes, dict[str, str]]:
    """The answer's body and headers: JSON, with the binary outputs' data after it when any was asked."""
    described = {output.name: output for output in OUTPUTS}
    outputs, chunks = [], []
    for name in request.outputs:
        values, datatype = tensors[name], described[name].datatype
        output: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(values.shape)}
        if name in request.binary_outputs:
            if datatype == "BYTES":
                raw = b"".join(
                    struct.pack("<I", len(encoded)) + encoded
                    for encoded in (str(value).encode() for value in values.ravel())
                )
            else:
                raw = np.ascontiguousarray(values, dtype=np.dtype(DATATYPES[datatype]).newbyteorder("<")).tobytes()
            output["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            output["data"] = (
                [str(value) for value in values.ravel()] if datatype == "BYTES" else values.ravel().tolist()
            )
        outputs.append(output)
    answer: dict[str, Any] = {"model_name": model_name, "model_version": str(version), "outputs": outputs}
    if request.id is not None:
        answer["id"] = request.id
    header = json.dumps(answer).encode()
    if not chunks:
        return header, {"content-type": "application/json"}
    return header + b"".join(chunks), {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(header))}
