"""The folder a Part 2 exercise app works in while it serves: models/exercises/, with a models/ in it.

The workshop's exercise 4 saves and loads its models as `models/<name>.keras`, a path relative to the
folder the app runs in. Started from the repository's root, those files would land in models/ beside
Part 3's store (models/mnist/, models/penguins/, its job queue); and on a fresh clone there is no
models/ at all (it is not in git), so the first `model.save` fails. `runs_in_exercise_folder` wraps an
app's lifespan: while the app serves, its working folder is the exercises' own (app.paths.
exercise_models_dir), with a models/ folder made in it, so the workshop's code works as written and
its files stay under models/exercises/. The working folder is the process's: an app started in a
thread of another program (a notebook's kernel) moves that program's too until it stops.
"""

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from app.paths import exercise_models_dir

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def exercise_folder() -> Path:
    """models/exercises/ (inside WORKSHOP_MODELS_DIR when set), with the models/ folder the workshop's code uses."""
    folder = exercise_models_dir()
    (folder / "models").mkdir(parents=True, exist_ok=True)
    return folder


def runs_in_exercise_folder(lifespan: Lifespan) -> Lifespan:
    """`lifespan`, run with the exercise folder as the working folder; the previous one back at shutdown."""

    @asynccontextmanager
    async def in_folder(app: FastAPI) -> AsyncIterator[None]:
        before = Path.cwd()
        os.chdir(exercise_folder())
        try:
            async with lifespan(app):
                yield
        finally:
            os.chdir(before)

    return in_folder
