"""LitServe serving the same exported model, with the decoding and model call Part 3 uses
(app.images.decode_digits, ONNX Runtime through app.onnx_serving.ServingModel), so the comparison
is between the serving frameworks:

    python -m bench.apps.litserve_digits MODEL_ONNX_FILE PORT [--batch 8]

With --batch, LitServe gathers up to that many requests (waiting at most 1 ms) into one model call.
"""

import argparse
from pathlib import Path

import litserve as ls
import numpy as np

from app import images
from app.models import mnist
from app.onnx_serving import ServingModel


class DigitAPI(ls.LitAPI):
    def __init__(self, model_file: str, **options) -> None:
        super().__init__(api_path="/predict/", **options)
        self.model_file = model_file

    def setup(self, device) -> None:
        self.predictor = ServingModel(Path(self.model_file), mnist.MODEL)

    def decode_request(self, request) -> np.ndarray:
        upload = request["file"]
        return images.decode_digits([upload.file.read()], [upload.filename])[0]

    def batch(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.stack(inputs)

    def predict(self, pixels: np.ndarray) -> list[str]:
        return self.predictor.predict(pixels)

    def unbatch(self, output: list[str]) -> list[str]:
        return output

    def encode_response(self, output) -> dict[str, str]:
        digit = output[0] if isinstance(output, list) else output  # unbatched: a list of one
        return {"result": str(digit)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_file")
    parser.add_argument("port", type=int)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    options = {"max_batch_size": args.batch, "batch_timeout": 0.001} if args.batch > 1 else {}
    server = ls.LitServer(DigitAPI(args.model_file, **options), accelerator="cpu", workers_per_device=1, timeout=60)
    server.run(host="127.0.0.1", port=args.port, num_api_servers=1, generate_client_file=False, log_level="warning")


if __name__ == "__main__":
    main()
