"""Checks for part1/ex2_predict: GET /predict/ answers the species the penguin model predicts."""

import pytest

from app.datasets import PENGUIN_FEATURES, load_penguins
from app.penguins import train


@pytest.fixture(scope="module")
def reference_model():
    """scikit-learn's own pipeline, trained as the workshop does: the answers the route must give."""
    return train()


def test_the_workshops_example_is_an_adelie(client):
    response = client.get("/predict/", params={"bill": 40.3, "flipper": 195})
    assert response.status_code == 200, response.text
    assert response.json() == {"parameters": {"bill_length": 40.3, "flipper_length": 195.0}, "result": "Adelie"}


def test_predictions_match_the_model_for_every_species(client, reference_model):
    # Three penguins of each species: a swapped bill and flipper, or a constant answer, fails here.
    frame = load_penguins().groupby("species").head(3)
    expected = reference_model.predict(frame[list(PENGUIN_FEATURES)])
    assert set(expected) == {"Adelie", "Chinstrap", "Gentoo"}
    for (bill, flipper), species in zip(frame[list(PENGUIN_FEATURES)].itertuples(index=False), expected):
        response = client.get("/predict/", params={"bill": bill, "flipper": flipper})
        assert response.status_code == 200, response.text
        assert response.json() == {
            "parameters": {"bill_length": bill, "flipper_length": flipper},
            "result": species,
        }, f"bill={bill}, flipper={flipper}"


@pytest.mark.parametrize(
    "query",
    [{"bill": "long", "flipper": 195}, {"bill": 40.3}, {"flipper": 195}],
    ids=["text", "no flipper", "no bill"],
)
def test_missing_or_non_numeric_parameters_are_refused(client, query):
    response = client.get("/predict/", params=query)
    assert response.status_code == 422, response.text
