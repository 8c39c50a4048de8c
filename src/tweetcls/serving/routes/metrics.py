"""``GET /metrics``: the service's Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from tweetcls.serving.deps import ServiceDep
from tweetcls.serving.metrics import CONTENT_TYPE

router = APIRouter(tags=["ops"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE.split(";")[0]: {}}}},
    summary="Prometheus metrics",
)
async def metrics_text(service: ServiceDep) -> Response:
    """Metrics in the Prometheus text format."""
    if service.log is not None:
        service.metrics.sync_log_dropped(service.log.dropped)
    return Response(service.metrics.render(), media_type=CONTENT_TYPE)
