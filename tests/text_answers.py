"""The workshop text's own code for each step, as a learner types it: answers the first tier must pass.

`AT_TODOS` is the text's code for each TODO of a starter, in the starter's order, as a learner pastes
it there; `TEXT_ANSWERS` is each exercise's file with it pasted (workshop.exercises.fill_todos), or
the text's whole file where its step is a whole file of its own (Part 1, exercise 2: the text trains
its model its own way). `WHOLE_FILES` are the text's whole Part 1 files, as a learner who pastes the
text over a file has them; Part 3's are the text's Dockerfile lines at the Dockerfile's TODOs.

The code is the text's with one change only where it cannot work offline: `mnist_load_data()` from
app.datasets in place of `keras.datasets.mnist.load_data()`, which returns the same arrays. The
extra challenges have no code in the text; theirs are a plausible learner's answer in the text's style.
"""

from pathlib import Path

from workshop import exercises

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


# Part 2: the text's pieces of code, as it gives them (inside `training`, its CNN is indented once).
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

POST_TRAIN = """
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

"""

UPLOAD = '''
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

PREDICT_FROM_FILE = PREDICT.replace(
    "    result = ml_models[-1].predict(image)",
    '    model = keras.saving.load_model(f"models/{ml_models[-1]}")\n    result = model.predict(image)',
)

# The text's code at each TODO of the starters (indentation is the TODO's: these are dedented).
HELLO_ROOT = 'return {"Hello": "World"}'
HELLO_USER = 'return {"user": username, "q": q}'

TRAINING_BODY = (
    """
global num_train
num_train += 1

# MNIST model meta parameters
num_classes = 10
input_shape = (28, 28, 1)
batch_size = 128
epochs = 15

# Load the data and split it between train and test sets
(x_train, y_train), _ = mnist_load_data()  # the workshop: keras.datasets.mnist.load_data()

# Scale images to the [0, 1] range
x_train = x_train.astype("float32") / 255

# Make sure images have shape (28, 28, 1)
x_train = np.expand_dims(x_train, -1)

# convert class vectors to binary class matrices
y_train = keras.utils.to_categorical(y_train, num_classes)
"""
    + NEW_MODEL.replace("\n    ", "\n")
    + """
model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1)

ml_models.append(model)

num_train -= 1
"""
)

INFO_BODY = """
return {
    "Num of model in training" : num_train,
    "Num of trained models": len(ml_models)
}
"""

GET_TRAIN_BODY = """
background_tasks.add_task(training)
return {"message": "Training model in the background"}
"""

LIFESPAN_BODY = """
# Initial training model before appliction
training()

yield

# Clean up the models and release resources
ml_models.clear()
"""

LOAD_WHEN_NO_DATA = """
if (x_train is None) or (y_train is None):
    # Load the data and split it between train and test sets
    (x_train, y_train), _ = mnist_load_data()  # the workshop: keras.datasets.mnist.load_data()
"""


def fine_tune(condition: str = "", base: str = "ml_models[-1]") -> str:
    """The text's `if len(ml_models) > 0: model = <base> else: <a new model>`."""
    return (
        f"""
if len(ml_models) > 0{condition}:
    model = {base}
else:"""
        + NEW_MODEL
    )


RETRAIN_BODY = """
background_tasks.add_task(training, from_scratch=True)
return {"message": "Training a new model from scratch in the background"}
"""

FROM_FILE_AND_SAVE = (
    fine_tune(base='keras.saving.load_model(f"models/{ml_models[-1]}")')
    + """
model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1)

model_name = f"model_{datetime.now()}.keras"
model.save(f"models/{model_name}")

ml_models.append(model_name)
"""
)

STARTUP_BODY = """
import os

# Load the saved models, in canonical order; train only if there is none
ml_models.extend(sorted(name for name in os.listdir("models") if name.endswith(".keras")))
if not ml_models:
    training()
"""

AT_TODOS: dict[str, list[str]] = {
    "part1/ex1_hello": [HELLO_ROOT, HELLO_USER],
    "part2/ex1_background": [TRAINING_BODY, INFO_BODY, GET_TRAIN_BODY],
    "part2/ex2_lifespan": [LIFESPAN_BODY, PREDICT],
    "part2/ex3_retrain": [LOAD_WHEN_NO_DATA, fine_tune(), POST_TRAIN, UPLOAD],
    "part2/challenge_retrain": [fine_tune(" and not from_scratch"), RETRAIN_BODY],
    "part2/ex4_race_free": [FROM_FILE_AND_SAVE, PREDICT_FROM_FILE],
    "part2/challenge_startup": [FROM_FILE_AND_SAVE, STARTUP_BODY, PREDICT_FROM_FILE],
}


def at_todos(name: str, fills: list[str]) -> str:
    """The starter of exercise `name` with `fills` pasted at its TODOs."""
    return exercises.fill_todos(Path(f"{name}.py"), fills)


# Part 3: the text's Dockerfile at the TODOs of exercises/part3/Dockerfile (requirements, code, the
# going-further VOLUME, CMD), with this repository's paths: the app is exercises/part2/challenge_startup.py
# and imports app/, which reads data/. Exercise 1 copies the app as the text does, to /code/main.py.
DOCKERFILE_REQUIREMENTS = """
COPY ./requirements.txt /code/requirements.txt

RUN pip install --no-cache-dir --upgrade -r /code/requirements.txt
"""
DOCKERFILE_EX1 = [
    DOCKERFILE_REQUIREMENTS,
    """
COPY ./app /code/app
COPY ./data /code/data
COPY ./exercises/part2/challenge_startup.py /code/main.py
""",
    "",
    'CMD ["fastapi", "run", "main.py", "--port", "80"]',
]
# Exercise 2, for the text's `docker run -v $(pwd):/code`: the app served by its path in the checkout.
DOCKERFILE_EX2 = [
    DOCKERFILE_REQUIREMENTS,
    """
COPY ./app /code/app
COPY ./data /code/data
COPY ./exercises/part2/challenge_startup.py /code/exercises/part2/challenge_startup.py
ENV PYTHONPATH=/code
""",
    "",
    'CMD ["fastapi", "run", "exercises/part2/challenge_startup.py", "--port", "80"]',
]


def dockerfile_at_todos(fills: list[str]) -> str:
    return exercises.fill_todos(Path("part3/Dockerfile"), fills)


# Part 1: the text's whole files, as a learner who pastes the text over the file has them.
WHOLE_FILES = {
    "part1/ex1_hello": PART1_HELLO,
    "part1/ex2_predict": PART1_PREDICT,
    "part1/ex3_validation": part1_validation("le=100", "le=300"),
}

# exercise -> its file as the text's code makes it: pasted at the TODOs, or the text's whole file
# where the text's step is a file of its own (Part 1, exercise 2 trains the model its own way).
TEXT_ANSWERS = {
    **{name: at_todos(name, fills) for name, fills in AT_TODOS.items()},
    "part1/ex2_predict": PART1_PREDICT,
}


def part1_validation_at_todo(bill_bound: str, flipper_bound: str) -> str:
    """Exercise 3's starter with the text's bounded parameters at its TODO."""
    return at_todos(
        "part1/ex3_validation",
        [
            f"""
bill: Annotated[float, Query(gt=0, {bill_bound})],
flipper: Annotated[float, Query(gt=0, {flipper_bound})],
"""
        ],
    )


# Exercise 3: "try adding a maximum value": any sensible maximum does the step.
VALIDATION_BOUNDS = [
    ("le=100", "le=300"),
    ("lt=60.5", "lt=232"),
    ("le=MAX_BILL_MM", "le=MAX_FLIPPER_MM"),
    ("lt=1000", "lt=1000"),
]
