"""Token-bucket rate limits, one bucket per API key (or per client IP when keys are off).

Each identity's bucket holds at most ``burst`` tokens and refills at ``rate`` tokens per
second; a request takes one token, or is refused with the seconds until one is back. The
buckets live in the process: with several server processes (workers) each counts on its own,
so the service as a whole allows up to ``workers`` times the rate. Requests are counted, not
tweets: a batch or a CSV upload takes one token.

The buckets are used on the event loop only (from an ``async`` dependency), so they need no
lock. :data:`monotonic` is looked up on every call, so tests can replace it with a fake clock.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from time import monotonic

__all__ = ["RateLimiter", "monotonic"]

#: Most identities tracked; past it the full (idle) buckets go, then the longest tracked.
MAX_IDENTITIES = 10_000


class RateLimiter:
    """Token buckets per identity.

    Args:
        rate: Tokens added per second (requests per second in the long run); > 0.
        burst: Size of each bucket (requests at once); ``None``: ``rate`` rounded up.
        max_identities: Buckets kept at most (client IPs are unbounded otherwise).
    """

    def __init__(
        self, rate: float, burst: int | None = None, max_identities: int = MAX_IDENTITIES
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate {rate}: must be > 0")
        self.rate = rate
        self.burst = burst if burst is not None else max(1, math.ceil(rate))
        self.max_identities = max_identities
        #: identity -> [tokens, time of the last update]
        self._buckets: dict[Hashable, list[float]] = {}

    def acquire(self, identity: Hashable) -> int:
        """Take a token of ``identity``'s bucket: 0, or the whole seconds (>= 1) until one is
        back (the ``Retry-After`` value), taking nothing."""
        now = monotonic()
        bucket = self._buckets.get(identity)
        if bucket is None:
            if len(self._buckets) >= self.max_identities:
                self._evict(now)
            bucket = self._buckets[identity] = [float(self.burst), now]
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1:
            bucket[0] = tokens - 1
            return 0
        bucket[0] = tokens
        return max(1, math.ceil((1 - tokens) / self.rate))

    def _evict(self, now: float) -> None:
        """Drop the buckets that have refilled (a new one is the same); if that is not enough,
        the half tracked longest."""
        full = [
            identity
            for identity, (tokens, updated) in self._buckets.items()
            if tokens + (now - updated) * self.rate >= self.burst
        ]
        for identity in full:
            del self._buckets[identity]
        if len(self._buckets) >= self.max_identities:
            for identity in list(self._buckets)[: len(self._buckets) // 2 + 1]:
                del self._buckets[identity]

    def __len__(self) -> int:
        """Identities tracked now."""
        return len(self._buckets)
