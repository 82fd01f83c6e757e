"""Part 1, exercise 1: FastAPI basics.

Run it:   uv run fastapi dev exercises/part1/ex1_hello.py
Try:      http://127.0.0.1:8000/  and  http://127.0.0.1:8000/users/johndoe?q=somequery
Check it: uv run workshop check part1/ex1_hello
"""

from fastapi import FastAPI, HTTPException

from app.offline_docs import serve_docs_offline

app = FastAPI(title="Part 1, exercise 1: hello")
# Keep this line if you paste the workshop's code over the file: FastAPI's own /docs and /redoc
# load their scripts from a CDN, so without it they are blank pages offline.
serve_docs_offline(app)


@app.get("/")
def read_root() -> dict[str, str]:
    # TODO: return {"Hello": "World"}
    raise HTTPException(status_code=501, detail='TODO: return {"Hello": "World"}')


@app.get("/users/{username}")
def read_user(username: str, q: str | None = None) -> dict[str, str | None]:
    # TODO: return the user name from the path and the optional query `q` (null when absent)
    raise HTTPException(status_code=501, detail='TODO: return the user name from the path and the optional query `q` (null when absent)')
