"""The load generator of ``bench_serve.py``: a lean process that sends ``POST /predict``.

Run as ``python scripts/_serve_load.py`` with a JSON spec on stdin; it prints its raw results
as JSON on stdout. It imports only the standard library, psutil and the HTTP client (aiohttp
when installed, else httpx; uvloop when installed), so it starts in a fraction of a second and
takes little CPU from the server. Request bodies are serialized before the clock starts; per
request it records a status and times, nothing else.

Two modes (``spec["mode"]``):

* ``closed``: ``clients`` tasks, one keep-alive connection each; a client sends its next
  request as soon as the previous one is answered.
* ``open``: Poisson arrivals at ``rate`` requests/s (exponential gaps from a seeded RNG, the
  schedule fixed before the start). Each arrival is an independent request on a pool of up to
  ``pool`` connections; latency runs from the *scheduled* time, so a generator that falls
  behind cannot hide queueing (no coordinated omission). An arrival sent more than
  ``late_ms`` after its time counts as ``late``; one that finds all ``pool`` connections busy
  is not sent and counts as ``dropped``: the generator never waits for an answer before
  sending, so it never turns closed-loop.

Both measure only requests started (closed) or scheduled (open) after ``warmup`` seconds, for
``duration`` seconds, and the CPU used by this process and by the server's process tree (the
uvicorn supervisor and its workers) over that window.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import sys
import time
from collections import Counter
from typing import Any

import psutil

HEADERS = {"content-type": "application/json"}


def http_library(choice: str) -> str:
    """``aiohttp`` or ``httpx`` for ``--http auto|aiohttp|httpx``."""
    if choice != "auto":
        return choice
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return "httpx"
    return "aiohttp"


class _Client:
    """One HTTP session with up to ``connections`` keep-alive connections."""

    def __init__(self, library: str, connections: int, timeout: float) -> None:
        self.aiohttp = library == "aiohttp"
        if self.aiohttp:
            import aiohttp

            self.session: Any = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=connections),
                timeout=aiohttp.ClientTimeout(total=timeout),
            )
        else:
            import httpx

            limits = httpx.Limits(
                max_connections=connections, max_keepalive_connections=connections
            )
            self.session = httpx.AsyncClient(limits=limits, timeout=timeout)

    async def post(self, url: str, body: bytes) -> tuple[int, bool]:
        """``(status, whether a Retry-After header came back)``."""
        if self.aiohttp:
            async with self.session.post(url, data=body, headers=HEADERS) as answer:
                await answer.read()
                return answer.status, "Retry-After" in answer.headers
        answer = await self.session.post(url, content=body, headers=HEADERS)
        return answer.status_code, "retry-after" in answer.headers

    async def close(self) -> None:
        await (self.session.close() if self.aiohttp else self.session.aclose())


class _CpuMeter:
    """CPU seconds of this process and of the server's process tree."""

    def __init__(self, server_pid: int) -> None:
        self.server = psutil.Process(server_pid)

    def __call__(self) -> tuple[float, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        server = 0.0
        try:
            procs = [self.server, *self.server.children(recursive=True)]
        except psutil.NoSuchProcess:
            procs = []
        for proc in procs:
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            server += times.user + times.system
        return usage.ru_utime + usage.ru_stime, server


def arrival_offsets(rate: float, seconds: float, seed: int) -> list[float]:
    """Poisson arrival times in ``[0, seconds)`` at ``rate`` per second (seeded)."""
    rng, offsets, t = random.Random(seed), [], 0.0
    while (t := t + rng.expovariate(rate)) < seconds:
        offsets.append(t)
    return offsets


async def _drive(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one spec; return latencies (ms, successes), failures by kind and counters."""
    bodies = [body.encode() for body in spec["bodies"]]
    url, mode = spec["url"], spec["mode"]
    connections = spec["clients"] if mode == "closed" else spec["pool"]
    client = _Client(spec["http"], connections, spec["timeout"])
    cpu = _CpuMeter(spec["server_pid"])
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    counts = Counter(late=0, dropped=0, sent=0, retry_after=0, shed=0)
    start = time.perf_counter() + 0.05
    measure_from = start + spec["warmup"]
    stop_at = measure_from + spec["duration"]
    marks: list[tuple[float, tuple[float, float]]] = []  # (time, CPU seconds) at the start
    last_end = measure_from

    def record(origin: float, status: int | str, retry_after: bool) -> None:
        nonlocal last_end
        done = time.perf_counter()
        if origin < measure_from:
            return
        last_end = max(last_end, done)
        if status == 200:
            latencies.append((done - origin) * 1000)
            return
        failures[str(status)] += 1
        if status == 503:
            counts["shed"] += 1
            counts["retry_after"] += retry_after

    async def send(origin: float, body: bytes) -> None:
        try:
            status, retry_after = await client.post(url, body)
        except Exception as err:  # any failure to get an answer counts as an error
            status, retry_after = type(err).__name__, False
        record(origin, status, retry_after)

    async def closed_client(first: int) -> None:
        index = first
        while (sent := time.perf_counter()) < stop_at:
            await send(sent, bodies[index % len(bodies)])
            index += spec["clients"]

    async def open_schedule() -> None:
        in_flight: set[asyncio.Task] = set()
        offsets = arrival_offsets(spec["rate"], spec["warmup"] + spec["duration"], spec["seed"])
        for index, offset in enumerate(offsets):
            due = start + offset
            delay = due - time.perf_counter()
            await asyncio.sleep(max(delay, 0))
            measured = due >= measure_from
            if len(in_flight) >= connections:
                counts["dropped"] += measured
                continue
            late = time.perf_counter() - due > spec["late_ms"] / 1000
            counts["late"] += measured and late
            counts["sent"] += measured
            task = asyncio.create_task(send(due, bodies[index % len(bodies)]))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        if in_flight:
            await asyncio.gather(*in_flight)

    async def mark_window_start() -> None:
        await asyncio.sleep(max(measure_from - time.perf_counter(), 0))
        marks.append((time.perf_counter(), cpu()))

    try:
        await asyncio.sleep(max(start - time.perf_counter(), 0))
        if mode == "closed":
            drivers = [closed_client(i) for i in range(spec["clients"])]
        else:
            drivers = [open_schedule()]
        await asyncio.gather(mark_window_start(), *drivers)
    finally:
        await client.close()
    # closed: first measured start to last measured answer; open: the arrival window
    window = last_end - measure_from if mode == "closed" else stop_at - measure_from
    marked_at, begin = marks[0]
    elapsed = time.perf_counter() - marked_at  # CPU: window start to the last answer
    used = [(end - first) / elapsed for first, end in zip(begin, cpu(), strict=True)]
    return {
        "latencies_ms": latencies,
        "failures": dict(failures),
        "duration_s": window,
        "client_cpu": used[0],
        "server_cpu": used[1],
        **counts,
    }


def raise_fd_limit() -> None:
    """Soft open-file limit up to the hard one (an open-loop pool holds many sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    """Run the spec on stdin, print the results as JSON."""
    spec = json.load(sys.stdin)
    raise_fd_limit()
    try:
        import uvloop
    except ImportError:
        results = asyncio.run(_drive(spec))
    else:
        results = uvloop.run(_drive(spec))
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
