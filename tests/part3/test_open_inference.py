"""The Open Inference Protocol (KServe V2): the tensor codec on its own (quick), the routes in-process on
a seeded store, and an unmodified client nobody here wrote (tritonclient's InferenceServerClient)
against a real server process, in JSON and in its default binary tensor encoding."""

import json
import struct

import numpy as np
import pytest
from part3_support import digit_file, running_service

from app import images
from app.models import mnist, penguins
from app.part3.open_inference import HEADER_LENGTH, InferenceError, encode_response, parse_request

DIGITS, PENGUINS = mnist.MODEL, penguins.MODEL


def body(data, shape, datatype="FP64", name="measurements", **extra) -> bytes:
    return json.dumps(
        {"inputs": [{"name": name, "shape": shape, "datatype": datatype, "data": data}], **extra}
    ).encode()


# -- the codec ------------------------------------------------------------------------------------
def test_json_data_flat_or_nested_becomes_the_models_rows():
    flat = parse_request(PENGUINS, body([40.3, 195, 50.0, 220], [2, 2]), None)
    nested = parse_request(PENGUINS, body([[40.3, 195], [50.0, 220]], [2, 2]), None)
    assert flat.rows.dtype == np.float64 and flat.rows.tolist() == nested.rows.tolist() == [[40.3, 195], [50, 220]]
    assert flat.outputs == ["label", "probabilities", "prediction_id"] and flat.binary_outputs == set()


def test_a_lossless_datatype_is_converted_and_a_lossy_one_refused():
    pixels = parse_request(DIGITS, body([7] * 784, [1, 28, 28], "INT64", "image"), None).rows
    assert pixels.dtype == np.uint8 and pixels.shape == (1, 28, 28)
    for data, datatype, problem in (
        ([3.5] * 784, "FP32", "whole numbers from 0 to 255"),
        ([300] * 784, "INT32", "whole numbers from 0 to 255"),
        (["x"] * 784, "BYTES", "is UINT8, not BYTES"),
    ):
        with pytest.raises(InferenceError, match=problem):
            parse_request(DIGITS, body(data, [1, 28, 28], datatype, "image"), None)


@pytest.mark.parametrize(
    ("request_body", "problem"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "JSON object"),
        (json.dumps({"inputs": []}).encode(), "no `inputs`"),
        (body([40.3, 195], [1, 2], name="lengths"), "one input, 'measurements'"),
        (body([40.3, 195], [1, 3]), r"takes \['n', 2\]"),
        (body([40.3], [1, 2]), "has 1 values"),
        (body([40.3, 195], [1, 2], "FP128"), "datatype 'FP128'"),
        (body([float("nan"), 195], [1, 2]), "not finite"),
        (body([1e308 * 10, 195], [1, 2]), "not finite"),
        (body([40.3, 195], [1, 2], outputs=[{"name": "species"}]), "no output 'species'"),
        (body([], [0, 2]), "holds 0 rows"),
    ],
    ids=[
        "not-json",
        "not-object",
        "no-inputs",
        "wrong-name",
        "wrong-shape",
        "short-data",
        "datatype",
        "nan",
        "infinity",
        "unknown-output",
        "no-rows",
    ],
)
def test_a_malformed_request_is_refused_naming_the_problem(request_body, problem):
    with pytest.raises(InferenceError, match=problem) as refused:
        parse_request(PENGUINS, request_body, None)
    assert refused.value.status_code == 400


def test_binary_tensor_data_in_and_out():
    rows = np.array([[40.3, 195.0], [50.0, 220.0]])
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "measurements",
                    "shape": [2, 2],
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": rows.nbytes},
                }
            ],
            "outputs": [{"name": "label", "parameters": {"binary_data": True}}, {"name": "probabilities"}],
        }
    ).encode()
    parsed = parse_request(PENGUINS, header + rows.astype("<f8").tobytes(), str(len(header)))
    assert parsed.rows.tolist() == rows.tolist() and parsed.binary_outputs == {"label"}
    tensors = {"label": np.array(["Adelie", "Gentoo"], dtype=object), "probabilities": np.eye(3, dtype=np.float32)[:2]}
    answer, headers = encode_response("penguins", 4, parsed, tensors)
    size = int(headers[HEADER_LENGTH])
    head = json.loads(answer[:size])
    assert head["model_version"] == "4" and head["outputs"][1]["data"] == [1, 0, 0, 0, 1, 0]
    raw = answer[size:]
    assert head["outputs"][0]["parameters"]["binary_data_size"] == len(raw)
    assert raw == struct.pack("<I", 6) + b"Adelie" + struct.pack("<I", 6) + b"Gentoo"
    with pytest.raises(InferenceError, match="binary_data_size 32; the body carries 31"):
        parse_request(PENGUINS, header + rows.tobytes()[:-1], str(len(header)))
    with pytest.raises(InferenceError, match="header says 9999 bytes"):
        parse_request(PENGUINS, header, "9999")


# -- the routes, in-process -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client(models_dir):
    with running_service(models_dir, trainer=False) as client:
        yield client


def infer(client, name, data, shape, datatype, input_name, path=""):
    return client.post(
        f"/v2/models/{name}{path}/infer",
        json={"id": "r1", "inputs": [{"name": input_name, "shape": shape, "datatype": datatype, "data": data}]},
    )


