"""The uvicorn server of ``tweetcls serve`` (one process; ``--workers`` uses uvicorn's own)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import uvicorn


class GracefulServer(uvicorn.Server):
    """uvicorn's ``Server``, exiting 0 after a graceful shutdown on SIGTERM or SIGINT.

    On a signal uvicorn stops accepting, lets the accepted requests finish (up to
    ``timeout_graceful_shutdown``) and runs the lifespan's shutdown (queued tweets answered,
    request log flushed); then it re-raises the signal, so that the process would end "killed
    by SIGTERM" (status 143), and a Ctrl-C ends in a ``KeyboardInterrupt`` traceback after a
    clean shutdown (measured with uvicorn 0.54: ``tweetcls serve`` on plain ``uvicorn.Server``
    exited -2 with that traceback on SIGINT, 143 on SIGTERM). This server leaves the signal
    handled: exit 0 after a drain, as the ``--workers`` supervisor does.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()  # handled: no re-raise
