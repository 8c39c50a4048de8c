"""``GET /drift``: drift of the logged traffic against the bundle's training-data profile."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import WithJsonSchema
from starlette.concurrency import run_in_threadpool

from tweetcls.core.errors import ConfigError
from tweetcls.monitoring.requestlog import RequestLogUnavailable
from tweetcls.monitoring.window import DURATION_PATTERN, parse_since
from tweetcls.serving.deps import ServiceDep
from tweetcls.serving.errors import ERROR_RESPONSES, ApiError
from tweetcls.serving.schemas import ErrorBody

router = APIRouter(tags=["ops"])

#: What ``since`` may be, as the schema states it (:func:`parse_since` accepts exactly this).
Since = Annotated[
    str,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN},
                {"type": "string", "format": "date-time"},
            ],
            "examples": ["24h", "2025-03-01T12:00:00Z"],
        }
    ),
]


def _start(since: str | None, window_h: float) -> datetime:
    """The window's start: ``since`` (RFC 3339 or a duration back), default ``window_h`` back;
    a start in the future is now (an empty window: a report without enough data)."""
    now = datetime.now(timezone.utc)
    if since is None:
        return now - timedelta(hours=window_h)
    try:
        return min(parse_since(since, now), now)
    except ValueError as err:
        raise ApiError(422, f"since {since!r}: {err}") from None


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
        Since | None,
        Query(
            description="RFC 3339 time or a duration back from now (30m, 24h, 7d; up to 5 "
            "digits); a future time is now (an empty window)."
        ),
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
