"""Settling the jobs of trainers that died: a job never stays "running" forever, nor vanishes.

Whoever finds such a job settles it: the trainer that takes the training lock next (any job still
"running" then has lost its trainer), the service that started an embedded trainer when that
process exits, and any API process listing a job whose heartbeat is older than heartbeat_timeout.
A job whose version was published before its trainer died counts as succeeded. `location` is the model
store's folder or s3:// URL (Settings.store_location).
"""

from datetime import timedelta

from app import registry
from app.part3.job_records import JobRecords
from app.part3.job_status import Job, now
from app.store import ModelStore


def published_by(location, job: Job) -> int | None:
    """The version `job` published, if it did (the first start's job: the newest it published)."""
    names = [job.model] if job.model else list(registry.models())
    found = []
    for name in names:
        for version in ModelStore(name, location).all_versions():
            if (version.metadata.get("data") or {}).get("job") == job.id:
                found.append((version.metadata.get("created_at", ""), version.number))
    return max(found)[1] if found else None


def settle(records: JobRecords, location, job: Job, reason: str) -> Job:
    """End a job whose trainer is gone: succeeded if its version was published, else failed with
    `reason`. Only if it is still "running" as read in `job` (a trainer that was only slow and has
    written its result meanwhile keeps it)."""

    def unchanged(current: Job) -> bool:
        return current.status == "running" and current.heartbeat_at == job.heartbeat_at

    version = published_by(location, job)
    if version is not None:
        settled = records.update(job.id, when=unchanged, status="succeeded", version=version, finished_at=now())
    else:
        settled = records.update(job.id, when=unchanged, status="failed", error=reason, finished_at=now())
    if settled.finished:
        records.discard_data(job.id)
    return settled


def last_sign_of_life(job: Job):
    return job.heartbeat_at or job.started_at or job.submitted_at


def silence_reason(job: Job) -> str:
    return (
        f"its trainer ({job.trainer}) stopped without a result and sent no heartbeat since "
        f"{last_sign_of_life(job):%H:%M:%S} UTC (killed, out of memory, or its machine is gone)"
    )


def fail_silent_jobs(records: JobRecords, location, timeout: float, jobs: list[Job] | None = None) -> list[Job]:
    """Settle every running job whose heartbeat is older than `timeout` seconds; returns the jobs,
    those settled as they now are."""
    jobs = records.all() if jobs is None else jobs
    limit = now() - timedelta(seconds=timeout)
    return [
        settle(records, location, job, silence_reason(job))
        if job.status == "running" and last_sign_of_life(job) < limit
        else job
        for job in jobs
    ]
