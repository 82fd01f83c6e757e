# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Part 1: FastAPI basics, and a model that answers on demand
#
# In this part you write four small web services. The first only says hello; the second answers which
# species a penguin is from two measurements; the third refuses measurements no penguin could have; the
# last reads lengths with their units.
#
# **How this notebook works.** Each exercise is a file in `exercises/part1/` with a `TODO` where your code
# goes. A cell here starts that file as a real web server in the background (`start_app`), the next cells
# send it requests and show the answers, and `check(...)` runs the same checks as `uv run workshop check`.
# Edit the file in your editor, come back, and run the cells again: `start_app` always loads the file as it
# is now. A route you have not written yet answers *not written yet* with its `TODO`, so you can run the
# whole notebook at any time.
#
# You can do the same from a terminal: `uv run fastapi dev exercises/part1/ex1_hello.py` serves a file
# and reloads it when you save, and `uv run workshop check part1/ex1_hello` checks it.

# %% tags=["parameters"]
side = None  # whose files the cells start: None reads WORKSHOP_SIDE, else "exercises" (yours); "solutions" too

# %%
import math
from typing import Annotated

import numpy as np
import pandas as pd
from fastapi import FastAPI, Query
from fastapi.testclient import TestClient

from app.datasets import PENGUIN_FEATURES, load_penguins
from app.models.penguins import train
from app.models.penguins.units import ACCEPTED_UNITS
from app.paths import DATA_DIR
from workshop.notebook import check, claim, show, start_app, use_side
from workshop.notebook_pictures import plot_answer_map

print(f"The cells below start and check the files in {use_side(side)}/.")

# %% [markdown]
# ## What FastAPI is, and why it suits a machine-learning project
#
# A web API is a program that answers requests sent over HTTP: a client (a browser, `curl`, another
# program) asks for a *path* such as `/predict/` with some parameters, and the server sends back an answer,
# here always JSON. FastAPI turns ordinary Python functions into such endpoints: a decorator says which
# HTTP method and path a function answers, and the function's parameters, with their type hints, say what
# the request must carry. From those same declarations FastAPI checks every request before your code runs
# (with Pydantic) and writes an interactive documentation of the API.
#
# For a data-science team this means a model can be put behind an API in an afternoon, with little web
# knowledge, and the same code can grow into a service that runs in production: that is the path of this
# workshop.
#
# FastAPI apps are served by an ASGI server, uvicorn; `fastapi dev` starts one for you, and so does
# `start_app` below.

# %% [markdown]
# ## Exercise 1: hello, world
#
# Open **`exercises/part1/ex1_hello.py`**. The app is already created (`app = FastAPI()`) and has two
# routes; their bodies are `TODO`s. Write them so that:
#
# ```python
# @app.get("/")
# def read_root():
#     return {"Hello": "World"}
#
#
# @app.get("/users/{username}")
# def read_user(username: str, q: str | None = None):
#     return {"user": username, "q": q}
# ```
#
# `@app.get("/")` makes `read_root` answer `GET /`; the dictionary it returns is sent as JSON. In the second
# route, `{username}` in the path is a **path parameter**: whatever the client puts there arrives in the
# argument of that name. `q` is not in the path, so it is a **query parameter**, read from the part of the
# URL after `?`; its default of `None` makes it optional.
#
# Start it (the file as it is now; run this cell again after each change):

# %%
hello = start_app("part1/ex1_hello")

# %%
hello.get("/")

# %% [markdown]
# ### Path and query parameters
#
# The workshop asks you to try `/users/johndoe`, then the same with `?q=somequery`. Here are both, and a
# few more requests that show where each parameter comes from:

# %%
for path, params in [
    ("/users/johndoe", None),
    ("/users/johndoe", {"q": "somequery"}),
    ("/users/jane doe", {"q": "two words"}),  # the client encodes the space; FastAPI decodes it
    ("/users/johndoe", {"q": "somequery", "page": 2}),  # a parameter the function does not declare
    ("/users/", None),  # no user name: no route matches
    ("/users/john/doe", None),  # a path parameter stops at the next "/"
]:
    show(hello.get(path, params=params))

