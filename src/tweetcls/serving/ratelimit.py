"""Rate limits of the protected routes, counted by the ``limits`` library.

A limit is written in ``limits``' notation: ``20/second``, ``100 per minute``, several joined
by ``;`` (``20/second;1000/hour``). Each identity (an API key, or the client IP when keys are
off) has its own count over a moving window: a request is let in while the identity made fewer
than the limit's number of requests in the window before it. Requests are counted, not tweets:
a batch or a CSV upload is one.

The counts live in the store ``--rate_limit_storage`` names: ``memory://`` (the default) keeps
them in the server process, so ``--workers N`` or R replicas admit N (or R) times the limit;
``redis://HOST:PORT`` is one store that every process and replica shares, so the limit holds
for the service as a whole. A store that cannot be reached does not stop the service: the
request is let in and a warning logged (at most one a minute).
"""

from __future__ import annotations

import logging
import math
import time
from urllib.parse import urlsplit

from limits import RateLimitItem, parse_many
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import ConfigurationError, StorageError
from limits.storage import storage_from_string

__all__ = ["RateLimit", "parse_limits", "storage_for"]

logger = logging.getLogger(__name__)

#: Seconds between two warnings about an unreachable store.
WARN_EVERY_S = 60.0
#: The Redis schemes, whose store uses the ``redis`` client (not ``limits``' default, coredis).
REDIS_SCHEMES = ("redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster")


def parse_limits(text: str) -> list[RateLimitItem]:
    """The limits of ``text`` (``20/second;1000/hour``).

    Raises:
        ValueError: ``text`` is not in ``limits``' notation, or allows no request.
    """
    try:
        items = parse_many(text)
    except ValueError:
        items = []
    if not items or any(item.amount < 1 for item in items):
        raise ValueError(
            "not a rate limit: write N/second, N/minute, N/hour or N/day with N at least 1 "
            "(several joined by ';')"
        )
    return items


def storage_for(uri: str) -> Storage:
    """The asynchronous ``limits`` store of ``uri`` (``memory://``, ``redis://HOST:PORT/DB``, ...).

    Raises:
        ValueError: an unknown scheme, or one whose client is not installed; the message names
            the scheme only (a URI may hold a password).
    """
    scheme = urlsplit(uri).scheme
    options = {"implementation": "redispy"} if scheme in REDIS_SCHEMES else {}
    try:
        storage = storage_from_string(f"async+{uri}", wrap_exceptions=True, **options)
    except ConfigurationError as err:
        reason = "its client is not installed" if "prerequisite" in str(err) else "unknown"
        raise ValueError(
            f"scheme {scheme or '(none)'!r}: {reason} (use memory:// or redis://HOST:PORT)"
        ) from None
    assert isinstance(storage, Storage)  # an async+ scheme gives an asynchronous store
    return storage


class RateLimit:
    """Moving-window counts per identity, in a ``limits`` store.

    Args:
        limits: The limits, in ``limits``' notation (:func:`parse_limits`).
        storage_uri: Where the counts live (:func:`storage_for`).
    """

    def __init__(self, limits: str, storage_uri: str = "memory://") -> None:
        self.text = limits
        self.items = parse_limits(limits)
        self.storage = storage_for(storage_uri)
        self.strategy = MovingWindowRateLimiter(self.storage)
        self._warned_at = -math.inf

    async def acquire(self, identity: str) -> int:
        """Count a request of ``identity``: 0 when it may pass, else the whole seconds (>= 1)
        until the window has room again (the ``Retry-After`` value).

        The limits are counted in order; the first one that is full refuses (those before it
        have counted the request, as every ``limits`` client does).
        """
        try:
            for item in self.items:
                if not await self.strategy.hit(item, identity):
                    stats = await self.strategy.get_window_stats(item, identity)
                    return max(1, math.ceil(stats.reset_time - time.time()))
        except StorageError as err:
            now = time.monotonic()
            if now - self._warned_at >= WARN_EVERY_S:
                self._warned_at = now
                logger.warning(
                    "rate limit store unreachable (%s): requests pass uncounted",
                    type(err.storage_error).__name__,
                )
        return 0
