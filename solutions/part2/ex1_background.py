"""Part 2, exercise 1: train a model in the background.

Run it:   uv run fastapi dev exercises/part2/ex1_background.py
Try:      http://127.0.0.1:8000/train/ then, while it trains, http://127.0.0.1:8000/info/ and /
Check it: uv run workshop check part2/ex1_background

`training` below is the workshop's MNIST training: its CNN, compiled and fitted on MNIST. Called in a
route, it would hold the request for the whole training. Added to FastAPI's `BackgroundTasks` instead, it runs
after the response is sent: being a plain `def`, FastAPI runs it in its threadpool, so the server
keeps answering other requests (try `/` and `/info/` during a training, and a second `/train/`).
"""

import threading

import keras
import numpy as np
from fastapi import BackgroundTasks, FastAPI
from keras import layers

from app.datasets import mnist_load_data  # the workshop's keras.datasets.mnist.load_data(), offline too
from app.models import mnist
from app.offline_docs import serve_docs_offline
from app.part2.training import epoch_printer

app = FastAPI(title="Part 2, exercise 1: background training")
# Keep this line if you paste the workshop's code over the file: FastAPI's own /docs and /redoc
# load their scripts from a CDN, so without it they are blank pages offline.
serve_docs_offline(app)

ml_models = []  # the trained models, newest last
num_train = 0  # the trainings running now
num_train_lock = threading.Lock()  # `num_train += 1` is a read, an add and a write: two threads could lose one


def training() -> None:
    # BEGIN SOLUTION the workshop's training function: count it in num_train while it runs, load MNIST (mnist_load_data() offline), scale and reshape the images, one-hot the labels, build and compile the workshop's CNN with keras.Sequential, fit it, append it to ml_models (see `workshop hint`)
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
    # END SOLUTION


@app.get("/")
async def read_root() -> dict[str, str]:
    return {"Hello": "World"}


@app.get("/info/")
async def read_models() -> dict[str, int]:
    # BEGIN SOLUTION answer the workshop's two counts: {"Num of model in training": <trainings running>, "Num of trained models": <how many models are trained>}
    return {"Num of model in training": num_train, "Num of trained models": len(ml_models)}
    # END SOLUTION


@app.get("/train/")
async def train_model(background_tasks: BackgroundTasks) -> dict[str, str]:
    # BEGIN SOLUTION start `training` in the background (FastAPI's BackgroundTasks) and answer {"message": "Training model in the background"} at once
    background_tasks.add_task(training)
    return {"message": "Training model in the background"}
    # END SOLUTION
