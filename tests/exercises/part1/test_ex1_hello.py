"""Checks for part1/ex1_hello."""


def test_root_says_hello_world(client):
    response = client.get("/")
    assert response.status_code == 200, response.text
    assert response.json() == {"Hello": "World"}


def test_user_echoes_the_query(client):
    response = client.get("/users/johndoe", params={"q": "somequery"})
    assert response.status_code == 200, response.text
    assert response.json() == {"user": "johndoe", "q": "somequery"}


def test_user_without_query_gives_null(client):
    response = client.get("/users/johndoe")
    assert response.status_code == 200, response.text
    assert response.json() == {"user": "johndoe", "q": None}
