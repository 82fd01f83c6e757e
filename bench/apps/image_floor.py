"""The image floor: receive one uploaded PNG and decode it to a 28x28 array as the service does,
then answer without a model. What is left above this in a prediction is the model's share."""

from fastapi import FastAPI, UploadFile

from app.images import decode_digits

app = FastAPI()


@app.post("/predict/")
async def predict(file: UploadFile) -> dict[str, str | None]:
    pixels = decode_digits([await file.read()], [file.filename])[0]
    return {"filename": file.filename, "result": str(int(pixels.argmax() % 10))}
