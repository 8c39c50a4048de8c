"""``GET /drift``: drift of the logged traffic against the bundle's training-data profile."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from tweetcls.core.errors import ConfigError
from tweetcls.monitoring.requestlog import RequestLogUnavailable
from tweetcls.monitoring.window import parse_time
from tweetcls.serving.deps import ServiceDep
from tweetcls.serving.errors import ERROR_RESPONSES, ApiError
from tweetcls.serving.schemas import ErrorBody

router = APIRouter(tags=["ops"])


def _start(since: str | None, window_h: float) -> datetime:
    """The window's start: ``since`` (ISO 8601 or a duration back), default ``window_h`` back."""
    now = datetime.now(timezone.utc)
    if since is None:
        return now - timedelta(hours=window_h)
    try:
        start = parse_time(since, now)
    except ValueError as err:
        raise ApiError(422, f"since {since!r}: {err}") from None
    if start >= now:
        raise ApiError(422, f"since: {start.isoformat()} is not in the past")
    return start


@router.get(
    "/drift",
    responses={
        200: {"content": {"application/json": {}, "text/html": {}}},
        404: {"model": ErrorBody, "description": "The bundle has no drift reference."},
        **ERROR_RESPONSES,
    },
    summary="Drift of logged traffic against the training data",
)
async def drift(
    request: Request,
    service: ServiceDep,
    since: Annotated[
        str | None,
        Query(description="ISO 8601 time or a duration back from now (30m, 24h, 7d)."),
    ] = None,
    format: Annotated[
        Literal["json", "html"] | None,
        Query(description="json (default) or html; Accept: text/html also gives html."),
    ] = None,
) -> Response:
    """Drift report of the predictions logged since ``since`` (default: the window)."""
    if service.loaded().reference is None:
        raise ApiError(404, "drift: the bundle has no drift_reference.json (re-export it)")
    start = _start(since, service.settings.drift_window_h)
    try:
        report = await run_in_threadpool(service.check_drift, start)
    except RequestLogUnavailable as err:
        raise ApiError(503, f"drift: {err}") from None
    except ConfigError as err:
        raise ApiError(422, f"drift: {err}") from None
    wants_html = format == "html" or (
        format is None and "text/html" in request.headers.get("accept", "")
    )
    if wants_html:
        return HTMLResponse(report.to_html())
    return JSONResponse(report.to_dict())
