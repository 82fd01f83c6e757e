"""Part 2, exercise 4: no race condition: every trained model saved to disk, trainings one at a time.

Run it:   uv run fastapi dev exercises/part2/ex4_race_free.py
Try:      curl -X POST http://127.0.0.1:8000/retrain/ twice at once, then ls models/exercises/
Check it: uv run workshop check part2/ex4_race_free

The workshop's step, yours to write: save every trained model as a file in `models/`, fine-tune a copy
of the newest saved model loaded from its file (never the model in memory, which predictions use),
and predict with the newest saved model. The starter is exercise 3's code, with its models in memory.
While the app serves, its working folder is models/exercises/, with a models/ folder made in it
(app/part2/exercise_folder.py): the workshop's `models/...` paths work on a fresh clone, where
models/ is not in git, and never mix with Part 3's store in models/.

Here every trained model is published to the exercises' versioned store (app/store.py) as
models/exercises/mnist/<version>/: the model with its metadata (parent version, data, metrics,
sha256), written under a temporary name and renamed into place, so a reader never sees half a model.
`ml_models` keeps the versions this app trained, as the workshop's keeps its file names.

What the workshop's version of this exercise still gets wrong, and what to do instead:
- `model_{datetime.now()}.keras` puts spaces and colons in file names and shows a reader a file still
  being written; numbered versions, renamed into place when complete, do neither.
- It loads the model from disk on every prediction: about 155 ms each, against 2 ms for a model kept
  in memory. `latest.get()` keeps the loaded model and loads again only when the store serves a newer
  version (a directory listing per request tells).
- Two trainings requested together both load the same base, and the second to save silently drops
  the first's work from the line of models. Holding `store.training_lock()` (a lock shared by threads
  and processes) from loading the base to publishing makes them run one after the other: the second
  starts from the first's result, and the store keeps a chain of versions, each naming its parent.
"""

import threading
from contextlib import asynccontextmanager
from datetime import datetime  # noqa: F401 (the starter's: the workshop names its files model_{datetime.now()}.keras)
from io import BytesIO

import keras
import numpy as np
from fastapi import BackgroundTasks, FastAPI, UploadFile
from fastapi.responses import HTMLResponse
from keras import layers
from PIL import Image

from app.datasets import mnist_load_data  # the workshop's keras.datasets.mnist.load_data(), offline too
from app.images import MAX_IMAGE_BYTES  # noqa: F401 (the starter's: exercise 3's predict)
from app.models import mnist
from app.offline_docs import serve_docs_offline
from app.part2.exercise_folder import runs_in_exercise_folder
from app.part2.serving import LatestModel, no_model_yet  # noqa: F401 (no_model_yet: the starter's)
from app.part2.training import epoch_printer, load_base, publish_trained
from app.part2.uploads import checked_training_files, read_digit, refuse_unless_digit  # noqa: F401 (the starter's)
from app.paths import exercise_models_dir
from app.store import ModelStore

ml_models = []  # the models this app trained, newest last
num_train = 0  # the trainings running now
num_train_lock = threading.Lock()  # `num_train += 1` is a read, an add and a write: two threads could lose one

# models/exercises/mnist/: the exercises' own store; the notebooks publish to models/mnist/, never here
store = ModelStore(mnist.MODEL_NAME, root=exercise_models_dir())
latest = LatestModel(store)  # the served model, kept in memory

# MNIST model meta parameters
num_classes = 10
input_shape = (28, 28, 1)


def new_model():
    """The workshop's CNN, compiled (exercise 1's)."""
    model = keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def training(x_train=None, y_train=None, from_scratch=False) -> None:
    global num_train
    with num_train_lock:
        num_train += 1
    try:
        batch_size = 128
        epochs = mnist.default_epochs()  # WORKSHOP_EPOCHS, else the workshop's 15
        if (x_train is None) or (y_train is None):
            (x_train, y_train), _ = mnist_load_data()  # the workshop: keras.datasets.mnist.load_data()

        # validation_split takes the LAST 10 % before any shuffling: uploads sorted by name would leave digits out
        order = np.random.permutation(len(y_train))
        x_train, y_train = x_train[order], y_train[order]
        x_train = np.expand_dims(x_train.astype("float32") / 255, -1)
        y_train = keras.utils.to_categorical(y_train, num_classes)
        show_epochs = keras.callbacks.LambdaCallback(on_epoch_end=epoch_printer(epochs))

        # TODO: fine-tune a copy of the newest saved model, loaded from its file in models/ (not ml_models[-1], the model predictions use), then save the result as a new file in models/ and append its name to ml_models (see `workshop hint`)
        if len(ml_models) > 0:  # exercise 3's way: the model in memory, fine-tuned in place
            model = ml_models[-1]
        else:
            model = new_model()
        model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1, callbacks=[show_epochs], verbose=0)
        ml_models.append(model)
    finally:  # a failed training stops being counted
        with num_train_lock:
            num_train -= 1


@asynccontextmanager
async def lifespan(app: FastAPI):
    training()
    yield
    ml_models.clear()


# While it serves, the app works in models/exercises/, with a models/ folder (see the docstring above):
# keep `lifespan=runs_in_exercise_folder(lifespan)` if you paste the workshop's code over the file.
app = FastAPI(title="Part 2, exercise 4: no race condition", lifespan=runs_in_exercise_folder(lifespan))
# Keep this line if you paste the workshop's code over the file: FastAPI's own /docs and /redoc
# load their scripts from a CDN, so without it they are blank pages offline.
serve_docs_offline(app)


@app.get("/")
async def read_root() -> dict[str, str]:
    return {"Hello": "World"}


@app.get("/info/")
async def read_models() -> dict[str, int]:
    return {"Num of model in training": num_train, "Num of trained models": len(ml_models)}


# TODO: POST /predict/: predict with the newest saved model, loaded from its file in models/ (see `workshop hint`)
@app.post("/predict/")
def predict(file: UploadFile) -> dict[str, str | None]:
    image = file.file.read(MAX_IMAGE_BYTES + 1)
    refuse_unless_digit(image, file.filename)
    if not ml_models:
        raise no_model_yet()
    image = Image.open(BytesIO(image)).convert("L")
    image = np.array(image).astype("float32") / 255
    image = np.expand_dims(image, (0, -1))
    result = ml_models[-1].predict(image, verbose=0).argmax(axis=-1)[0]  # exercise 3's way: the model in memory
    return {"filename": file.filename, "result": str(result)}


@app.post("/train/")
def train_model(files: list[UploadFile], background_tasks: BackgroundTasks) -> dict[str, str | int]:
    train_img = []
    labels = []
    # going further: every file checked first (a 4xx naming a bad one, never a 500), zips opened
    for file_name, image in checked_training_files(files):
        image = Image.open(BytesIO(image)).convert("L")
        train_img.append(np.array(image))
        # checked above: exactly one digit before the extension, where img_12.png would read as a 1
        labels.append(int(file_name.split("_")[-1][0]))

    background_tasks.add_task(training, np.array(train_img), np.array(labels))
    return {"message": "Training model in the background", "images": len(labels)}


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
