"""Part 2, exercise 2: a model ready before the first request (lifespan), and predictions on images.

Run it:   uv run fastapi dev exercises/part2/ex2_lifespan.py     (the first training runs before it serves)
Try:      curl -F file=@data/test_image/test_img7.png http://127.0.0.1:8000/predict/
Check it: uv run workshop check part2/ex2_lifespan

The code before `yield` in the lifespan runs before the app takes its first request, the code after
it at shutdown. `predict` is a plain `def`: FastAPI runs it in its threadpool, so the model's work
never holds up the event loop. `read_digit` (app.part2.uploads) refuses what is not a 28x28 image
with a 4xx that names the problem: a model that only saw 28x28 digits must not guess on a photo.
"""

from contextlib import asynccontextmanager

from fastapi import BackgroundTasks, FastAPI, UploadFile

from app import mnist
from app.datasets import load_mnist
from app.offline_docs import serve_docs_offline
from app.part2.serving import no_model_yet
from app.part2.training import TrainingCounter, epoch_printer
from app.part2.uploads import read_digit

ml_models = []  # the trained models, newest last
in_training = TrainingCounter()  # `with in_training:` counts a training while it runs, safely across threads


def training() -> None:
    with in_training:
        data = load_mnist()  # Keras' MNIST, or the bundled subset when offline
        epochs = mnist.default_epochs()  # WORKSHOP_EPOCHS, else the workshop's 15
        result = mnist.train(data.x_train, data.y_train, epochs=epochs, on_epoch_end=epoch_printer(epochs))
        ml_models.append(result.model)


@asynccontextmanager
async def lifespan(app: FastAPI):
    # BEGIN SOLUTION train a first model with training() before the app takes requests
    training()
    # EXERCISE: pass
    # END SOLUTION
    yield
    ml_models.clear()  # release the models at shutdown


app = FastAPI(title="Part 2, exercise 2: lifespan and predictions", lifespan=lifespan)
# Keep this line if you paste the workshop's code over the file: FastAPI's own /docs and /redoc
# load their scripts from a CDN, so without it they are blank pages offline.
serve_docs_offline(app)


@app.get("/")
async def read_root() -> dict[str, str]:
    return {"Hello": "World"}


@app.get("/info/")
async def read_models() -> dict[str, int]:
    return {"Num of model in training": in_training.count, "Num of trained models": len(ml_models)}


@app.get("/train/")
async def train_model(background_tasks: BackgroundTasks) -> dict[str, str]:
    background_tasks.add_task(training)
    return {"message": "Training model in the background"}


@app.post("/predict/")
def predict(file: UploadFile) -> dict[str, str | None]:
    # BEGIN SOLUTION read the uploaded image (the workshop opens it with Pillow), predict its digit with the newest model in ml_models, answer {"filename": <its name>, "result": "<digit>"}
    pixels = read_digit(file)
    if not ml_models:
        raise no_model_yet()
    digit = mnist.predict_digits(ml_models[-1], pixels)[0]
    return {"filename": file.filename, "result": str(digit)}
    # END SOLUTION
