"""Part 2, extra challenge: at start-up, find the saved models; train only when there is none.

Run it:   uv run fastapi dev exercises/part2/challenge_startup.py   (stop it and start it again: no training)
Try:      ls models/exercises/ before and after a restart
Check it: uv run workshop check part2/challenge_startup

Exercise 4 trains a new model at every start, although every model it ever trained is saved. Here the
lifespan first finds the saved models and trains only when there is none. Bring your exercise 4 over
first: its training and its predict go at the TODOs marked "exercise 4" (the starter has exercise 3's
code there, with its models in memory).

Here the saved models are the store's versions: at start-up `ml_models` gets the numbers of those
saved before, the lifespan trains only when the store serves none, and it loads the version the store
serves (the newest, unless one was pinned with ModelStore.activate). The store lists versions in
numeric order, so "newest" never depends on how file names sort, as the workshop's `sorted(...)` of
`model_<date and time>.keras` names does.
"""

import threading
from contextlib import asynccontextmanager
from datetime import datetime  # noqa: F401 (the workshop's exercise 4 names its files model_{datetime.now()}.keras)
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

        # BEGIN SOLUTION exercise 4's training (copy yours from ex4_race_free.py): fine-tune a copy of the newest saved model, loaded from its file in models/ (not ml_models[-1], the model predictions use), then save the result as a new file in models/ and append its name to ml_models (see `workshop hint`)
        with store.training_lock():  # one training at a time, from loading the base to publishing the result
            parent, model = (None, None) if from_scratch else load_base(store)  # a copy, loaded from disk
            if model is None:
                model = new_model()
            history = model.fit(
                x_train,
                y_train,
                batch_size=batch_size,
                epochs=epochs,
                validation_split=0.1,
                callbacks=[show_epochs],
                verbose=0,
            )
            trained = mnist.TrainingResult(model, history.history, parent)
            version = publish_trained(store, trained, {"size": len(y_train)}, epochs, fine_tuned=parent is not None)
        ml_models.append(version.number)
        # EXERCISE: if len(ml_models) > 0:  # exercise 3's way: the model in memory, fine-tuned in place
        # EXERCISE:     model = ml_models[-1]
        # EXERCISE: else:
        # EXERCISE:     model = new_model()
        # EXERCISE: model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1, callbacks=[show_epochs], verbose=0)
        # EXERCISE: ml_models.append(model)
        # END SOLUTION
    finally:  # a failed training stops being counted
        with num_train_lock:
            num_train -= 1


@asynccontextmanager
async def lifespan(app: FastAPI):
    # BEGIN SOLUTION fill ml_models with the models saved before (in canonical order), and train only when there is none
    ml_models.extend(store.versions())  # in numeric order
    if store.active() is None:  # nothing saved, or nothing the promotion gate let serve
        training()
    latest.get()  # going further: load the version the store serves now, not on the first request
    # EXERCISE: training()
    # END SOLUTION
    yield
    ml_models.clear()


# While it serves, the app works in models/exercises/, with a models/ folder (see the docstring above):
# keep `lifespan=runs_in_exercise_folder(lifespan)` if you paste the workshop's code over the file.
app = FastAPI(
    title="Part 2, extra challenge: find the saved models at start-up", lifespan=runs_in_exercise_folder(lifespan)
)
# Keep this line if you paste the workshop's code over the file: FastAPI's own /docs and /redoc
# load their scripts from a CDN, so without it they are blank pages offline.
serve_docs_offline(app)


@app.get("/")
async def read_root() -> dict[str, str]:
    return {"Hello": "World"}


@app.get("/info/")
async def read_models() -> dict[str, int]:
    return {"Num of model in training": num_train, "Num of trained models": len(ml_models)}


# BEGIN SOLUTION exercise 4's POST /predict/ (copy yours from ex4_race_free.py): predict with the newest saved model, loaded from its file in models/ (see `workshop hint`)
@app.post("/predict/")
def predict(file: UploadFile) -> dict[str, str | int | None]:
    pixels = read_digit(file)  # going further: a 4xx naming what is not a 28x28 image, never a 500
    served = latest.get()  # kept in memory, loaded again only when the store serves a newer version
    digit = mnist.predict_digits(served.model, pixels)[0]
    return {"filename": file.filename, "result": str(digit), "version": served.version}


# EXERCISE: @app.post("/predict/")
# EXERCISE: def predict(file: UploadFile) -> dict[str, str | None]:
# EXERCISE:     image = file.file.read(MAX_IMAGE_BYTES + 1)
# EXERCISE:     refuse_unless_digit(image, file.filename)
# EXERCISE:     if not ml_models:
# EXERCISE:         raise no_model_yet()
# EXERCISE:     image = Image.open(BytesIO(image)).convert("L")
# EXERCISE:     image = np.array(image).astype("float32") / 255
# EXERCISE:     image = np.expand_dims(image, (0, -1))
# EXERCISE:     result = ml_models[-1].predict(image, verbose=0).argmax(axis=-1)[0]  # exercise 3's way: the model in memory
# EXERCISE:     return {"filename": file.filename, "result": str(result)}
# END SOLUTION


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
