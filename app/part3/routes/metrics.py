"""GET /metrics for Prometheus (see app/part3/prometheus.py for several workers)."""

from fastapi import APIRouter, Response

from app.part3 import prometheus
from app.part3.service import ServiceDep

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def read_metrics(service: ServiceDep) -> Response:
    body, content_type = prometheus.render(
        service.list_jobs,
        service.stores,
        service.monitoring,
        service.shadow,
        multiprocess_dir=service.settings.prometheus_multiproc_dir,
    )
    return Response(body, media_type=content_type)
