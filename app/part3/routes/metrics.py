"""GET /metrics for Prometheus (see app/part3/prometheus.py for several workers)."""

from fastapi import APIRouter, Response

from app.part3 import prometheus
from app.part3.feedback_backends import FEEDBACK_ERRORS
from app.part3.service import ServiceDep

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def read_metrics(service: ServiceDep) -> Response:
    body, content_type = prometheus.render(
        service.list_jobs,
        service.stores,
        ReadingFeedback(service.monitoring),
        ReadingFeedback(service.shadow),
        multiprocess_dir=service.settings.prometheus_multiproc_dir,
    )
    return Response(body, media_type=content_type)


class ReadingFeedback:
    """A collector whose samples read the feedback store: missing from a scrape while the store cannot be
    reached, so the rest still scrapes (as the jobs' samples without the queue)."""

    def __init__(self, collector) -> None:
        self.collector = collector

    def collect(self):
        try:
            families = list(self.collector.collect())
        except FEEDBACK_ERRORS:
            return
        yield from families
