"""Part 2's reference service (`main.py`) and the pieces it shares with the Part 2 solutions.

    uploads.py          uploaded files -> digit arrays, or a 4xx that names the file and the problem
    training.py         the count of running trainings, and training + publishing through the model store
    serving.py          the served model: loaded once, replaced when the store has a newer version
    exercise_folder.py  the folder exercise 4's `models/...` paths resolve in: models/exercises/
    main.py             the stage's service: every Part 2 route on the model store

The solutions in solutions/part2/ import these pieces, so each exercise file shows the FastAPI lesson
and its own part of the design, not the plumbing; `main.py` is assembled from the same pieces.
"""
