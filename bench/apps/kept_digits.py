"""A bare app built from the project's fast pieces, as a reference for what the service could reach:
the model kept in memory (app.mnist.FastDigitPredictor), bulk decoding (app.images.decode_digits)
and concurrent requests sharing model calls (app.batching.MicroBatcher).

A lone request takes the NumPy path (about 0.2 ms for one image); a batch formed by concurrent
requests takes the compiled graph, which runs outside the GIL while the event loop reads the next
requests. BENCH_MODEL_FILE names the .keras file.
"""

import os
from contextlib import asynccontextmanager

from fastapi import FastAPI, UploadFile

from app import mnist
from app.batching import MicroBatcher
from app.images import decode_digits

model = mnist.load(os.environ["BENCH_MODEL_FILE"])
mnist.warm_up(model)
predictor = mnist.FastDigitPredictor(model, small_batch=int(os.environ.get("BENCH_SMALL_BATCH", "1")))
batcher = MicroBatcher(predictor.digits)


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
