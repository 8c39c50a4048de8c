"""API keys and rate limits of the protected routes, checked before a request body is read.

The protected routes are ``/predict``, ``/explain``, ``/predict/csv``, ``/feedback``,
``/drift`` and ``/metrics``; ``/health``, ``/ready``, ``/version``, the page, its files and the
docs stay open (probes and rollout checks call them without a key; they reveal no settings and
no traffic).
With keys, a request is let in when its ``Authorization: Bearer <key>`` is one of them; then,
with a rate limit, when its key (without keys: its client IP) is within the limit
(:mod:`tweetcls.serving.ratelimit`).

:class:`Gate` decides, in one place: :class:`AccessControl`, a pure ASGI middleware on the
protected paths. A refusal is answered before FastAPI reads (or parses, for a CSV upload) the
body, so a caller without a key can make the service neither read 10 MB nor say what was wrong
with it. Every protected route has a fixed path (checked when the app is built), so the
middleware sees each request that reaches one: a path with a trailing slash is redirected by
the router and checked again, and a ``root_path`` prefix is removed as the router removes it.
The protected routers carry a ``fastapi.security.HTTPBearer`` only so that the OpenAPI spec
declares the bearer scheme on them; it lets every request through.

Only the keys' SHA-256 digests are kept; a token's digest is compared with every one of them
with :func:`hmac.compare_digest`, without stopping at a match, so the time taken tells neither
which key matched nor how much of one. Every refusal for a key is the same 401
(``WWW-Authenticate: Bearer``) with the same message, whether the header was missing, of
another scheme or the key wrong. Neither keys nor tokens are logged.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, params
from fastapi.security import HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.types import ASGIApp, Receive, Scope, Send

from tweetcls.serving.errors import error_response
from tweetcls.serving.ratelimit import RateLimit
from tweetcls.serving.schemas import ErrorBody
from tweetcls.serving.settings import ServeSettings

logger = logging.getLogger(__name__)

#: Name and description of the bearer scheme in the OpenAPI spec.
SCHEME_NAME = "apiKey"
SCHEME_DESCRIPTION = "An API key of `tweetcls serve --api_keys` or `--api_key_file`."
#: The one message of every 401: it does not say what was wrong.
UNAUTHORIZED = "not authorized: send a valid API key as 'Authorization: Bearer <key>'"
#: OpenAPI descriptions of the gate's answers.
UNAUTHORIZED_RESPONSE: dict[str, Any] = {
    "model": ErrorBody,
    "description": "No valid API key (`Authorization: Bearer <key>`).",
}
RATE_LIMITED_RESPONSE: dict[str, Any] = {
    "model": ErrorBody,
    "description": "Rate limit exceeded; `Retry-After` gives the seconds to wait.",
}


class ApiKeys:
    """The accepted API keys, kept as SHA-256 digests, compared in constant time.

    Args:
        keys: The keys (at least one).
    """

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("no API keys")
        self._digests = tuple(hashlib.sha256(key.encode()).digest() for key in keys)
        #: Each key's name in a shared rate-limit store: the same in every replica, whatever
        #: the order of its keys, and not the key.
        self.identities = tuple(f"key:{digest.hex()[:16]}" for digest in self._digests)

    def __len__(self) -> int:
        return len(self._digests)

    def __repr__(self) -> str:
        return f"ApiKeys({len(self)} keys)"

    def match(self, token: str) -> int | None:
        """The index of the key ``token`` is, or ``None``; compares with every key."""
        digest = hashlib.sha256(token.encode("utf-8", "replace")).digest()
        hits = [hmac.compare_digest(digest, key) for key in self._digests]
        return hits.index(True) if True in hits else None


@dataclass(frozen=True)
class Refusal:
    """The gate's answer to a request it does not let in."""

    status: int
    detail: str
    headers: dict[str, str]


#: Every refusal for want of a valid key (RFC 6750's challenge).
NOT_AUTHORIZED = Refusal(401, UNAUTHORIZED, {"WWW-Authenticate": "Bearer"})


