"""The feedback store the settings name: in the queue's Redis when `queue_url` is set (workers on
several machines share no folder), else SQLite in the models folder (one machine)."""

import sqlite3

import redis

from app.part3.feedback_records import FeedbackStore
from app.part3.feedback_redis import RedisFeedbackStore
from app.part3.feedback_sqlite import SqliteFeedbackStore
from app.part3.settings import Settings
from app.part3.training_queue import without_password

# What an unreachable feedback store raises: POST /feedback/ answers 503 naming it, never a 500.
FEEDBACK_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, sqlite3.OperationalError)


def open_feedback(settings: Settings) -> FeedbackStore:
    if settings.queue_url:
        client = redis.Redis.from_url(settings.queue_url, socket_connect_timeout=2, socket_timeout=10)
        return RedisFeedbackStore(
            client, settings.feedback_kept, where=f"Redis at {without_password(settings.queue_url)}"
        )
    return SqliteFeedbackStore(settings.models_dir, settings.feedback_kept)