def test_the_server_and_every_model_describe_themselves(client):
    server = client.get("/v2").json()
    assert server["name"] == "fastapi-ml-workshop" and "binary_tensor_data" in server["extensions"]
    assert client.get("/v2/health/live").status_code == 200 and client.get("/v2/health/ready").status_code == 200
    digits = client.get("/v2/models/mnist").json()
    assert digits["inputs"] == [{"name": "image", "datatype": "UINT8", "shape": [-1, 28, 28]}]
    assert [output["name"] for output in digits["outputs"]] == ["label", "probabilities", "prediction_id"]
    assert digits["outputs"][1]["shape"] == [-1, 10] and digits["versions"] == ["1"]
    assert client.get("/v2/models/penguins/versions/1").json()["inputs"][0]["datatype"] == "FP64"
    assert client.get("/v2/models/penguins/ready").status_code == 200
    assert client.get("/v2/models/penguins/versions/1/ready").json()["ready"] is True


def test_inference_answers_as_the_workshops_routes(client):
    penguin = infer(client, "penguins", [40.3, 195, 50.0, 220], [2, 2], "FP64", "measurements")
    assert penguin.status_code == 200, penguin.text
    answer = penguin.json()
    assert (answer["model_name"], answer["model_version"], answer["id"]) == ("penguins", "1", "r1")
    labels, probabilities, ids = answer["outputs"]
    expected = [
        client.get("/predict/", params={"bill": bill, "flipper": flipper}).json()["result"]
        for bill, flipper in ((40.3, 195), (50.0, 220))
    ]
    assert labels["data"] == expected and labels["datatype"] == "BYTES" and labels["shape"] == [2]
    assert probabilities["shape"] == [2, 3] and np.allclose(np.sum(np.reshape(probabilities["data"], (2, 3)), 1), 1)
    assert (
        client.post(
            "/feedback/", json={"prediction_id": ids["data"][0], "label": "Adelie", "input": [40.3, 195]}
        ).json()["input_kept"]
        is True
    )
    pixels = [images.decode_digit(digit_file(digit)[1]) for digit in (3, 7)]
    batch = client.post("/predict/batch/", files=[("files", digit_file(digit)) for digit in (3, 7)]).json()
    digits = infer(client, "mnist", np.stack(pixels).tolist(), [2, 28, 28], "UINT8", "image")
    assert digits.json()["outputs"][0]["data"] == [item["result"] for item in batch["results"]]


@pytest.mark.parametrize(
    ("path", "status", "problem"),
    [
        ("/v2/models/giraffes/infer", 404, "no model 'giraffes'"),
        ("/v2/models/penguins/versions/7/infer", 404, "version 7 is not served here"),
        ("/v2/models/penguins/versions/x/infer", 404, "versions are numbers"),
    ],
)
def test_an_unknown_model_or_version_is_a_404_in_the_protocols_shape(client, path, status, problem):
    response = client.post(
        path, json={"inputs": [{"name": "measurements", "shape": [1, 2], "datatype": "FP64", "data": [40.3, 195]}]}
    )
    assert response.status_code == status and problem in response.json()["error"], response.text
    assert client.get("/v2/models/penguins/versions/7").status_code == 404


def test_a_bad_tensor_is_a_400_in_the_protocols_shape(client):
    response = infer(client, "mnist", [1, 2, 3], [1, 3], "UINT8", "image")
    assert response.status_code == 400 and "image" in response.json()["error"]


# -- an unmodified client against a real server process ----------------------------------------------
def test_tritonclient_drives_every_model_in_json_and_in_binary(real_service):
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    client = triton.InferenceServerClient(real_service.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert client.get_server_metadata()["name"] == "fastapi-ml-workshop"
    assert client.is_model_ready("mnist") and client.is_model_ready("penguins")
    metadata = client.get_model_metadata("penguins")
    assert metadata["inputs"][0] == {"name": "measurements", "datatype": "FP64", "shape": [-1, 2]}

    rows = np.array([[40.3, 195.0], [50.0, 220.0], [46.0, 215.0]])
    for binary in (False, True):
        measurements = triton.InferInput("measurements", list(rows.shape), "FP64")
        measurements.set_data_from_numpy(rows, binary_data=binary)
        outputs = [triton.InferRequestedOutput(name, binary_data=binary) for name in ("label", "probabilities")]
        result = client.infer("penguins", [measurements], outputs=outputs)
        labels = [label.decode() if isinstance(label, bytes) else label for label in result.as_numpy("label")]
        assert labels[0] == "Adelie" and len(labels) == 3
        assert result.as_numpy("probabilities").shape == (3, 3)
        assert result.get_response()["model_version"] == "1"

    pixels = np.stack([images.decode_digit(digit_file(digit)[1]) for digit in range(10)])
    image = triton.InferInput("image", list(pixels.shape), "UINT8")
    image.set_data_from_numpy(pixels)  # binary, the client's default; no outputs named: all of them, binary
    result = client.infer("mnist", [image])
    assert result.as_numpy("probabilities").shape == (10, 10) and len(result.as_numpy("prediction_id")) == 10
    labels = [label.decode() for label in result.as_numpy("label")]
    batch = real_service.client.post("/predict/batch/", files=[("files", digit_file(digit)) for digit in range(10)])
    assert labels == [item["result"] for item in batch.json()["results"]]  # the workshop's route's answers
    assert (result.as_numpy("probabilities").argmax(axis=1).astype(str) == np.array(labels)).all()

    with pytest.raises(InferenceServerException, match="no model 'giraffes'"):
        client.infer("giraffes", [image])
    wrong = triton.InferInput("image", [1, 28], "UINT8")
    wrong.set_data_from_numpy(pixels[0, :1])
    with pytest.raises(InferenceServerException, match=r"takes \['n', 28, 28\]"):
        client.infer("mnist", [wrong])
    client.close()
