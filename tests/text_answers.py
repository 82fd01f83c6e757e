"""The workshop text's own code for each step, as a learner types it: answers the first tier must pass.

Each is the text's code with one change only where it cannot work offline: `mnist_load_data()` from
app.datasets in place of `keras.datasets.mnist.load_data()`, which returns the same arrays. The
extra challenges have no code in the text; theirs are a plausible learner's answer in the text's style.
"""

PART1_HELLO = """
from typing import Union

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
def read_root():
    return {"Hello": "World"}


@app.get("/users/{username}")
def read_user(username: str, q: Union[str, None] = None):
    return {"user": username, "q": q}
"""

PENGUIN_MODEL = """
import pandas as pd
from sklearn import preprocessing
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

data = pd.read_csv('data/penguins.csv')
data = data.dropna()

le = preprocessing.LabelEncoder()
X = data[["bill_length_mm", "flipper_length_mm"]]
le.fit(data["species"])
y = le.transform(data["species"])
clf = Pipeline(
    steps=[("scaler", StandardScaler()), ("knn", KNeighborsClassifier(n_neighbors=11))]
)
clf.fit(X, y)
"""

PREDICT_BODY = """
    param = {
              "bill_length": bill,
              "flipper_length": flipper
            }
    result = clf.predict([[bill, flipper]])
    return {
        "parameters": param,
        "result": le.inverse_transform(result)[0],
    }
"""

PART1_PREDICT = (
    PENGUIN_MODEL
    + """
from fastapi import FastAPI

app = FastAPI()


@app.get("/predict/")
def predict(bill: float, flipper: float):"""
    + PREDICT_BODY
)


def part1_validation(bill_bound: str, flipper_bound: str) -> str:
    """Exercise 3 with the maximum a learner chose, e.g. part1_validation("le=100", "lt=300")."""
    return (
        PENGUIN_MODEL
        + f"""
from typing import Annotated

from fastapi import FastAPI, Query

from app.models.penguins.api import MAX_BILL_MM, MAX_FLIPPER_MM

app = FastAPI()


@app.get("/predict/")
def predict(
    bill: Annotated[float, Query(gt=0, {bill_bound})],
    flipper: Annotated[float, Query(gt=0, {flipper_bound})]
):"""
        + PREDICT_BODY
    )


MNIST_TRAINING_START = """
import numpy as np
import keras
from keras import layers

from app.datasets import mnist_load_data

ml_models = []
num_train = 0

def training(x_train = None, y_train = None{extra_parameter}):
    global num_train
    num_train += 1

    # MNIST model meta parameters
    num_classes = 10
    input_shape = (28, 28, 1)
    batch_size = 128
    epochs = 15

    if (x_train is None) or (y_train is None):
        # Load the data and split it between train and test sets
        (x_train, y_train), _ = mnist_load_data()  # the workshop: keras.datasets.mnist.load_data()

    # Scale images to the [0, 1] range
    x_train = x_train.astype("float32") / 255

    # Make sure images have shape (28, 28, 1)
    x_train = np.expand_dims(x_train, -1)

    # convert class vectors to binary class matrices
    y_train = keras.utils.to_categorical(y_train, num_classes)
"""

NEW_MODEL = """
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
"""

TRAINING_END = """
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1)

    ml_models.append(model)

    num_train -= 1
"""

ROUTES = """
@app.get("/")
async def read_root():
    return {"Hello": "World"}

@app.get("/info/")
async def read_models():
    return {
        "Num of model in training" : num_train,
        "Num of trained models": len(ml_models)
    }
"""

GET_TRAIN = """
@app.get("/train/")
async def train_model(background_tasks: BackgroundTasks):
    background_tasks.add_task(training)
    return {"message": "Training model in the background"}
"""

LIFESPAN = """
from contextlib import asynccontextmanager

@asynccontextmanager
async def lifespan(app: FastAPI):
    # Initial training model before appliction
    training()

    yield

    # Clean up the models and release resources
    ml_models.clear()

app = FastAPI(lifespan=lifespan)
"""

PREDICT = """
@app.post("/predict/")
async def predict(file: UploadFile):
    image = await file.read()
    # process image for prediction
    image = Image.open(BytesIO(image)).convert('L')
    image = np.array(image).astype("float32") / 255
    image = np.expand_dims(image, (0, -1))
    # predict the result
    result = ml_models[-1].predict(image).argmax(axis=-1)[0]
    return {"filename": file.filename,
            "result": str(result)}
"""