# %%
with claim("the path gives `username`, the query string gives `q`, and `q` is null when it is absent"):
    assert hello.get("/users/johndoe").json() == {"user": "johndoe", "q": None}
    assert hello.get("/users/johndoe", params={"q": "somequery"}).json() == {"user": "johndoe", "q": "somequery"}
    assert hello.get("/users/jane doe").json()["user"] == "jane doe"
    assert hello.get("/users/johndoe", params={"page": 2}).json() == {"user": "johndoe", "q": None}
    assert hello.get("/users/").status_code == 404, "without a user name no route matches"
    assert hello.get("/users/john/doe").status_code == 404, "a path parameter holds no `/`"

# %% [markdown]
# ### The documentation FastAPI writes: `/docs` and `/redoc`
#
# Open the two links below. `/docs` is Swagger UI: every route with its parameters, and a **Try it out**
# button that sends a request from the page. `/redoc` shows the same API with ReDoc, as a document to read.
# (Both pages normally load their scripts from a CDN; `serve_docs_offline(app)` in each exercise makes
# the app serve them itself, so they work without internet.)

# %%
show(hello.docs, hello.redoc)

# %% [markdown]
# Both pages are drawn from one JSON document that FastAPI builds from your functions, the OpenAPI schema
# at `/openapi.json`. Here is what it says about each parameter; nothing in it was written by hand:

# %%
with claim("the schema says `username` is a required path parameter and `q` an optional query parameter"):
    schema = hello.get("/openapi.json").json()
    rows = [
        {"route": f"{method.upper()} {path}", "parameter": p["name"], "in": p["in"], "required": p["required"]}
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
        for p in operation.get("parameters", [])
    ]
    show(pd.DataFrame(rows))
    found = {(row["parameter"], row["in"], row["required"]) for row in rows}
    assert {("username", "path", True), ("q", "query", False)} <= found, found

# %%
check("part1/ex1_hello")

# %%
hello.stop()

# %% [markdown]
# ## Exercise 2: prediction on demand
#
# Now a model. The workshop's model tells three penguin species apart (Adélie, Chinstrap, Gentoo) from the
# length of the bill and of the flipper: the measurements are standardised, then the 11 nearest penguins of
# the data set vote. **Spend a few minutes in `notebooks/penguins.ipynb`** first: it trains this model,
# measures it on penguins it did not see, and draws what it learnt.
#
# The plan for the service is the simplest there is: train the model when the app starts (a few
# milliseconds for 342 penguins), and answer `GET /predict/?bill=...&flipper=...` with the species.
#
# ### The data, and a flaw in the workshop's cleaning
#
# The workshop cleans `data/penguins.csv` with `data.dropna()`. That drops every row with *any* missing
# value, including rows that only miss the penguin's sex, which the model never reads:

# %%
raw = pd.read_csv(DATA_DIR / "penguins.csv")
needed = [*PENGUIN_FEATURES, "species"]
print(f"{len(raw)} rows in the file")
print(f"{len(raw.dropna())} left after dropna(): every row with any gap is gone")
print(f"{len(raw.dropna(subset=needed))} left when only the rows missing a measurement or the species go")
raw[raw[needed].notna().all(axis=1) & raw.isna().any(axis=1)]

# %%
with claim("dropna() throws away penguins the model could learn from"):
    assert len(raw.dropna()) < len(raw.dropna(subset=needed)) == len(load_penguins())

# %% [markdown]
# This project's `app.models.penguins.train()` drops only the rows missing what the model needs. It fits the same
# pipeline as the workshop, a `StandardScaler` then a `KNeighborsClassifier(n_neighbors=11)`, on all the
# penguins. (scikit-learn takes the species names as labels, so no `LabelEncoder` is needed: the answer is
# already a name.) Fitting on every penguin is the workshop's shortcut, fine once the recipe has been
# measured: the penguin notebook holds a quarter of them out to do that.

# %%
model = train()
one_penguin = pd.DataFrame({"bill_length_mm": [40.3], "flipper_length_mm": [195.0]})
print(model)
print("a penguin with a 40.3 mm bill and a 195 mm flipper is", model.predict(one_penguin)[0])

# %% [markdown]
# ### Your turn
#
# Open **`exercises/part1/ex2_predict.py`**. The model is trained at the top of the file, once, when the app
# starts (not on every request). Write the body of `predict` so that it answers the parameters it received
# and the species the model predicts for them, for example:
#
# ```python
# @app.get("/predict/")
# def predict(bill: float, flipper: float):
#     parameters = {"bill_length": bill, "flipper_length": flipper}
#     penguin = pd.DataFrame({"bill_length_mm": [bill], "flipper_length_mm": [flipper]})
#     return {"parameters": parameters, "result": model.predict(penguin)[0]}
# ```
#
# `bill: float` declares a query parameter that must be a number: FastAPI converts `"40.3"` from the URL
# into `40.3` before calling you.

