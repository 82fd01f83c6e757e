"""The workshop's training routes, for the digit model as it teaches them: validated and stored at once,
run later by a trainer (202 + job id). Thin adapters onto the generic job submission, which
`POST /models/{name}/jobs` (models.py) offers for any model."""

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Response, UploadFile, status
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from app.images import UploadError, labelled_images
from app.models import mnist
from app.part3.job_status import Job, JobKind, JobStatus
from app.part3.routes.errors import documented
from app.part3.security import require_api_key
from app.part3.service import Service, ServiceDep

MAX_EPOCHS = 100
router = APIRouter(
    tags=["training"], dependencies=[Depends(require_api_key)], responses=documented(400, 401, 413, 422, 429, 503)
)

Epochs = Annotated[
    int | None, Form(ge=1, le=MAX_EPOCHS, description="epochs to train (default: the service's WORKSHOP_EPOCHS)")
]


class JobAccepted(BaseModel):
    id: str
    model: str | None
    kind: JobKind
    status: JobStatus
    n_images: int
    url: str  # poll it: GET /jobs/{id}


def epochs_asked(epochs: int | None) -> dict[str, int]:
    return {} if epochs is None else {"epochs": epochs}


async def accept(
    service: Service, response: Response, kind: JobKind, files: list[UploadFile] | None, epochs: int | None
) -> JobAccepted:
    images = labels = None
    if files:
        uploads = [(file.filename, await file.read()) for file in files]
        # Decode and label everything now: a bad file is refused with a 4xx naming it, before any job exists.
        data = await run_in_threadpool(labelled_images, uploads)
        images, labels = data.images, data.labels
    job = await run_in_threadpool(service.submit, kind, mnist.MODEL_NAME, epochs_asked(epochs), images, labels)
    return accepted(job, response)


def accepted(job: Job, response: Response) -> JobAccepted:
    url = f"/jobs/{job.id}"
    response.headers["Location"] = url
    return JobAccepted(id=job.id, model=job.model, kind=job.kind, status=job.status, n_images=job.n_images, url=url)


@router.post("/train/", status_code=status.HTTP_202_ACCEPTED)
async def train(files: list[UploadFile], service: ServiceDep, response: Response, epochs: Epochs = None) -> JobAccepted:
    """Fine-tune the served digit model on labelled images (`img123_7.png` is a 7), or one zip of them
    such as data/train_img.zip. Answers at once; the job runs after the ones queued before it."""
    return await accept(service, response, "fine-tune", files, epochs)


@router.post("/retrain/", status_code=status.HTTP_202_ACCEPTED)
async def retrain(
    service: ServiceDep, response: Response, files: list[UploadFile] | None = None, epochs: Epochs = None
) -> JobAccepted:
    """Train a new digit model from scratch on the base data set, plus the uploaded images if any."""
    return await accept(service, response, "retrain", files, epochs)


@router.post("/train/feedback/", status_code=status.HTTP_202_ACCEPTED)
async def train_on_feedback(service: ServiceDep, response: Response, epochs: Epochs = None) -> JobAccepted:
    """Fine-tune the served digit model on the images sent with their true labels to
    POST /feedback/image/ (the newest WORKSHOP_FEEDBACK_KEPT). 422 when there are none yet."""
    try:
        job = await run_in_threadpool(service.monitoring.train_on_feedback, mnist.MODEL_NAME, epochs_asked(epochs))
    except UploadError:
        raise UploadError("no feedback images yet: send some to POST /feedback/image/ first") from None
    return accepted(job, response)
