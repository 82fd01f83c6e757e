"""Part 2, extra challenge: `POST /retrain/` trains a new model from scratch.

Run it:   uv run fastapi dev exercises/part2/challenge_retrain.py
Try:      curl -X POST http://127.0.0.1:8000/retrain/   then watch http://127.0.0.1:8000/info/
Check it: uv run workshop check part2/challenge_retrain

Exercise 3 always fine-tunes the newest model. `training(from_scratch=True)` builds a new one
instead and trains it on MNIST; `/retrain/` starts that in the background and answers at once.
The fine-tune-in-place flaw of exercise 3 is still here; exercise 4 fixes it.
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


def training(images=None, labels=None, from_scratch: bool = False) -> None:
    with in_training:
        if images is None or labels is None:
            data = load_mnist()  # Keras' MNIST, or the bundled subset when offline
            images, labels = data.x_train, data.y_train
        # BEGIN SOLUTION no base model when from_scratch is true
        base = ml_models[-1] if ml_models and not from_scratch else None
        # EXERCISE: base = ml_models[-1] if ml_models else None
        # END SOLUTION
        epochs = mnist.default_epochs()  # WORKSHOP_EPOCHS, else the workshop's 15
        result = mnist.train(images, labels, base=base, epochs=epochs, on_epoch_end=epoch_printer(epochs))
        ml_models.append(result.model)


@asynccontextmanager
async def lifespan(app: FastAPI):
    training()
    yield
    ml_models.clear()


app = FastAPI(title="Part 2, extra challenge: retrain from scratch", lifespan=lifespan)
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
    uploaded = read_training_images(files)
    background_tasks.add_task(training, uploaded.images, uploaded.labels)
    return {"message": "Training model in the background", "images": len(uploaded.labels)}


@app.get("/upload/", response_class=HTMLResponse)
async def upload() -> str:
    return """<!doctype html>
<title>Fine-tune the digit model</title>
<h1>Fine-tune the digit model</h1>
<p>Choose images named like <code>img123_7.png</code> (a 7), or a .zip of them.</p>
<form action="/train/" enctype="multipart/form-data" method="post">
  <input name="files" type="file" multiple accept="image/*,.zip">
  <input type="submit" value="Train">
</form>
"""


@app.post("/retrain/")
async def retrain_model(background_tasks: BackgroundTasks) -> dict[str, str]:
    # BEGIN SOLUTION train a new model from scratch in the background and answer at once with a message
    background_tasks.add_task(training, from_scratch=True)
    return {"message": "Training a new model from scratch in the background"}
    # END SOLUTION
