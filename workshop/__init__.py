"""The workshop's own tooling, apart from the runtime in `app/` (the production image copies `app/` only).

    cli.py                  `uv run workshop ...`: check, hint, list, next, reset an exercise; generate; trainer
    check_output.py         what `check` shows while the checks run: the learner's prints, not framework noise
    exercises.py            writes exercises/ from solutions/ and records each starter's sha256; fills TODOs
    exercise_starters.json  that record (committed)
    dockerfile.py           reads a Dockerfile and a .dockerignore as Docker does (Part 3 checks, tests/container)

It imports `app` (paths, the trainer), never the other way round.
"""
