"""The open-loop load generator of ``bench_serve.py``: a lean process that sends ``POST
/predict`` at Poisson arrivals (the closed loop is wrk, see ``wrk_predict.lua``).

No compiled open-loop generator is installable here: wrk2, vegeta, k6 and oha have no Debian 12
package (``apt-cache policy`` knows none of them), and Debian's ``hey -q`` and ``siege``
throttle the connections of a closed loop, which is not an open loop.

Run as ``python scripts/_serve_load.py`` with a JSON spec on stdin; it prints its raw results
as JSON on stdout. It imports only the standard library, psutil and the HTTP client (aiohttp
when installed, else httpx; uvloop when installed), so it starts in a fraction of a second.
Arrivals come at ``rate`` requests/s (exponential gaps from a seeded RNG, the schedule fixed
before the start). Each is an independent request on a pool of up to ``pool`` connections;
latency runs from the *scheduled* time, so a generator that falls behind cannot hide queueing
(no coordinated omission). An arrival sent more than ``late_ms`` after its time counts as
``late``; one that finds all ``pool`` connections busy is not sent and counts as ``dropped``:
the generator never waits for an answer before sending, so it never turns closed-loop. Only
arrivals scheduled after ``warmup`` seconds are measured, for ``duration`` seconds, with the
CPU used by this process and by the server's process tree over that window.
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


def tree_cpu(pid: int) -> float:
    """CPU seconds of process ``pid`` and its descendants (the server's supervisor and workers)."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return total
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _cpu(server_pid: int) -> tuple[float, float]:
    """CPU seconds of this process and of the server's process tree."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, tree_cpu(server_pid)


def arrival_offsets(rate: float, seconds: float, seed: int) -> list[float]:
    """Poisson arrival times in ``[0, seconds)`` at ``rate`` per second (seeded)."""
    rng, offsets, t = random.Random(seed), [], 0.0
    while (t := t + rng.expovariate(rate)) < seconds:
        offsets.append(t)
    return offsets


async def _drive(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one spec; return latencies (ms, successes), failures by kind and counters."""
    bodies = [body.encode() for body in spec["bodies"]]
    url, connections = spec["url"], spec["pool"]
    client = _Client(spec["http"], connections, spec["timeout"])
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    counts = Counter(late=0, dropped=0, sent=0, retry_after=0, shed=0)
    start = time.perf_counter() + 0.05
    measure_from = start + spec["warmup"]
    stop_at = measure_from + spec["duration"]
    marks: list[tuple[float, tuple[float, float]]] = []  # (time, CPU seconds) at the start

    def record(origin: float, status: int | str, retry_after: bool) -> None:
        if origin < measure_from:
            return
        if status == 200:
            latencies.append((time.perf_counter() - origin) * 1000)
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
        marks.append((time.perf_counter(), _cpu(spec["server_pid"])))

    try:
        await asyncio.sleep(max(start - time.perf_counter(), 0))
        await asyncio.gather(mark_window_start(), open_schedule())
    finally:
        await client.close()
    marked_at, begin = marks[0]
    elapsed = time.perf_counter() - marked_at  # CPU: window start to the last answer
    end = _cpu(spec["server_pid"])
    used = [(e - b) / elapsed for b, e in zip(begin, end, strict=True)]
    return {
        "latencies_ms": latencies,
        "failures": dict(failures),
        "duration_s": stop_at - measure_from,
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
