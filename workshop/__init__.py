"""The workshop's own tooling, apart from the runtime in `app/` (the production image copies `app/` only).

    cli.py                  `uv run workshop ...`: check, hint, list, next, reset an exercise; generate; trainer
    check_output.py         what `check` shows while the checks run: the learner's prints, not framework noise
    exercises.py            writes exercises/ from solutions/ and records each starter's sha256; fills TODOs
    exercise_starters.json  that record (committed)
    dockerfile.py           reads a Dockerfile and a .dockerignore as Docker does (Part 3 checks, tests/container)
    notebook.py             the lesson notebooks' helpers: start, call and check an exercise from a cell
    notebook_server.py      the child process that serves an exercise for notebook.py
    notebook_pictures.py    the lessons' plots, and a recorder that samples an app while an experiment runs

It imports `app` (paths, the trainer), never the other way round.
"""
