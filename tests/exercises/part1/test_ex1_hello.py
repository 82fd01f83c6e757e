"""Checks for part1/ex1_hello: the workshop's first app, GET / and GET /users/{username}."""

from tests.exercises.expect import expect_json

HINTS = [
    "A route returns a dict and FastAPI sends it as JSON: `return {\"Hello\": \"World\"}`.",
    "`username` comes from the path (`/users/{username}`) and `q` from the query string; "
    "a parameter with a default of None is optional: return {\"user\": username, \"q\": q}.",
]


def test_root_says_hello_world(client):
    expect_json(client.get("/"), {"Hello": "World"}, "GET /")


def test_user_echoes_the_query(client):
    expect_json(client.get("/users/johndoe", params={"q": "somequery"}), {"user": "johndoe", "q": "somequery"},
                "GET /users/johndoe?q=somequery")


def test_user_without_query_gives_null(client):
    expect_json(client.get("/users/johndoe"), {"user": "johndoe", "q": None}, "GET /users/johndoe")