class Gate:
    """Whether a request may pass: its API key (when there are keys), then its rate limit.

    Args:
        keys: The accepted keys; ``None``: no keys (the rate limit counts per client IP).
        limiter: The rate limit per key or client; ``None``: no limit.
    """

    def __init__(self, keys: ApiKeys | None, limiter: RateLimit | None) -> None:
        self.keys = keys
        self.limiter = limiter

    async def check(self, authorization: str | None, client: str | None) -> Refusal | None:
        """``None`` to let the request in, else its refusal.

        Args:
            authorization: The ``Authorization`` header, if any.
            client: The client's IP address, if known.
        """
        identity = f"ip:{client}"
        if self.keys is not None:
            scheme, token = get_authorization_scheme_param(authorization)
            index = self.keys.match(token) if token and scheme.lower() == "bearer" else None
            if index is None:
                return NOT_AUTHORIZED
            identity = self.keys.identities[index]
        if self.limiter is None:
            return None
        wait = await self.limiter.acquire(identity)
        if not wait:
            return None
        per = "API key" if self.keys is not None else "client"
        detail = f"rate limit: {self.limiter.text} per {per}; retry in {wait} s"
        return Refusal(429, detail, {"Retry-After": str(wait)})


def route_path(scope: Scope) -> str:
    """The path the app routes on: ``path`` without the ``root_path`` prefix (as Starlette)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :] or "/"
    return path


class AccessControl:
    """Pure ASGI: ask the gate about every request to a protected path, before the app.

    A refusal is answered here (``{"detail": ...}``, with ``WWW-Authenticate`` or
    ``Retry-After``), labelled in the metrics with the route it was for.

    Args:
        app: The wrapped ASGI app.
        gate: What decides.
        routes: The protected routes by path; fixed paths only (a path parameter would let
            requests past that the exact match does not see).
    """

    def __init__(self, app: ASGIApp, gate: Gate, routes: Mapping[str, Any]) -> None:
        templated = sorted(path for path in routes if "{" in path)
        if templated:
            raise ValueError(f"protected routes need fixed paths: {', '.join(templated)}")
        self.app = app
        self.gate = gate
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self.routes.get(route_path(scope))
            if route is not None:
                authorization = None
                for name, value in scope["headers"]:
                    if name == b"authorization":
                        authorization = value.decode("latin-1")
                        break
                client = scope.get("client")
                refusal = await self.gate.check(authorization, client[0] if client else None)
                if refusal is not None:
                    scope["route"] = route  # the metrics' route label
                    answer = error_response(refusal.status, refusal.detail, **refusal.headers)
                    await answer(scope, receive, send)
                    return
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class Protection:
    """The gate of an app's settings and what the protected routers are included with (the
    spec's bearer scheme and the gate's answers; nothing that checks)."""

    gate: Gate | None = None
    dependencies: list[params.Depends] = field(default_factory=list)
    responses: dict[int | str, dict[str, Any]] = field(default_factory=dict)

    def add_middleware(self, app: FastAPI, routers: Iterable[APIRouter]) -> None:
        """:class:`AccessControl` on the paths of ``routers`` (nothing when the gate is off).

        Starlette runs the middleware added last first: call this after the body limits (so
        that a caller without a key gets a 401, not a 413) and before CORS.
        """
        if self.gate is not None:
            routes = {route.path: route for router in routers for route in router.routes}
            app.add_middleware(AccessControl, gate=self.gate, routes=routes)


def protection(settings: ServeSettings) -> Protection:
    """The gate of ``settings``' API keys and rate limit (none when both are off)."""
    keys = settings.access_keys()
    limiter = None
    responses: dict[int | str, dict[str, Any]] = {}
    dependencies: list[params.Depends] = []
    if keys:
        responses[401] = UNAUTHORIZED_RESPONSE
        # declares the scheme in the OpenAPI spec; the middleware decides (auto_error off)
        scheme = HTTPBearer(
            scheme_name=SCHEME_NAME, description=SCHEME_DESCRIPTION, auto_error=False
        )
        dependencies.append(Depends(scheme))
    if settings.rate_limit is not None:
        limiter = RateLimit(settings.rate_limit, settings.rate_limit_storage)
        responses[429] = RATE_LIMITED_RESPONSE
    if not keys and limiter is None:
        return Protection()
    return Protection(Gate(ApiKeys(keys) if keys else None, limiter), dependencies, responses)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def warn_if_open(settings: ServeSettings) -> None:
    """A warning when the service listens beyond this machine without API keys."""
    if not settings.access_keys() and not is_loopback(settings.host):
        logger.warning(
            "serving on %s without API keys: anyone who reaches it may call /predict, "
            "/explain, /predict/csv, /feedback, /drift and /metrics (set --api_keys or "
            "--api_key_file)",
            settings.host,
        )
