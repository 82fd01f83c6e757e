"""Part 2, exercise 3: fine-tune the model on uploaded images, labelled by their file names.

Run it:   uv run fastapi dev exercises/part2/ex3_retrain.py
Try:      http://127.0.0.1:8000/upload/ and choose the images of data/train_img.zip (or the zip itself)
Check it: uv run workshop check part2/ex3_retrain

`img123_7.png` is a 7. `read_training_images` (app.part2.uploads) checks every file before any
training starts, and refuses the whole request with a 4xx naming the file when one is not a 28x28
image or has no single-digit label: the workshop's `int(filename.split("_")[-1][0])` reads
`img_12.png` as a 1 and answers a 500 for `img.png`.

The flaw left for exercise 4: the newest model is fine-tuned in place, so the model answering
predictions changes under them. Two trainings at once call `fit` on that same Keras object from two
threads: Keras refuses the second (`ValueError: generator already executing`, raised in the background
task, so that training is lost and /info/ counts one model fewer) or, when their steps interleave,
both change the same weights. Exercise 4 gives each training its own copy, loaded from disk.
"""

from contextlib import asynccontextmanager

from fastapi import BackgroundTasks, FastAPI, UploadFile
from fastapi.responses import HTMLResponse

from app import mnist
from app.datasets import load_mnist
from app.offline_docs import serve_docs_offline
from app.part2.serving import no_model_yet
from app.part2.training import TrainingCounter, epoch_printer
from app.part2.uploads import read_digit, read_training_images

ml_models = []  # the trained models, newest last
in_training = TrainingCounter()  # `with in_training:` counts a training while it runs, safely across threads


def training(images=None, labels=None) -> None:
    with in_training:
        if images is None or labels is None:
            data = load_mnist()  # Keras' MNIST, or the bundled subset when offline
            images, labels = data.x_train, data.y_train
        # BEGIN SOLUTION fine-tune the newest model in ml_models when there is one (base), else train a new one (None)
        base = ml_models[-1] if ml_models else None
        # EXERCISE: base = None
        # END SOLUTION
        epochs = mnist.default_epochs()  # WORKSHOP_EPOCHS, else the workshop's 15
        result = mnist.train(images, labels, base=base, epochs=epochs, on_epoch_end=epoch_printer(epochs))
        ml_models.append(result.model)


@asynccontextmanager
async def lifespan(app: FastAPI):
    training()
    yield
    ml_models.clear()


app = FastAPI(title="Part 2, exercise 3: fine-tuning on uploaded images", lifespan=lifespan)
# Keep this line if you paste the workshop's code over the file: FastAPI's own /docs and /redoc
# load their scripts from a CDN, so without it they are blank pages offline.
serve_docs_offline(app)


@app.get("/")
async def read_root() -> dict[str, str]:
    return {"Hello": "World"}


@app.get("/info/")
async def read_models() -> dict[str, int]:
    return {"Num of model in training": in_training.count, "Num of trained models": len(ml_models)}


@app.post("/predict/")
def predict(file: UploadFile) -> dict[str, str | None]:
    pixels = read_digit(file)
    if not ml_models:
        raise no_model_yet()
    digit = mnist.predict_digits(ml_models[-1], pixels)[0]
    return {"filename": file.filename, "result": str(digit)}


@app.post("/train/")
def train_model(files: list[UploadFile], background_tasks: BackgroundTasks) -> dict[str, str | int]:
    # BEGIN SOLUTION read every uploaded image and its label (img123_7.png is a 7), train on them in the background, answer {"message": "Training model in the background"}
    uploaded = read_training_images(files)
    background_tasks.add_task(training, uploaded.images, uploaded.labels)
    return {"message": "Training model in the background", "images": len(uploaded.labels)}
    # END SOLUTION


@app.get("/upload/", response_class=HTMLResponse)
async def upload() -> str:
    # BEGIN SOLUTION return an HTML page with a form that posts many files (<input name="files" type="file" multiple>) to /train/ as multipart/form-data
    return """<!doctype html>
<title>Fine-tune the digit model</title>
<h1>Fine-tune the digit model</h1>
<p>Choose images named like <code>img123_7.png</code> (a 7), or a .zip of them.</p>
<form action="/train/" enctype="multipart/form-data" method="post">
  <input name="files" type="file" multiple accept="image/*,.zip">
  <input type="submit" value="Train">
</form>
"""
    # END SOLUTION
