"""Open-loop load of ``bench_serve.py --open_loop``: capacity search, then fixed loads.

Arrivals are Poisson at a fixed rate (``_serve_load.py``). **Capacity**: the highest rate with
0 errors and p99 <= 1 s (``CAPACITY_P99_MS``) over a short step (``--step_warmup`` +
``--step_duration`` s) with the generator on time (at most 5% of arrivals late, none
dropped). Search: a geometric ramp from ``--start_rate`` (times ``--ramp_factor``) until a
step does not pass or ``--max_rate`` (downwards to 1 req/s if the first fails), then
``--bisect_steps`` bisections at the geometric mean, stopping within 5%; ``limited_by`` says
whether the service, the generator or ``--max_rate`` bounded it. Each step has its own seed.
Then ``--duration`` s after ``--warmup`` s at 50% and 80% of capacity on the same server
(target at 80% for onnx-int8: p99 <= 50 ms, 0 errors), and 150% on a server restarted with
``--max_queue`` = ``--server_max_queue`` and ``--overload_args`` (it sheds instead of
queueing seconds of work): the share answered 503 (with ``Retry-After``), the p99 of the
200s, the other errors.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from typing import Any

from _serve_report import (
    CAPACITY_P99_MS,
    LOADS,
    TARGET_LOAD,
    TARGET_OPEN_BACKEND,
    TARGET_OPEN_P99_MS,
    OpenLoopResult,
    OpenLoopRun,
    load_stats,
)

#: Share of arrivals that may be late or dropped before a step counts as generator-limited.
GENERATOR_SLACK = 0.05
#: Bisection stops once the passing and failing rates are this close (ratio).
BISECT_TOLERANCE = 1.05
#: Seconds between steps, for the server to settle.
SETTLE_S = 0.3


def open_run(label: str, rate: float, max_queue: int | None, raw: dict[str, Any]) -> OpenLoopRun:
    """One open-loop run's figures; ``outcome`` judged as a capacity step."""
    stats = load_stats(raw)
    run = OpenLoopRun(
        label=label,
        rate=rate,
        max_queue=max_queue,
        sent=raw["sent"],
        late=raw["late"],
        dropped=raw["dropped"],
        shed=raw["shed"],
        retry_after=raw["retry_after"],
        **stats,
    )
    scheduled = run.sent + run.dropped
    if run.errors or run.requests == 0 or not run.p99_ms <= CAPACITY_P99_MS:
        run.outcome = "fail"
    elif run.dropped or run.late > GENERATOR_SLACK * max(scheduled, 1):
        run.outcome = "generator-limited"
    else:
        run.outcome = "pass"
    return run


def search_capacity(
    step: Callable[[float], OpenLoopRun],
    start: float,
    factor: float = 2.0,
    bisect_steps: int = 4,
    max_rate: float = 1e5,
    min_rate: float = 1.0,
) -> tuple[float, str, list[OpenLoopRun]]:
    """``(capacity, limited_by, steps)`` of the search in the module docstring.

    Args:
        step: Runs one step at a rate and returns it with its ``outcome``.
        start: First rate.
        factor: Ramp factor (> 1).
        bisect_steps: Most bisection steps.
        max_rate: The ramp stops here (``limited_by`` ``max-rate`` if it still passes).
        min_rate: The downward ramp stops here.
    """
    steps: list[OpenLoopRun] = []

    def passes(rate: float) -> bool:
        steps.append(step(rate))
        return steps[-1].outcome == "pass"

    lo: float | None = None
    hi: float | None = None
    rate = min(start, max_rate)
    if passes(rate):
        lo = rate
        while lo < max_rate:
            rate = min(lo * factor, max_rate)
            if not passes(rate):
                hi = rate
                break
            lo = rate
    else:
        hi = rate
        while hi > min_rate:
            rate = max(hi / factor, min_rate)
            if passes(rate):
                lo = rate
                break
            hi = rate
    if lo is None:
        return 0.0, _limit(steps, hi), steps
    if hi is None:
        return lo, "max-rate", steps
    for _ in range(bisect_steps):
        if hi / lo <= BISECT_TOLERANCE:
            break
        mid = math.sqrt(lo * hi)
        if passes(mid):
            lo = mid
        else:
            hi = mid
    return lo, _limit(steps, hi), steps


def _limit(steps: list[OpenLoopRun], hi: float | None) -> str:
    """What bounded the search: the outcome of the lowest rate that did not pass."""
    failed = [s for s in steps if s.outcome != "pass" and (hi is None or s.rate >= hi * 0.999)]
    lowest = min(failed, key=lambda s: s.rate, default=None)
    return "generator" if lowest and lowest.outcome == "generator-limited" else "service"


def capacity_and_loads(
    backend: str,
    config: str,
    drive: Callable[..., dict[str, Any]],
    args: argparse.Namespace,
) -> OpenLoopResult:
    """Capacity search and the 50%/80% runs on the server that ``drive`` sends to.

    ``drive(rate=..., warmup=..., duration=..., seed=...)`` runs one open-loop spec and
    returns its raw results. The 150% run comes later (:func:`overload`), on its own server.
    """
    counter = iter(range(1, 10**6))

    def step(rate: float) -> OpenLoopRun:
        raw = drive(
            rate=rate, warmup=args.step_warmup, duration=args.step_duration, seed=next(counter)
        )
        time.sleep(SETTLE_S)
        return open_run("step", rate, None, raw)

    capacity, limited_by, steps = search_capacity(
        step,
        start=args.start_rate,
        factor=args.ramp_factor,
        bisect_steps=args.bisect_steps,
        max_rate=args.max_rate,
    )
    result = OpenLoopResult(backend, config, capacity, limited_by, steps=steps)
    if capacity <= 0:
        return result
    for load in LOADS:
        if load > 1:
            continue
        rate = load * capacity
        raw = drive(rate=rate, warmup=args.warmup, duration=args.duration, seed=next(counter))
        run = open_run(f"{load:.0%}", rate, None, raw)
        if backend == TARGET_OPEN_BACKEND and load == TARGET_LOAD:
            run.meets_target = run.errors == 0 and run.p99_ms <= TARGET_OPEN_P99_MS
        result.runs.append(run)
        time.sleep(SETTLE_S)
    return result


def overload(
    result: OpenLoopResult, drive: Callable[..., dict[str, Any]], args: argparse.Namespace
) -> None:
    """The overload runs (loads > 1) on the bounded-queue server ``drive`` sends to."""
    result.overload_max_queue = args.server_max_queue
    result.overload_args = args.overload_args
    for load in LOADS:
        if load <= 1:
            continue
        rate = load * result.capacity_rate
        raw = drive(rate=rate, warmup=args.warmup, duration=args.duration, seed=10**6)
        run = open_run(f"{load:.0%}", rate, args.server_max_queue, raw)
        result.runs.append(run)
        finished = run.requests + run.errors  # every request sent in the window
        result.shed_share = run.shed / finished if finished else None
        result.retry_after_share = run.retry_after / run.shed if run.shed else None
        result.overload_p99_ms = run.p99_ms
        result.overload_other_errors = run.errors - run.shed
