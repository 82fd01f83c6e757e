"""A bare app that micro-batches in a thread, built from the project's fast pieces, as a reference:
the model kept in memory (app.mnist.FastDigitPredictor), bulk decoding (app.images.decode_digits)
and concurrent requests sharing model calls (app.batching.MicroBatcher).

Every image goes through the batcher's thread; the images of requests that arrive together share one
NumPy call (app/mnist_numpy.py), whose arithmetic runs outside the GIL while the event loop reads
the next requests. The Part 3 service measured this design and answers on the event loop instead
(see app/part3/predictor.py); this app keeps it as the reference for what batching does here.
BENCH_MODEL_FILE names the .keras file.
"""

import os
from contextlib import asynccontextmanager

from fastapi import FastAPI, UploadFile

from app import mnist
from app.batching import MicroBatcher
from app.images import decode_digits

model = mnist.load(os.environ["BENCH_MODEL_FILE"])
mnist.warm_up(model)
mnist.one_blas_thread()
predictor = mnist.FastDigitPredictor(model)
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
