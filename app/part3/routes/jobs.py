"""Training jobs as every worker sees them (they live in the shared job store)."""

from typing import Annotated

from fastapi import APIRouter, Path

from app.part3.job_status import JOB_ID, Job
from app.part3.routes.errors import documented
from app.part3.service import ServiceDep

router = APIRouter(prefix="/jobs", tags=["training"])


@router.get("/", responses=documented(503))
def list_jobs(service: ServiceDep) -> list[Job]:
    """Every job, in submission order (the order they run in)."""
    return service.list_jobs()


@router.get("/{job_id}", responses=documented(404, 422, 503))
def read_job(job_id: Annotated[str, Path(pattern=JOB_ID.pattern)], service: ServiceDep) -> Job:
    """queued, running (epoch k of n, loss, accuracy), succeeded (the new version) or failed (why)."""
    return service.get_job(job_id)
