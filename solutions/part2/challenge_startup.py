"""Part 2, extra challenge: at start-up, serve the saved models; train only when there is none.

Run it:   uv run fastapi dev exercises/part2/challenge_startup.py   (stop it and start it again: no training)
Try:      ls models/exercises/mnist/ before and after a restart
Check it: uv run workshop check part2/challenge_startup

Exercise 4 trains a new model at every start, although the store keeps every model it ever trained.
Here the lifespan trains only when the store is empty, and otherwise serves the version the store
serves (the newest, unless one was pinned with ModelStore.activate). The store lists versions in
numeric order, so "newest" never depends on how file names sort.
"""

from contextlib import asynccontextmanager

from fastapi import BackgroundTasks, FastAPI, UploadFile
from fastapi.responses import HTMLResponse

from app.models import mnist
from app.offline_docs import serve_docs_offline
from app.part2.serving import LatestModel
from app.part2.training import TrainingCounter, load_base, train_and_publish
from app.part2.uploads import read_digit, read_training_images
from app.paths import exercise_models_dir
from app.store import ModelStore

# models/exercises/mnist/: the exercises' own store; the notebooks publish to models/mnist/, never here
store = ModelStore(mnist.MODEL_NAME, root=exercise_models_dir())
latest = LatestModel(store)  # the served model, kept in memory
in_training = TrainingCounter()  # `with in_training:` counts a training while it runs (or waits its turn)


def training(images=None, labels=None, from_scratch: bool = False) -> None:
    """Train on the images (MNIST when none) and publish the result as the store's next version."""
    with in_training:
        with store.training_lock():  # one training at a time: the second starts from the first's result
            parent, base = (None, None) if from_scratch else load_base(store)
            train_and_publish(store, images, labels, base=base, parent=parent)


@asynccontextmanager
async def lifespan(app: FastAPI):
    # BEGIN SOLUTION train only when nothing is saved yet, then load the saved model that serves
    if store.active() is None:
        training()
    latest.get()  # load it now, so the first prediction does not wait for it
    # EXERCISE: training()
    # EXERCISE: latest.get()
    # END SOLUTION
    yield


app = FastAPI(title="Part 2, extra challenge: serve the saved models at start-up", lifespan=lifespan)
# Keep this line if you paste the workshop's code over the file: FastAPI's own /docs and /redoc
# load their scripts from a CDN, so without it they are blank pages offline.
serve_docs_offline(app)


@app.get("/")
async def read_root() -> dict[str, str]:
    return {"Hello": "World"}


@app.get("/info/")
async def read_models() -> dict[str, int]:
    return {"Num of model in training": in_training.count, "Num of trained models": len(store.versions())}


@app.post("/predict/")
def predict(file: UploadFile) -> dict[str, str | int | None]:
    pixels = read_digit(file)
    served = latest.get()  # kept in memory, reloaded only when the store has a newer version
    digit = mnist.predict_digits(served.model, pixels)[0]
    return {"filename": file.filename, "result": str(digit), "version": served.version}


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
    background_tasks.add_task(training, from_scratch=True)
    return {"message": "Training a new model from scratch in the background"}