POST_TRAIN_AND_UPLOAD = '''
@app.post("/train/")
async def train_model(files: list[UploadFile], background_tasks: BackgroundTasks):
    train_img = []
    labels = []

    for file in files:
        image = await file.read()
        image = Image.open(BytesIO(image)).convert('L')
        image = np.array(image)
        train_img.append(image)
        label = int(file.filename.split("_")[-1][0])
        labels.append(label)

    background_tasks.add_task(training, np.array(train_img), np.array(labels))
    return {"message": "Training model in the background"}

from fastapi.responses import HTMLResponse

@app.get("/upload/")
async def upload():
    content = """
<body>
<form action="/train/" enctype="multipart/form-data" method="post">
<input name="files" type="file" multiple>
<input type="submit">
</form>
</body>
    """
    return HTMLResponse(content=content)
'''

IMPORTS = """
from fastapi import UploadFile, BackgroundTasks, FastAPI
from PIL import Image
from io import BytesIO
"""

FINE_TUNE = """
    if len(ml_models) > 0{condition}:
        model = ml_models[-1]
    else:""" + NEW_MODEL.replace("\n    ", "\n        ")

PART2_BACKGROUND = (
    MNIST_TRAINING_START.format(extra_parameter="")
    + NEW_MODEL
    + TRAINING_END
    + "\nfrom fastapi import BackgroundTasks, FastAPI\n\napp = FastAPI()\n"
    + ROUTES
    + GET_TRAIN
)
PART2_LIFESPAN = (
    MNIST_TRAINING_START.format(extra_parameter="")
    + NEW_MODEL
    + TRAINING_END
    + IMPORTS
    + LIFESPAN
    + ROUTES
    + GET_TRAIN
    + PREDICT
)
PART2_RETRAIN = (
    MNIST_TRAINING_START.format(extra_parameter="")
    + FINE_TUNE.format(condition="")
    + TRAINING_END
    + IMPORTS
    + LIFESPAN
    + ROUTES
    + PREDICT
    + POST_TRAIN_AND_UPLOAD
)
PART2_RETRAIN_CHALLENGE = (
    MNIST_TRAINING_START.format(extra_parameter=", from_scratch = False")
    + FINE_TUNE.format(condition=" and not from_scratch")
    + TRAINING_END
    + IMPORTS
    + LIFESPAN
    + ROUTES
    + PREDICT
    + POST_TRAIN_AND_UPLOAD
    + """
@app.get("/retrain/")
async def retrain_model(background_tasks: BackgroundTasks):
    background_tasks.add_task(training, from_scratch=True)
    return {"message": "Training a new model from scratch in the background"}
"""
)

FROM_FILE = FINE_TUNE.format(condition="").replace(
    "model = ml_models[-1]", 'model = keras.saving.load_model(f"models/{ml_models[-1]}")'
)

SAVE_TO_FILE = """
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1)

    model_name = f"model_{datetime.now()}.keras"
    model.save(f"models/{model_name}")

    ml_models.append(model_name)
    num_train -= 1
"""

PREDICT_FROM_FILE = PREDICT.replace(
    "    result = ml_models[-1].predict(image)",
    '    model = keras.saving.load_model(f"models/{ml_models[-1]}")\n    result = model.predict(image)',
)

PART2_RACE_FREE = (
    "from datetime import datetime\n"
    + MNIST_TRAINING_START.format(extra_parameter="")
    + FROM_FILE
    + SAVE_TO_FILE
    + IMPORTS
    + LIFESPAN
    + ROUTES
    + PREDICT_FROM_FILE
    + POST_TRAIN_AND_UPLOAD
)

STARTUP_LIFESPAN = """
import os
from contextlib import asynccontextmanager

@asynccontextmanager
async def lifespan(app: FastAPI):
    # Load the saved models, in canonical order; train only if there is none
    ml_models.extend(sorted(name for name in os.listdir("models") if name.endswith(".keras")))
    if not ml_models:
        training()

    yield

    ml_models.clear()

app = FastAPI(lifespan=lifespan)
"""

PART2_STARTUP = PART2_RACE_FREE.replace(LIFESPAN, STARTUP_LIFESPAN)

# exercise -> the text's answer
TEXT_ANSWERS = {
    "part1/ex1_hello": PART1_HELLO,
    "part1/ex2_predict": PART1_PREDICT,
    "part2/ex1_background": PART2_BACKGROUND,
    "part2/ex2_lifespan": PART2_LIFESPAN,
    "part2/ex3_retrain": PART2_RETRAIN,
    "part2/challenge_retrain": PART2_RETRAIN_CHALLENGE,
    "part2/ex4_race_free": PART2_RACE_FREE,
    "part2/challenge_startup": PART2_STARTUP,
}
# Exercise 3: "try adding a maximum value": any sensible maximum does the step.
VALIDATION_BOUNDS = [
    ("le=100", "le=300"),
    ("lt=60.5", "lt=232"),
    ("le=MAX_BILL_MM", "le=MAX_FLIPPER_MM"),
    ("lt=1000", "lt=1000"),
]
