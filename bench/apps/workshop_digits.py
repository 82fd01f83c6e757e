"""The workshop's design from Part 2 exercise 4, as its text writes it: the latest model is loaded
from disk with keras.saving.load_model for every request, then called with `model.predict`.

BENCH_MODEL_FILE names the .keras file (the same exported model every server here serves).
"""

import os
from io import BytesIO

import keras
import numpy as np
from fastapi import FastAPI, UploadFile
from PIL import Image

MODEL_FILE = os.environ["BENCH_MODEL_FILE"]

app = FastAPI()


@app.post("/predict/")
async def predict(file: UploadFile):
    image = await file.read()
    # process image for prediction
    image = Image.open(BytesIO(image)).convert("L")
    image = np.array(image).astype("float32") / 255
    image = np.expand_dims(image, (0, -1))
    # predict the result
    model = keras.saving.load_model(MODEL_FILE)
    result = model.predict(image).argmax(axis=-1)[0]
    return {"filename": file.filename, "result": str(result)}
