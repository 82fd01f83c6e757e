"""Part 2's reference service: the MNIST digit model, trained in the background, served from the store.

Run it:   uv run fastapi dev app/part2/main.py
Try:      curl -F file=@data/test_image/test_img7.png http://127.0.0.1:8000/predict/
          http://127.0.0.1:8000/upload/ to fine-tune on data/train_img.zip, /info/ to follow it

Every Part 2 route on the model store, as the solutions build them up: it serves the version the
store serves (the notebook's export, or the newest training), trains a first model at start-up only
when the store is empty, fine-tunes (`POST /train/`) or retrains (`POST /retrain/`) in the
background one training at a time, and serves each new version from its next request on.
"""

from contextlib import asynccontextmanager

from fastapi import BackgroundTasks, FastAPI, UploadFile
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from app.models import mnist
from app.offline_docs import serve_docs_offline
from app.part2.serving import LatestModel
from app.part2.training import TrainingCounter, train_next_version
from app.part2.uploads import read_digit, read_training_images
from app.store import ModelStore

store = ModelStore(mnist.MODEL_NAME)
latest = LatestModel(store)
in_training = TrainingCounter()

UPLOAD_PAGE = """<!doctype html>
<title>Fine-tune the digit model</title>
<h1>Fine-tune the digit model</h1>
<p>Choose images named like <code>img123_7.png</code> (a 7), or a .zip of them.</p>
<form action="/train/" enctype="multipart/form-data" method="post">
  <input name="files" type="file" multiple accept="image/*,.zip">
  <input type="submit" value="Train">
</form>
"""


class Prediction(BaseModel):
    filename: str | None
    result: str  # the digit, as the workshop answers it: "7"
    version: int  # the model version that answered


class TrainingStarted(BaseModel):
    message: str
    images: int | None = None  # how many uploaded images it fine-tunes on


def training(images=None, labels=None, from_scratch: bool = False) -> None:
    with in_training:
        train_next_version(store, images, labels, from_scratch=from_scratch)


@asynccontextmanager
async def lifespan(app: FastAPI):
    if store.active() is None:  # only a new, empty store needs a first training
        training()
    latest.get()  # load the served version before the first request
    yield


app = FastAPI(title="Part 2: digits, trained in the background, served from the model store", lifespan=lifespan)
serve_docs_offline(app)  # /docs and /redoc with no internet: FastAPI's own pages load from a CDN


@app.get("/")
async def read_root() -> dict[str, str]:
    return {"Hello": "World"}


@app.get("/info/")
async def read_models() -> dict[str, int | None]:
    return {
        "Num of model in training": in_training.count,
        "Num of trained models": len(store.versions()),
        "Serving version": store.active(),
    }


@app.post("/predict/")
def predict(file: UploadFile) -> Prediction:
    pixels = read_digit(file)
    served = latest.get()
    digit = mnist.predict_digits(served.model, pixels)[0]
    return Prediction(filename=file.filename, result=str(digit), version=served.version)


@app.post("/train/")
def train_model(files: list[UploadFile], background_tasks: BackgroundTasks) -> TrainingStarted:
    uploaded = read_training_images(files)
    background_tasks.add_task(training, uploaded.images, uploaded.labels)
    return TrainingStarted(message="Training model in the background", images=len(uploaded.labels))


@app.get("/upload/", response_class=HTMLResponse)
async def upload() -> str:
    return UPLOAD_PAGE


@app.post("/retrain/")
async def retrain_model(background_tasks: BackgroundTasks) -> TrainingStarted:
    background_tasks.add_task(training, from_scratch=True)
    return TrainingStarted(message="Training a new model from scratch in the background")
