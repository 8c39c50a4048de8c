"""Browser-facing headers: security headers on every answer, and CORS when configured.

:class:`SecurityHeaders` (pure ASGI, a few precomputed header pairs appended to each answer's
start) sends ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``,
``X-Frame-Options: DENY`` and a Content-Security-Policy. The policy is :data:`STRICT_CSP`
(no inline script or style, nothing from other origins) on every path but two kinds:

- ``/docs``, its OAuth2 redirect and ``/redoc`` (:data:`DOCS_CSP`): Swagger UI and ReDoc load
  their scripts, styles and fonts from CDNs and start with an inline script, so these pages
  allow ``'unsafe-inline'`` and those CDNs (they show only the app's own OpenAPI spec);
- ``/drift`` (:data:`DRIFT_CSP`): the HTML report carries its styles inline (it is also a
  standalone file of ``tweetcls drift``); no script at all.

CORS (Starlette's ``CORSMiddleware``) is off unless ``--cors_origins`` names origins; it lets
those pages send ``Authorization`` and ``Content-Type`` and read ``Retry-After`` and
``Content-Disposition``.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tweetcls.serving.settings import ServeSettings

#: The policy of the page, its static files and the API answers.
STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
#: Swagger UI and ReDoc: their CDN (jsDelivr), Google Fonts (ReDoc), inline start-up code.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https:; "
    "worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
#: The HTML drift report: inline styles, no script, nothing else.
DRIFT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
#: Sent with every policy.
COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _raw(csp: str) -> tuple[tuple[bytes, bytes], ...]:
    headers = {**COMMON_HEADERS, "Content-Security-Policy": csp}
    return tuple((name.lower().encode(), value.encode()) for name, value in headers.items())


class SecurityHeaders:
    """Pure ASGI: append the security headers to every HTTP answer.

    Args:
        app: The wrapped ASGI app.
        policies: Content-Security-Policy per exact path.
        default: The policy of every other path.
    """

    def __init__(
        self, app: ASGIApp, policies: Mapping[str, str] | None = None, default: str = STRICT_CSP
    ) -> None:
        self.app = app
        self.default = _raw(default)
        self.by_path = {path: _raw(csp) for path, csp in (policies or {}).items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.by_path.get(scope["path"], self.default)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def add_browser_middleware(app: FastAPI, settings: ServeSettings) -> None:
    """CORS (with ``settings.cors_origins``) inside the security headers, on ``app``.

    Starlette runs the middleware added last first: call this after the middleware that must
    run inside (body limits) and before the one that must see every answer (metrics).
    """
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Retry-After", "Content-Disposition"],
            max_age=600,
        )
    docs = (app.docs_url, app.swagger_ui_oauth2_redirect_url, app.redoc_url)
    policies = {path: DOCS_CSP for path in docs if path}
    app.add_middleware(SecurityHeaders, policies={**policies, "/drift": DRIFT_CSP})
