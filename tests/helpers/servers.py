"""``tweetcls serve`` as a real process for tests: started as deployed, used once ready."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from helpers.scripts import import_script
from tweetcls.serving.command import serve_argv
from tweetcls.serving.settings import ServeSettings

#: The benchmarks' free ports (``scripts/_bench_common.py``), for every server a test starts.
free_port = import_script("_bench_common").free_port

#: Longest a test waits for ``GET /ready`` (model loading and imports, on a loaded CI core).
READY_TIMEOUT_S = 120.0


def settings_for(model: Path, database: Path, **changes: Any) -> ServeSettings:
    """Settings on ``model`` with a private request log and no periodic drift check, for an app
    built in-process."""
    return ServeSettings(
        model=model,
        database_url=f"sqlite:///{database}",
        drift_interval_s=0,
        drift_min_samples=5,
        threads=1,
        **changes,
    )


class ServerProcess:
    """One ``python -m tweetcls serve`` process on a free port of 127.0.0.1.

    Args:
        log: File that gets the server's stdout and stderr.
        env: Variables set for the server, over this process's (whose ``TWEETCLS_*`` are
            left out).
        flags: ``tweetcls serve`` flags (:func:`~tweetcls.serving.command.serve_argv`).
    """

    def __init__(self, log: Path, env: dict[str, str] | None = None, **flags: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        argv = serve_argv(port=self.port, drift_interval_s=0, **flags)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TWEETCLS_")},
            **(env or {}),
        }
        with log.open("wb") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)

    def output(self) -> str:
        """What the server printed so far."""
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Return once ``GET /ready`` answers 200; ``AssertionError`` with the output if the
        process exits first or the timeout passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"server exited early:\n{self.output()}"
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready after {timeout} s:\n{self.output()}")

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM, then the exit code (killed and ``AssertionError`` after ``timeout``)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"no exit {timeout} s after SIGTERM:\n{self.output()}") from None


@contextmanager
def running_server(
    log: Path, env: dict[str, str] | None = None, **flags: Any
) -> Iterator[ServerProcess]:
    """A ready :class:`ServerProcess`, killed on the way out if still running."""
    server = ServerProcess(log, env, **flags)
    try:
        server.wait_ready()
        yield server
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
