"""Request body limits: per route, from the settings, answered 413 with a JSON message."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from tweetcls.serving.errors import error_response
from tweetcls.serving.settings import ServeSettings

#: JSON bytes one item of ``POST /predict`` may take per character (``\\uXXXX`` escapes).
_BYTES_PER_CHAR = 6
#: Body limit of the routes that take no body (checked on Content-Length). No app-wide
#: ``max_body_size``: its plain-text 413 would replace the JSON one of ContentLengthLimit.
OTHER_BODY_LIMIT = 65536


def predict_body_limit(settings: ServeSettings) -> int:
    """Largest ``POST /predict`` body: ``max_items`` tweets of ``max_chars``, all escaped."""
    return 4096 + settings.max_items * _BYTES_PER_CHAR * (settings.max_chars + 200)


def csv_body_limit(settings: ServeSettings) -> int:
    """Largest ``POST /predict/csv`` body: the file plus multipart overhead."""
    return settings.max_csv_bytes + 65536


class ContentLengthLimit:
    """Pure ASGI: answer 413 with a JSON message when ``Content-Length`` exceeds the limit.

    FastAPI's route ``max_body_size`` (also set, for bodies sent without a length) answers in
    plain text; this gives the usual ``{"detail": ...}`` first, for the common case.

    Args:
        app: The wrapped ASGI app.
        limits: Byte limit per exact path.
        default: Byte limit of every other path.
    """

    def __init__(self, app: ASGIApp, limits: dict[str, int], default: int) -> None:
        self.app = app
        self.limits = limits
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length":
                    limit = self.limits.get(scope["path"], self.default)
                    if value.isdigit() and int(value) > limit:
                        detail = f"body: {int(value)} bytes, more than the limit of {limit}"
                        await error_response(413, detail)(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)
