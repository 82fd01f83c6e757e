"""Part 2, exercise 4: no race conditions — the models live in a versioned store, not in memory.

Run it:   uv run fastapi dev exercises/part2/ex4_race_free.py
Try:      curl -X POST http://127.0.0.1:8000/retrain/ twice at once, then ls models/exercises/mnist/
Check it: uv run workshop check part2/ex4_race_free

The workshop's step, yours to write: save every trained model, fine-tune from the newest saved one, and
predict with the saved models (the starter still keeps exercise 3's models in memory). Here every
trained model is published to the store (app/store.py) as models/exercises/mnist/<version>/: a complete
model with its metadata (parent version, data, metrics, sha256), written under a temporary name and
renamed into place, so a reader never sees half a model. The workshop's `model_{datetime.now()}.keras`
puts spaces and colons in file names and shows readers half-written files; numbers do neither.

What the workshop's version of this exercise still gets wrong, and what to do instead:
- It loads the model from disk on every prediction: about 155 ms each, against 2 ms for a model kept
  in memory. `latest.get()` keeps the loaded model and loads again only when the store serves a newer
  version (a directory listing per request tells).
- Two trainings requested together both load the same base, and the second to publish silently drops
  the first's work. Holding `store.training_lock()` (a lock shared by threads and processes) from
  loading the base to publishing makes them run one after the other: the second starts from the
  first's result, and the store keeps a chain of versions, each naming its parent.
- The counts in /info/: `num_train += 1` from several threads can lose updates; TrainingCounter locks.
"""

from contextlib import asynccontextmanager

from fastapi import BackgroundTasks, FastAPI, UploadFile
from fastapi.responses import HTMLResponse

from app.datasets import load_mnist  # noqa: F401 (the starter's way, exercise 3's)
from app.models import mnist
from app.offline_docs import serve_docs_offline
from app.part2.serving import LatestModel, ServedModel, no_model_yet  # noqa: F401 (the starter's)
from app.part2.training import TrainingCounter, epoch_printer, load_base, train_and_publish  # noqa: F401 (starter's)
from app.part2.uploads import read_digit, read_training_images
from app.paths import exercise_models_dir
from app.store import ModelStore

# models/exercises/mnist/: the exercises' own store; the notebooks publish to models/mnist/, never here
store = ModelStore(mnist.MODEL_NAME, root=exercise_models_dir())
latest = LatestModel(store)  # the served model, kept in memory
in_training = TrainingCounter()  # `with in_training:` counts a training while it runs (or waits its turn)
ml_models = []  # the starter's models, in memory as in exercise 3: the store replaces them


def training(images=None, labels=None, from_scratch: bool = False) -> None:
    """Train on the images (MNIST when none) and publish the result as the store's next version."""
    with in_training:
        # BEGIN SOLUTION save every trained model under models/ and fine-tune a copy of the newest saved one, not the model in memory (see `workshop hint`)
        with store.training_lock():  # one training at a time: the second starts from the first's result
            parent, base = (None, None) if from_scratch else load_base(store)
            train_and_publish(store, images, labels, base=base, parent=parent)
        # EXERCISE: if images is None or labels is None:  # exercise 3's way: the models live in memory
        # EXERCISE:     data = load_mnist()
        # EXERCISE:     images, labels = data.x_train, data.y_train
        # EXERCISE: base = ml_models[-1] if ml_models and not from_scratch else None
        # EXERCISE: ml_models.append(mnist.train(images, labels, base=base, epochs=mnist.default_epochs(), on_epoch_end=epoch_printer(mnist.default_epochs())).model)
        # END SOLUTION


@asynccontextmanager
async def lifespan(app: FastAPI):
    training()
    # BEGIN SOLUTION load the served version now with latest.get(), so the first prediction does not wait for it
    latest.get()
    # EXERCISE: pass
    # END SOLUTION
    yield


app = FastAPI(title="Part 2, exercise 4: a race-free model store", lifespan=lifespan)
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
    # BEGIN SOLUTION predict with the newest saved model (served: a ServedModel of its version and model)
    served = latest.get()
    # EXERCISE: if not ml_models:  # exercise 3's way
    # EXERCISE:     raise no_model_yet()
    # EXERCISE: served = ServedModel(len(ml_models), ml_models[-1])
    # END SOLUTION
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
