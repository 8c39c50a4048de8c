"""Servers and load runs of ``bench_serve.py``: start, wait for ``/ready``, drive, stop.

The service starts exactly as deployed: ``python -m tweetcls serve ...`` with the command line
of :func:`tweetcls.serving.command.serve_argv`. The minimal app of ``--baseline`` starts as
``python scripts/_serve_baseline_app.py --port P``. The load generator is
``python scripts/_serve_load.py`` (a spec on stdin, raw results on stdout).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tweetcls.core.errors import TweetclsError

HERE = Path(__file__).resolve().parent
LOAD_SCRIPT = HERE / "_serve_load.py"
BASELINE_APP = HERE / "_serve_baseline_app.py"


_STARTED = time.monotonic()


def progress(message: str) -> None:
    """A progress line on stderr (stdout carries only the report), with the elapsed time."""
    print(
        f"[bench_serve {time.monotonic() - _STARTED:6.1f} s] {message}", file=sys.stderr, flush=True
    )


class ServerError(TweetclsError):
    """The service did not start or died during the benchmark."""


@dataclass(frozen=True)
class ServiceConfig:
    """One service configuration of the grid (``--workers`` x ``--batching`` x threads).

    Args:
        workers: ``tweetcls serve --workers``.
        max_batch_tokens: ``--max_batch_tokens`` (0: one model run per micro-batch, the
            ``requests`` batching; > 0: the ``tokens`` batching).
        threads: ``--threads`` per worker; ``None``: the service's default.
    """

    workers: int = 1
    max_batch_tokens: int = 0
    threads: int | None = None

    @property
    def label(self) -> str:
        """E.g. ``w2 tokens512 t1`` or ``w1 requests t=auto``."""
        batching = f"tokens{self.max_batch_tokens}" if self.max_batch_tokens else "requests"
        return f"w{self.workers} {batching} t{self.threads or '=auto'}"


def parse_cpus(value: str) -> set[int]:
    """A CPU list such as ``0``, ``0,1`` or ``0-3`` (argparse type)."""
    cpus: set[int] = set()
    try:
        for part in value.split(","):
            first, _, last = part.partition("-")
            cpus.update(range(int(first), int(last or first) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a CPU list: {value!r} (e.g. 0 or 0,1 or 0-3)"
        ) from None
    available = os.sched_getaffinity(0)
    if not cpus or not cpus <= available:
        raise argparse.ArgumentTypeError(f"CPUs {value!r} not all in {sorted(available)}")
    return cpus


@contextlib.contextmanager
def pinned(cpus: set[int] | None) -> Iterator[None]:
    """Run the block (and the processes it starts, which inherit it) on ``cpus``."""
    if cpus is None:
        yield
        return
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


def serve_command(
    model: Path,
    backend: str,
    port: int,
    database_url: str,
    extra: str = "",
    config: ServiceConfig | None = None,
    max_queue: int | None = None,
) -> list[str]:
    """The ``python -m tweetcls serve`` command line of one benchmarked server.

    ``--workers`` and ``--max_batch_tokens`` are always given (should their defaults change,
    a row still runs what its label says); ``--threads`` and ``--max_queue`` only when set.
    """
    from tweetcls.serving.command import serve_argv

    config = config or ServiceConfig()
    command = serve_argv(
        model=model,
        backend=backend,
        host="127.0.0.1",
        port=port,
        database_url=database_url,
        threads=config.threads,
        workers=config.workers,
        max_batch_tokens=config.max_batch_tokens,
        max_queue=max_queue,
    )
    return command + shlex.split(extra)


def baseline_command(port: int) -> list[str]:
    """The command line of the minimal FastAPI app of ``--baseline``."""
    return [sys.executable, str(BASELINE_APP), "--port", str(port)]


def log_tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file."""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_ready(
    proc: subprocess.Popen, url: str, log: Path, timeout: float, consecutive: int = 1
) -> None:
    """Poll ``url`` (``/ready``) until it answers 200 ``consecutive`` times in a row, each on a
    new connection (with several workers, so that more than one has answered); fail if the
    server exits or the time runs out."""
    deadline = time.monotonic() + timeout
    streak = 0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"server exited with {proc.returncode}:\n{log_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                streak = streak + 1 if answer.status == 200 else 0
                if streak >= consecutive:
                    return
                continue
        except urllib.error.HTTPError as err:  # e.g. 503 while the model loads
            err.close()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        streak = 0
        time.sleep(0.2)
    raise ServerError(f"{url} not ready after {timeout:.0f} s:\n{log_tail(log)}")


@contextlib.contextmanager
def running_server(
    command: list[str],
    ready_url: str,
    log: Path,
    timeout: float,
    cpus: set[int] | None,
    consecutive: int = 1,
) -> Iterator[subprocess.Popen]:
    """Start the server, wait until it is ready, and stop it (SIGTERM, then SIGKILL)."""
    progress(f"start: {shlex.join(command[1:])}")
    with log.open("wb") as out, pinned(cpus):
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(proc, ready_url, log, timeout, consecutive)
        progress("ready")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def check_alive(proc: subprocess.Popen, log: Path) -> None:
    """Fail if the server exited during a run."""
    if proc.poll() is not None:
        raise ServerError(f"server died during the run:\n{log_tail(log)}")


def run_client(
    url: str,
    bodies: Sequence[bytes],
    args: argparse.Namespace,
    server_pid: int,
    *,
    clients: int | None = None,
    rate: float | None = None,
    warmup: float | None = None,
    duration: float | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """One load run in a load-generator process: closed loop with ``clients``, or open loop
    at ``rate`` req/s; return its raw results (see ``_serve_load.py``)."""
    warmup = args.warmup if warmup is None else warmup
    duration = args.duration if duration is None else duration
    progress(f"load: {clients} clients" if rate is None else f"load: {rate:.1f} req/s open loop")
    spec = {
        "mode": "closed" if rate is None else "open",
        "url": url,
        "server_pid": server_pid,
        "bodies": [body.decode() for body in bodies],
        "clients": clients,
        "rate": rate,
        "pool": getattr(args, "pool", 1024),
        "late_ms": getattr(args, "late_ms", 10.0),
        "seed": seed,
        "warmup": warmup,
        "duration": duration,
        "timeout": args.request_timeout,
        "http": args.http,
    }
    with pinned(args.client_cpus):
        proc = subprocess.run(
            [sys.executable, str(LOAD_SCRIPT)],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            timeout=warmup + duration + args.request_timeout + 120,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)