# %%
predict = start_app("part1/ex2_predict")

# %%
predict.get("/predict/", params={"bill": 40.3, "flipper": 195})

# %%
with claim("GET /predict/?bill=40.3&flipper=195 answers an Adelie, with the parameters it read"):
    answer = predict.get("/predict/", params={"bill": 40.3, "flipper": 195}).json()
    assert answer == {"parameters": {"bill_length": 40.3, "flipper_length": 195.0}, "result": "Adelie"}, answer

# %% [markdown]
# ### What the service answers, everywhere
#
# The workshop suggests `?bill=20&flipper=200`. Rather than one point, let us ask the service about a whole
# grid of measurements, from 0 to well beyond any real penguin, and colour each point by its answer. The
# dots are the real penguins.

# %% tags=["figure"]
with claim("the service answers a species for every pair of numbers, even where no penguin could be"):
    bills, flippers = np.meshgrid(np.linspace(0, 120, 21), np.linspace(0, 320, 21))
    answers = np.array(
        [
            predict.get("/predict/", params={"bill": bill, "flipper": flipper}).json()["result"]
            for bill, flipper in zip(bills.flat, flippers.flat)
        ]
    ).reshape(bills.shape)
    plot_answer_map(bills, flippers, answers, load_penguins(), "GET /predict/ on a grid: every point gets a species")
    assert set(answers.flat) <= {"Adelie", "Chinstrap", "Gentoo"}
    assert answers[0, 0] in {"Adelie", "Chinstrap", "Gentoo"}, "a penguin with no bill and no flipper"

# %% [markdown]
# A nearest-neighbour vote always has a nearest neighbour: a penguin with no bill at all is still given a
# species. The next exercise is about refusing such questions.

# %%
check("part1/ex2_predict")

# %% [markdown]
# ## Exercise 3: validating the query parameters
#
# The workshop's question: **what happens if you send a negative bill?** Try it, and a few other values, on
# your exercise 2 app:

# %%
tries = ["-3", "0", "nan", "inf", "1e308", "abc", "40.3"]
for bill in tries:
    show(predict.get("/predict/", params={"bill": bill, "flipper": 195}))

# %%
with claim("`bill: float` refuses text with a 422 naming the parameter, but answers for -3 as for a penguin"):
    assert predict.get("/predict/", params={"bill": "abc", "flipper": 195}).status_code == 422
    wrong = predict.get("/predict/", params={"bill": "abc", "flipper": 195}).json()["detail"][0]
    assert wrong["loc"] == ["query", "bill"], wrong
    assert predict.get("/predict/", params={"bill": -3, "flipper": 195}).json()["result"], "a species for -3"

# %% [markdown]
# The type annotation already refuses text: FastAPI answers **422 Unprocessable Entity**, with a `detail`
# that names the parameter (`"loc": ["query", "bill"]`) and says what is wrong, and your function never
# runs. But `-3`, `0` and `1e308` are perfectly good floats, and so are `nan` and `inf` (Python's `float()`
# reads them): the model is asked about them and answers. Only `nan` and `inf` make scikit-learn raise an
# error, a 500 for the client unless the route catches it (the solution turns it into a 422).
#
# The workshop's fix declares a bound with `Query`:
#
# ```python
# from typing import Annotated
# from fastapi import Query
#
# @app.get("/predict/")
# def predict(bill: Annotated[float, Query(gt=0)], flipper: Annotated[float, Query(gt=0)]):
#     ...
# ```
#
# A lower bound alone is not enough. Here is that exact declaration in a throw-away app, run in this
# notebook (FastAPI's `TestClient` calls it without a server):

# %%
lower_bound_only = FastAPI()


@lower_bound_only.get("/predict/")
def bounded_below(bill: Annotated[float, Query(gt=0)], flipper: Annotated[float, Query(gt=0)]):
    return {"bill_length": bill, "flipper_length": flipper}


with TestClient(lower_bound_only, raise_server_exceptions=False) as client:
    for bill in tries:
        response = client.get("/predict/", params={"bill": bill, "flipper": 195})
        print(f"bill={bill:6} -> {response.status_code} {response.text[:90]}")

