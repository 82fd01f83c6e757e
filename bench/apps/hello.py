"""The HTTP floor: the least a FastAPI app can do for a request."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
def read_root() -> dict[str, str]:
    return {"Hello": "World"}
