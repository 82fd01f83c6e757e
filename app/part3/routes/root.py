"""The workshop's first routes, kept so the text's steps still work: GET / and GET /info/."""

from fastapi import APIRouter

from app.models import mnist
from app.part3.service import ServiceDep

router = APIRouter(tags=["workshop"])


@router.get("/")
def read_root() -> dict[str, str]:
    return {"Hello": "World"}


@router.get("/info/")
def read_info(service: ServiceDep) -> dict[str, int | dict[str, int | None]]:
    """The workshop's summary (its two keys), plus the versions this worker serves and the queue."""
    statuses = [job.status for job in service.list_jobs()]
    return {
        "Num of model in training": statuses.count("running"),
        "Num of trained models": len(service.stores[mnist.MODEL_NAME].versions()),
        "Num of queued trainings": statuses.count("queued"),
        "serving": service.kept.versions(),
    }
