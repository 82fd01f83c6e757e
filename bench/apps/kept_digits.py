"""A bare app that micro-batches in a thread, built from the project's pieces, as a reference: the
model kept in memory (Part 3's ONNX Runtime session, app.onnx_serving.ServingModel), bulk decoding
(app.images.decode_digits) and concurrent requests sharing model calls (bench.batching.MicroBatcher).

Every image goes through the batcher's thread; the images of requests that arrive together share one
ONNX Runtime call, which runs outside the GIL while the event loop reads the next requests. The
Part 3 service sends a request to the thread pool only when requests queue up (see
app/part3/predictor.py); this app keeps micro-batching as the reference for what it does here.
BENCH_MODEL_FILE names the model.onnx file.
"""

import os
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, UploadFile

from app.images import decode_digits
from app.models import mnist
from app.onnx_serving import ServingModel
from bench.batching import MicroBatcher

predictor = ServingModel(Path(os.environ["BENCH_MODEL_FILE"]), mnist.MODEL)
batcher = MicroBatcher(predictor.predict)


@asynccontextmanager
async def lifespan(app: FastAPI):
    batcher.start()
    yield
    await batcher.stop()


app = FastAPI(lifespan=lifespan)


@app.post("/predict/")
async def predict(file: UploadFile) -> dict[str, str | None]:
    pixels = decode_digits([await file.read()], [file.filename])
    (digit,) = await batcher.predict(pixels)
    return {"filename": file.filename, "result": str(digit)}