# %%
with TestClient(lower_bound_only, raise_server_exceptions=False) as client:
    with claim("with only `gt=0`, 1e308 passes and inf reaches the code (a 500)"):
        assert client.get("/predict/", params={"bill": "1e308", "flipper": 195}).status_code == 200
        assert client.get("/predict/", params={"bill": "inf", "flipper": 195}).status_code == 500

# %% [markdown]
# Infinity is greater than 0, so it passes, and then cannot even be written as JSON. The fix is a bound on
# both sides: `Query(gt=0, lt=...)`. No penguin has a bill of 10 cm or a flipper of 30 cm, so those make
# sensible maxima (`app/models/penguins/api.py` explains the ones this project uses); `nan` fails every comparison
# and `inf` fails `lt`, so both are refused too.
#
# ### Your turn
#
# Open **`exercises/part1/ex3_validation.py`** and bound both parameters, above 0 and below a maximum of your
# choice. Then see what your app says to the same values:

# %%
validation = start_app("part1/ex3_validation")
for bill in tries:
    show(validation.get("/predict/", params={"bill": bill, "flipper": 195}))

# %%
with claim("every bill but 40.3 is refused with a 422 that names `bill`; 40.3 still gets its species"):
    for bill in tries[:-1]:
        refused = validation.get("/predict/", params={"bill": bill, "flipper": 195})
        assert refused.status_code == 422, f"bill={bill} answered {refused.status_code}"
        assert refused.json()["detail"][0]["loc"] == ["query", "bill"]
    assert validation.get("/predict/", params={"bill": 40.3, "flipper": 195}).json()["result"] == "Adelie"

# %% [markdown]
# The bounds also appear in `/docs` (open it and look at the parameters), because they are part of the
# declaration, not of the function's code.

# %%
show(validation.docs)
check("part1/ex3_validation")

# %%
predict.stop()
validation.stop()

# %% [markdown]
# ## Extra challenge: lengths with units
#
# Could a client send `bill=4.03cm` or `flipper=195 mm`? A `float` parameter refuses both. The parameter has
# to arrive as text and be turned into millimetres **before** the bounds are checked, so that `0.5m` is
# refused for being too long. Pydantic's `BeforeValidator` runs a function on the raw value first:
#
# ```python
# from pydantic import BeforeValidator
#
# LengthInMm = Annotated[float, BeforeValidator(to_millimetres)]
#
# def predict(bill: Annotated[LengthInMm, Query(gt=0, lt=100)], flipper: ...):
# ```
#
# A `ValueError` raised in `to_millimetres` becomes a 422 naming the parameter, like any validation error.
# `app.models.penguins.units.to_millimetres` reads a number with an optional unit; the units the checks expect are
# the ones below, and a number alone means millimetres.

# %%
print("accepted units:", ACCEPTED_UNITS)

# %% [markdown]
# Open **`exercises/part1/challenge_units.py`**, write `LengthInMm`, and try it:

# %%
units = start_app("part1/challenge_units")
for bill, flipper in [("4.03cm", "195 mm"), ("40.3", "0.195m"), ("1.59in", "19.5cm"), ("40.3 parsecs", "195")]:
    show(units.get("/predict/", params={"bill": bill, "flipper": flipper}))

# %%
with claim("4.03cm, 195 mm and 0.195m are the workshop's penguin; an unknown unit is a 422 naming `bill`"):
    same = units.get("/predict/", params={"bill": "4.03cm", "flipper": "195 mm"}).json()
    assert math.isclose(same["parameters"]["bill_length"], 40.3) and same["result"] == "Adelie", same
    metres = units.get("/predict/", params={"bill": "40.3", "flipper": "0.195m"}).json()
    assert math.isclose(metres["parameters"]["flipper_length"], 195.0), metres
    unknown = units.get("/predict/", params={"bill": "40.3 parsecs", "flipper": "195"})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["query", "bill"], unknown

# %%
check("part1/challenge_units")

# %%
units.stop()

# %% [markdown]
# ## Next
#
# Every model so far trained in milliseconds, at start-up. Part 2 (`notebooks/part2_training_and_retraining.ipynb`)
# takes a model that trains for minutes: training in the background, a model ready before the first
# request, retraining on new data, and two trainings that must not step on each other.
