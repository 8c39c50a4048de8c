"""``tweetcls serve --workers N``: N server processes, each listening on the port with its own
``SO_REUSEPORT`` socket, so that the kernel spreads new connections evenly over them.

uvicorn's own ``--workers`` shares one listening socket: the workers race in ``accept()``, and
keep-alive clients that connect at once mostly land on one of them (measured with 32 clients
and 2 workers: 1.0 of 2 cores busy, fewer answers than one worker). With one socket per worker,
each connection is hashed to one of them. Linux (and the BSDs) have ``SO_REUSEPORT``; it is
what gunicorn's ``reuse_port`` and nginx's ``reuseport`` use.

:class:`Supervisor` starts the workers (``spawn``: each imports the app afresh and loads its
own model), restarts one that dies, and on SIGTERM or SIGINT passes SIGTERM on to each (each
drains as a single server does, :class:`~tweetcls.serving.server.GracefulServer`); it exits 0
when every worker did.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.main import STARTUP_FAILURE

from tweetcls.serving.settings import ServeSettings

logger = logging.getLogger(__name__)
#: Seconds a worker gets after its grace period before it is killed.
KILL_AFTER_S = 15.0


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` with ``SO_REUSEADDR`` and ``SO_REUSEPORT`` set.

    Raises:
        OSError: the address cannot be bound (taken by a process without ``SO_REUSEPORT``).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def run_worker(settings: ServeSettings, options: dict[str, Any]) -> None:
    """A worker process: the checked settings, its own model and socket, one server."""
    from tweetcls.serving.app import create_app
    from tweetcls.serving.server import GracefulServer

    config = uvicorn.Config(create_app(settings), **options)
    try:
        sock = reuse_port_socket(config.host, config.port)
    except OSError as err:
        print(f"error: --port {config.port}: {err.strerror}", file=sys.stderr)
        sys.exit(STARTUP_FAILURE)
    server = GracefulServer(config)
    server.run(sockets=[sock])
    sys.exit(0 if server.started else STARTUP_FAILURE)


class Supervisor:
    """Runs ``count`` worker processes on one port until SIGTERM/SIGINT.

    Args:
        settings: The checked settings; each worker receives them (pickled by ``spawn``), and
            ``settings.workers`` is how many there are.
        options: ``uvicorn.Config`` keyword arguments (host, port, loop, logging, grace period).
    """

    def __init__(self, settings: ServeSettings, options: dict[str, Any]) -> None:
        self.count = settings.workers
        self.settings = settings
        self.options = options
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[Any] = []
        self._stopping = False

    def _start(self) -> Any:
        process = self._context.Process(
            target=run_worker, args=(self.settings, self.options), name="tweetcls-worker"
        )
        process.start()
        return process

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        if not self._stopping:
            logger.info("received %s: stopping %d workers", signal.Signals(signum).name, self.count)
        self._stopping = True
        for process in self._processes:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)  # SIGTERM: a second SIGINT forces an exit

    def run(self) -> int:
        """Start the workers, keep them running, stop them on a signal; the exit code (0: every
        worker drained and exited 0, or was still starting; 3: one could not start; 1: one
        failed to stop cleanly)."""
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        failed_start = False
        try:
            self._processes = [self._start() for _ in range(self.count)]
            logger.info("started %d workers: %s", self.count, [p.pid for p in self._processes])
            while not self._stopping:
                sentinels = [p.sentinel for p in self._processes]
                multiprocessing.connection.wait(sentinels, timeout=0.5)
                for i, process in enumerate(self._processes):
                    if process.exitcode is None or self._stopping:
                        continue
                    if process.exitcode == STARTUP_FAILURE:
                        logger.error("worker %d could not start: stopping", process.pid)
                        failed_start = True
                        self._stop(signal.SIGTERM, None)
                        break
                    logger.warning(
                        "worker %d exited (%s): restarting", process.pid, process.exitcode
                    )
                    self._processes[i] = self._start()
            grace = float(self.options.get("timeout_graceful_shutdown") or 0) + KILL_AFTER_S
            for process in self._processes:
                process.join(grace)
                if process.is_alive():
                    logger.error(
                        "worker %d still running %.0f s after SIGTERM: killed", process.pid, grace
                    )
                    process.kill()
                    process.join()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if failed_start:
            return STARTUP_FAILURE
        # a worker still starting when SIGTERM came had accepted nothing: it stopped cleanly
        clean = {0, -signal.SIGTERM, STARTUP_FAILURE}
        return 0 if all(process.exitcode in clean for process in self._processes) else 1
