"""Part 2, exercise 2: a model ready before the first request (lifespan), and predictions on images.

Run it:   uv run fastapi dev exercises/part2/ex2_lifespan.py     (the first training runs before it serves)
Try:      curl -F file=@data/test_image/test_img7.png http://127.0.0.1:8000/predict/
Check it: uv run workshop check part2/ex2_lifespan

The code before `yield` in the lifespan runs before the app takes its first request, the code after
it at shutdown. `predict` reads the upload with Pillow, as the workshop does. The workshop's route
is an `async def` that awaits `file.read()`; this one is a plain `def` that reads `file.file`:
FastAPI runs it in its threadpool, so the model's work never holds up the event loop (an `async def`
runs on the event loop itself, and every other request waits while the model predicts).

What the workshop's version of this exercise still gets wrong, and what to do instead:
- A file that is not an image is a 500 (Pillow's UnidentifiedImageError), and a photo is squashed
  into a guess. `refuse_unless_digit` (app.part2.uploads) answers a 4xx naming the problem instead:
  a model that only saw 28x28 digits must not guess on anything else.
- Before any model exists, `ml_models[-1]` is an IndexError, a 500; `no_model_yet()` is a 503 with
  Retry-After, which tells the client to come back.
"""

import threading
from contextlib import asynccontextmanager
from io import BytesIO

import keras
import numpy as np
from fastapi import BackgroundTasks, FastAPI, UploadFile
from keras import layers
from PIL import Image

from app.datasets import mnist_load_data  # the workshop's keras.datasets.mnist.load_data(), offline too
from app.images import MAX_IMAGE_BYTES
from app.models import mnist
from app.offline_docs import serve_docs_offline
from app.part2.serving import no_model_yet
from app.part2.training import epoch_printer
from app.part2.uploads import refuse_unless_digit

ml_models = []  # the trained models, newest last
num_train = 0  # the trainings running now
num_train_lock = threading.Lock()  # `num_train += 1` is a read, an add and a write: two threads could lose one


def training() -> None:
    global num_train
    with num_train_lock:
        num_train += 1
    try:
        # MNIST model meta parameters
        num_classes = 10
        input_shape = (28, 28, 1)
        batch_size = 128
        epochs = mnist.default_epochs()  # WORKSHOP_EPOCHS, else the workshop's 15

        # the workshop: (x_train, y_train), _ = keras.datasets.mnist.load_data(), which needs internet
        (x_train, y_train), _ = mnist_load_data()

        # Keras' validation_split takes the LAST 10 % before any shuffling: shuffle first, so the
        # held-out images are a fair sample (uploads, sorted by name, would otherwise leave out digits)
        order = np.random.permutation(len(y_train))
        x_train, y_train = x_train[order], y_train[order]

        # Scale images to the [0, 1] range, with shape (28, 28, 1)
        x_train = np.expand_dims(x_train.astype("float32") / 255, -1)
        # convert class vectors to binary class matrices
        y_train = keras.utils.to_categorical(y_train, num_classes)

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
        # one line per epoch, so the dev server's console shows the model training
        show_epochs = keras.callbacks.LambdaCallback(on_epoch_end=epoch_printer(epochs))
        model.fit(
            x_train,
            y_train,
            batch_size=batch_size,
            epochs=epochs,
            validation_split=0.1,
            callbacks=[show_epochs],
            verbose=0,
        )

        ml_models.append(model)
    finally:  # the workshop decrements after fit: a failed training would count as running for ever
        with num_train_lock:
            num_train -= 1


@asynccontextmanager
async def lifespan(app: FastAPI):
    # BEGIN SOLUTION train a first model before the app takes requests, then yield, then release the models at shutdown
    training()
    yield
    ml_models.clear()
    # EXERCISE: yield
    # END SOLUTION


app = FastAPI(title="Part 2, exercise 2: lifespan and predictions", lifespan=lifespan)
# Keep this line if you paste the workshop's code over the file: FastAPI's own /docs and /redoc
# load their scripts from a CDN, so without it they are blank pages offline.
serve_docs_offline(app)


@app.get("/")
async def read_root() -> dict[str, str]:
    return {"Hello": "World"}


@app.get("/info/")
async def read_models() -> dict[str, int]:
    return {"Num of model in training": num_train, "Num of trained models": len(ml_models)}


@app.get("/train/")
async def train_model(background_tasks: BackgroundTasks) -> dict[str, str]:
    background_tasks.add_task(training)
    return {"message": "Training model in the background"}


# BEGIN SOLUTION POST /predict/ takes `file: UploadFile`: read its bytes, open them with Pillow as a greyscale image, make it the model's input (scaled to [0, 1], shape (1, 28, 28, 1)), answer {"filename": <its name>, "result": "<the digit the newest model predicts>"} (see `workshop hint`)
@app.post("/predict/")
def predict(file: UploadFile) -> dict[str, str | None]:
    image = file.file.read(MAX_IMAGE_BYTES + 1)  # one byte past the limit tells a file is too large
    refuse_unless_digit(image, file.filename)  # going further: a 4xx naming the problem, never a 500
    if not ml_models:
        raise no_model_yet()  # going further: a 503, where ml_models[-1] would be a 500
    # process image for prediction
    image = Image.open(BytesIO(image)).convert("L")
    image = np.array(image).astype("float32") / 255
    image = np.expand_dims(image, (0, -1))
    # predict the result
    result = ml_models[-1].predict(image, verbose=0).argmax(axis=-1)[0]
    return {"filename": file.filename, "result": str(result)}


# EXERCISE: @app.post("/predict/")
# EXERCISE: async def predict(file: UploadFile):
# EXERCISE:     TODO_501
# END SOLUTION
