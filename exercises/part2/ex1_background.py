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
from fastapi import BackgroundTasks, FastAPI, HTTPException
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
    # TODO: the workshop's training function: count it in num_train while it runs, load MNIST (mnist_load_data() offline), scale and reshape the images, one-hot the labels, build and compile the workshop's CNN with keras.Sequential, fit it, append it to ml_models (see `workshop hint`)
    raise HTTPException(status_code=501, detail="TODO: the workshop's training function: count it in num_train while it runs, load MNIST (mnist_load_data() offline), scale and reshape the images, one-hot the labels, build and compile the workshop's CNN with keras.Sequential, fit it, append it to ml_models (see `workshop hint`)")


@app.get("/")
async def read_root() -> dict[str, str]:
    return {"Hello": "World"}


@app.get("/info/")
async def read_models() -> dict[str, int]:
    # TODO: answer the workshop's two counts: {"Num of model in training": <trainings running>, "Num of trained models": <how many models are trained>}
    raise HTTPException(status_code=501, detail='TODO: answer the workshop\'s two counts: {"Num of model in training": <trainings running>, "Num of trained models": <how many models are trained>}')


@app.get("/train/")
async def train_model(background_tasks: BackgroundTasks) -> dict[str, str]:
    # TODO: start `training` in the background (FastAPI's BackgroundTasks) and answer {"message": "Training model in the background"} at once
    raise HTTPException(status_code=501, detail='TODO: start `training` in the background (FastAPI\'s BackgroundTasks) and answer {"message": "Training model in the background"} at once')
