"""Part 1, exercise 1: FastAPI basics.

Run it:   uv run fastapi dev exercises/part1/ex1_hello.py
Try:      http://127.0.0.1:8000/  and  http://127.0.0.1:8000/users/johndoe?q=somequery
Check it: uv run workshop check part1/ex1_hello
"""

from fastapi import FastAPI

from app.offline_docs import serve_docs_offline

app = FastAPI(title="Part 1, exercise 1: hello")
# Keep this line if you paste the workshop's code over the file: FastAPI's own /docs and /redoc
# load their scripts from a CDN, so without it they are blank pages offline.
serve_docs_offline(app)


@app.get("/")
def read_root() -> dict[str, str]:
    # BEGIN SOLUTION return {"Hello": "World"}
    return {"Hello": "World"}
    # END SOLUTION


@app.get("/users/{username}")
def read_user(username: str, q: str | None = None) -> dict[str, str | None]:
    # BEGIN SOLUTION return the user name from the path and the optional query `q` (null when absent)
    return {"user": username, "q": q}
    # END SOLUTION
