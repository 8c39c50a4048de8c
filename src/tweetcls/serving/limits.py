"""The request body limit: per route, from the settings, answered 413 with a JSON message.

One place enforces it, :class:`BodyLimit`, for every route: a ``Content-Length`` over the limit
is refused before the app runs (one within it is what uvicorn delivers, so the request passes
untouched); a body sent without one (chunked) is counted as the app reads it and refused as
soon as it passes the limit, so that it is never read whole.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tweetcls.serving.auth import route_path
from tweetcls.serving.errors import error_response
from tweetcls.serving.settings import ServeSettings

#: JSON bytes one item of ``POST /predict`` may take per character (``\\uXXXX`` escapes).
_BYTES_PER_CHAR = 6
#: Body limit of the routes that take no body.
OTHER_BODY_LIMIT = 65536


def predict_body_limit(settings: ServeSettings) -> int:
    """Largest ``POST /predict`` body: ``max_items`` tweets of ``max_chars``, all escaped."""
    return 4096 + settings.max_items * _BYTES_PER_CHAR * (settings.max_chars + 200)


def body_limits(settings: ServeSettings) -> dict[str, int]:
    """The body limit of each route that takes a body (``--max_csv_bytes``: the upload's)."""
    return {"/predict": predict_body_limit(settings), "/predict/csv": settings.max_csv_bytes}


def _too_large(size: str, limit: int) -> str:
    return f"body: {size}, more than the limit of {limit}"


class BodyLimit:
    """Pure ASGI: answer 413 when a request body is larger than its route's limit.

    Args:
        app: The wrapped ASGI app.
        limits: Byte limit per exact path (as the router matches it).
        default: Byte limit of every other path.
    """

    def __init__(self, app: ASGIApp, limits: dict[str, int], default: int) -> None:
        self.app = app
        self.limits = limits
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(route_path(scope), self.default)
        length = next((v for n, v in scope["headers"] if n == b"content-length"), b"")
        if length.isdigit():
            if int(length) > limit:
                await error_response(413, _too_large(f"{int(length)} bytes", limit))(
                    scope, receive, send
                )
            else:  # the server delivers no more than the declared length
                await self.app(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # the app's exception handlers answer it
                    raise HTTPException(413, _too_large(f"over {limit} bytes", limit))
            return message

        await self.app(scope, counted, send)
