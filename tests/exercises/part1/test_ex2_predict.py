"""Checks for part1/ex2_predict: GET /predict/ answers the species the penguin model predicts."""

import pytest

from app.datasets import PENGUIN_FEATURES, load_penguins
from app.models.penguins import train
from tests.exercises.expect import expect_json, expect_status

HINTS = [
    "The query parameters are the function's parameters: `def predict(bill: float, flipper: float)`; "
    "the model wants one row of two numbers.",
    "Answer {\"parameters\": {\"bill_length\": bill, \"flipper_length\": flipper}, \"result\": <the species>}: "
    "in the starter, `model` is the trained pipeline; `model.predict(penguin)[0]` is the species name, where "
    "`penguin = pd.DataFrame([[bill, flipper]], columns=list(PENGUIN_FEATURES))` is one row named as in training.",
]


def article(word: str) -> str:
    return "an" if word[0] in "AEIOU" else "a"


@pytest.fixture(scope="module")
def reference_model():
    """scikit-learn's own pipeline, trained as the workshop does: the answers the route must give."""
    return train()


def test_the_workshops_example_is_an_adelie(client):
    expect_json(client.get("/predict/", params={"bill": 40.3, "flipper": 195}),
                {"parameters": {"bill_length": 40.3, "flipper_length": 195.0}, "result": "Adelie"},
                "GET /predict/?bill=40.3&flipper=195")


def test_predictions_match_the_model_for_every_species(client, reference_model):
    # Three penguins of each species: a swapped bill and flipper, or a constant answer, fails here.
    frame = load_penguins().groupby("species").head(3)
    expected = reference_model.predict(frame[list(PENGUIN_FEATURES)])
    assert set(expected) == {"Adelie", "Chinstrap", "Gentoo"}
    for (bill, flipper), species in zip(frame[list(PENGUIN_FEATURES)].itertuples(index=False), expected):
        expect_json(client.get("/predict/", params={"bill": bill, "flipper": flipper}),
                    {"parameters": {"bill_length": bill, "flipper_length": flipper}, "result": species},
                    f"GET /predict/?bill={bill}&flipper={flipper} ({article(species)} {species} in the data)")


@pytest.mark.parametrize(
    "query",
    [{"bill": "long", "flipper": 195}, {"bill": 40.3}, {"flipper": 195}],
    ids=["text", "no flipper", "no bill"],
)
def test_missing_or_non_numeric_parameters_are_refused(client, query):
    expect_status(client.get("/predict/", params=query), 422, f"GET /predict/ with {query}")
