"""Servers and load runs of ``bench_serve.py``: start, wait for ``/ready``, drive, stop.

The service starts exactly as deployed: ``python -m tweetcls serve ...`` with the command line
of :func:`tweetcls.serving.command.serve_argv`. The minimal app of ``--baseline`` starts as
``python scripts/_serve_baseline_app.py --port P``. The closed loop is ``wrk -t1 -c<clients>``
with ``wrk_predict.lua`` (:func:`run_wrk`), the open loop ``python scripts/_serve_load.py`` (a
spec on stdin, raw results on stdout; :func:`run_client`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
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
WRK_SCRIPT = HERE / "wrk_predict.lua"
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


def parse_wrk(stdout: str) -> dict[str, Any]:
    """The ``wrk_result {json}`` line that ``wrk_predict.lua``'s ``done()`` prints."""
    for line in stdout.splitlines():
        if line.startswith("wrk_result "):
            return json.loads(line.removeprefix("wrk_result "))
    raise RuntimeError(f"wrk printed no result line:\n{stdout[-3000:]}")


def run_wrk(
    url: str, bodies: Path, clients: int, seconds: int, args: argparse.Namespace, server_pid: int
) -> dict[str, Any]:
    """A closed loop of ``clients`` connections by one wrk thread for ``seconds`` (wrk takes
    whole seconds). Returns wrk's result line (see ``wrk_predict.lua``) with ``server_cpu_s``
    (the server's process tree, psutil), ``client_cpu_s`` (wrk, ``RUSAGE_CHILDREN``) and the
    wall time ``wall_s`` of the wrk process."""
    from _serve_load import tree_cpu

    progress(f"load: {clients} clients, {seconds} s (wrk)")
    command = [args.wrk, "-t1", f"-c{clients}", f"-d{seconds}s", "-s", str(WRK_SCRIPT)]
    command += [f"--timeout={math.ceil(args.request_timeout)}s", url, "--", str(bodies)]
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server, start = tree_cpu(server_pid), time.perf_counter()
    with pinned(args.client_cpus):
        proc = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    wall, server = time.perf_counter() - start, tree_cpu(server_pid) - server
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    client = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    return parse_wrk(proc.stdout) | {"server_cpu_s": server, "client_cpu_s": client, "wall_s": wall}


def batch_totals(url: str, workers: int) -> tuple[float, float]:
    """``(sum, count)`` of the service's ``tweetcls_batch_size`` histogram (tweets per model
    call) from ``GET /metrics``, over all workers: each worker keeps its own, and a new
    connection lands on any of them, so ``8 x workers`` scrapes are taken and their distinct
    figures summed (the load has stopped, so a worker's figures do not change)."""
    seen = set()
    for _ in range(8 * workers if workers > 1 else 1):
        with urllib.request.urlopen(url, timeout=10) as answer:
            text = answer.read().decode()
        lines = [line for line in text.splitlines() if line[:1] != "#" and " " in line]
        values = dict(line.rsplit(" ", 1) for line in lines)
        seen.add(tuple(float(values[f"tweetcls_batch_size_{k}"]) for k in ("sum", "count")))
    return sum(s for s, _ in seen), sum(c for _, c in seen)


def run_client(
    url: str,
    bodies: Sequence[bytes],
    args: argparse.Namespace,
    server_pid: int,
    *,
    rate: float,
    warmup: float | None = None,
    duration: float | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """One open-loop run at ``rate`` req/s in a load-generator process; its raw results (see
    ``_serve_load.py``)."""
    warmup = args.warmup if warmup is None else warmup
    duration = args.duration if duration is None else duration
    progress(f"load: {rate:.1f} req/s open loop")
    spec = {
        "url": url,
        "server_pid": server_pid,
        "bodies": [body.decode() for body in bodies],
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
