"""``GET /health`` (alive), ``GET /ready`` (model loaded) and ``GET /version`` (what is served)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tweetcls.serving.deps import ServiceDep
from tweetcls.serving.errors import ERROR_RESPONSES
from tweetcls.serving.schemas import Health

router = APIRouter(tags=["ops"])


@router.get("/health", response_model=Health, summary="Liveness")
async def health() -> JSONResponse:
    """200 while the process serves HTTP (the model may still be loading)."""
    return JSONResponse({"status": "ok"})


@router.get(
    "/ready",
    response_model=Health,
    responses={503: {"model": Health, "description": "Not ready."}},
    summary="Readiness",
)
async def ready(service: ServiceDep) -> JSONResponse:
    """200 once the model is loaded, also while the request log is degraded (predictions go
    on without it); 503 before and while shutting down."""
    if service.ready:
        log = service.log.status if service.log is not None else None
        check = service.model.self_check if service.model is not None else None
        return JSONResponse({"status": "ready", "request_log": log, "self_check": check})
    return JSONResponse({"status": "not ready"}, status_code=503)


@router.get("/version", responses={503: ERROR_RESPONSES[503]}, summary="Model version")
async def version(service: ServiceDep) -> JSONResponse:
    """Model version, input settings, file and data hashes, provenance and backend."""
    model = service.loaded()
    return JSONResponse({**model.bundle.versions(), "backend": model.backend.name})
