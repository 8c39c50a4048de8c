"""Exceptions of the service and the answers they become: ``{"detail": "..."}``, never a 500.

Validation errors become one 422 (or 400 for malformed JSON) naming each field; the batcher's
refusals and failed model calls become 503s; :class:`ApiError` is any other 4xx/5xx a route
gives. :func:`add_exception_handlers` installs them all on an app.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tweetcls.serving.batcher import BatcherClosed, BatcherOverloaded
from tweetcls.serving.schemas import BODY_TAGS, ErrorBody

#: Shown at most per 422 answer; the rest are counted.
MAX_SHOWN_ERRORS = 3
#: What a route that needs the model answers before the lifespan loaded it.
NOT_LOADED = "the model is not loaded yet (see GET /ready)"
#: OpenAPI descriptions of the error answers.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed body (not JSON, not UTF-8)."},
    413: {"model": ErrorBody, "description": "Body too large."},
    422: {"model": ErrorBody, "description": "Invalid input; the message names the field."},
    503: {"model": ErrorBody, "description": "Model not loaded, shutting down or overloaded."},
}


class ApiError(Exception):
    """An answer other than 200: ``status`` with ``{"detail": detail}``.

    Args:
        status: HTTP status.
        detail: One message naming the field or the cause.
    """

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class InferenceError(Exception):
    """The model call of a request failed; the message is the cause's exception type."""


def error_response(status: int, detail: str, **headers: str) -> JSONResponse:
    """``{"detail": detail}`` with ``status`` (and headers, e.g. ``Retry-After``)."""
    return JSONResponse({"detail": detail}, status_code=status, headers=headers or None)


def _location(loc: Sequence[Any]) -> str:
    parts: list[str] = []
    for index, part in enumerate(loc):
        if index == 1 and loc[0] == "body" and part in BODY_TAGS:
            continue  # the union tag of the /predict body
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts) or "request"


def _message(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "json_invalid":
        reason = error.get("ctx", {}).get("error", "malformed")
        return f"body: invalid JSON ({reason} at position {error['loc'][-1]})"
    if kind == "missing" and tuple(error.get("loc", ())) == ("body",):
        return "body: required (send JSON with Content-Type: application/json)"
    if isinstance(error.get("input"), bytes) and tuple(error.get("loc", ())) == ("body",):
        return "body: expected JSON (Content-Type: application/json)"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{_location(error.get('loc', ()))}: {message}"


async def validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one line per problem (at most ``MAX_SHOWN_ERRORS``), each naming its field."""
    messages = list(dict.fromkeys(_message(error) for error in exc.errors()))
    detail = "; ".join(messages[:MAX_SHOWN_ERRORS])
    if len(messages) > MAX_SHOWN_ERRORS:
        detail += f" (and {len(messages) - MAX_SHOWN_ERRORS} more)"
    status = 400 if "invalid JSON" in detail and len(messages) == 1 else 422
    return JSONResponse({"detail": detail}, status_code=status)


async def http_error_handler(request: Request, exc: StarletteHTTPException) -> Response:
    """``{"detail": "..."}``; a body that is not UTF-8 says so."""
    detail = exc.detail
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        detail = f"body: not valid UTF-8 (byte {cause.object[cause.start]:#04x} at {cause.start})"
    elif isinstance(cause, RecursionError):
        detail = "body: JSON nested too deeply"
    headers = getattr(exc, "headers", None)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=headers)
    return JSONResponse({"detail": str(detail)}, status_code=exc.status_code, headers=headers)


async def api_error_handler(request: Request, exc: ApiError) -> JSONResponse:
    """The route's own status and message."""
    return error_response(exc.status, exc.detail)


async def closed_handler(request: Request, exc: BatcherClosed) -> JSONResponse:
    """Not loaded yet or shutting down: 503, retry in a few seconds."""
    return error_response(503, str(exc), **{"Retry-After": "5"})


async def overloaded_handler(request: Request, exc: BatcherOverloaded) -> JSONResponse:
    """The queue is full: 503, retry in a second."""
    return error_response(503, f"overloaded: {exc}; retry shortly", **{"Retry-After": "1"})


async def inference_error_handler(request: Request, exc: InferenceError) -> JSONResponse:
    """The model call failed: 503 naming the exception type (details stay in the log)."""
    return error_response(503, f"inference failed ({exc}); retry or report it")


def add_exception_handlers(app: FastAPI) -> None:
    """Install every handler of this module on ``app``."""
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(BatcherClosed, closed_handler)
    app.add_exception_handler(BatcherOverloaded, overloaded_handler)
    app.add_exception_handler(InferenceError, inference_error_handler)
