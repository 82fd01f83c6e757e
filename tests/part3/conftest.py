"""Fixtures of Part 3's tests that several modules share."""

import pytest
import redis


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.slow)])  # redis: a server
def feedback_url(request):
    """Where a test's feedback store lives: None for SQLite in the models folder (the embedded default),
    or the URL of this module's real Redis, emptied for each test (the distributed mode's queue_url)."""
    if request.param == "sqlite":
        return None
    server = request.getfixturevalue("redis_server")
    with redis.Redis.from_url(server.url) as client:
        client.flushall()
    return server.url
