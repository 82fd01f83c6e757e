"""Part 2, exercise 1: train a model in the background.

Run it:   uv run fastapi dev exercises/part2/ex1_background.py
Try:      http://127.0.0.1:8000/train/ then, while it trains, http://127.0.0.1:8000/info/ and /
Check it: uv run workshop check part2/ex1_background

`training` below is the workshop's MNIST training (app.mnist holds the CNN). Called in a route, it
would hold the request for the whole training. Added to FastAPI's `BackgroundTasks` instead, it runs
after the response is sent: being a plain `def`, FastAPI runs it in its threadpool, so the server
keeps answering other requests (try `/` and `/info/` during a training, and a second `/train/`).
"""

from fastapi import BackgroundTasks, FastAPI, HTTPException

from app import mnist
from app.datasets import load_mnist
from app.offline_docs import serve_docs_offline
from app.part2.training import TrainingCounter, epoch_printer

app = FastAPI(title="Part 2, exercise 1: background training")
# Keep this line if you paste the workshop's code over the file: FastAPI's own /docs and /redoc
# load their scripts from a CDN, so without it they are blank pages offline.
serve_docs_offline(app)

ml_models = []  # the trained models, newest last
in_training = TrainingCounter()  # `with in_training:` counts a training while it runs, safely across threads


def training() -> None:
    with in_training:
        data = load_mnist()  # Keras' MNIST, or the bundled subset when offline
        epochs = mnist.default_epochs()  # WORKSHOP_EPOCHS, else the workshop's 15
        result = mnist.train(data.x_train, data.y_train, epochs=epochs, on_epoch_end=epoch_printer(epochs))
        ml_models.append(result.model)


@app.get("/")
async def read_root() -> dict[str, str]:
    return {"Hello": "World"}


@app.get("/info/")
async def read_models() -> dict[str, int]:
    # TODO: answer the workshop's two counts: {"Num of model in training": <trainings running>, "Num of trained models": <models in ml_models>}
    raise HTTPException(status_code=501, detail='TODO: answer the workshop\'s two counts: {"Num of model in training": <trainings running>, "Num of trained models": <models in ml_models>}')


@app.get("/train/")
async def train_model(background_tasks: BackgroundTasks) -> dict[str, str]:
    # TODO: start `training` in the background (FastAPI's BackgroundTasks) and answer {"message": "Training model in the background"} at once
    raise HTTPException(status_code=501, detail='TODO: start `training` in the background (FastAPI\'s BackgroundTasks) and answer {"message": "Training model in the background"} at once')
