"""What ``bench_serve.py`` runs in processes of their own: ``_serve_workers.py load``, the
open-loop generator (:func:`drive`, a JSON spec on stdin, results on stdout); :func:`reference`,
the backend alone; :func:`build_app`, the app of ``--baseline``. No ``from __future__ import
annotations``: FastAPI must see the app's body type (a local) as an object.
"""

import asyncio
import contextlib
import json
import random
import resource
import sys
import time
from collections import Counter
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Annotated, Any

import psutil

HEADERS = {"content-type": "application/json"}


def tree_cpu(pid: int) -> float:
    """CPU seconds of process ``pid`` and its descendants (the server's supervisor and workers)."""
    total = 0.0
    with contextlib.suppress(psutil.NoSuchProcess):
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += sum(proc.cpu_times()[:2])  # user, system
    return total


def arrival_offsets(rate: float, seconds: float, seed: int) -> list[float]:
    """Poisson arrival times in ``[0, seconds)`` at ``rate`` per second (seeded)."""
    rng, offsets, t = random.Random(seed), [], 0.0
    while (t := t + rng.expovariate(rate)) < seconds:
        offsets.append(t)
    return offsets


async def drive(spec: dict[str, Any]) -> dict[str, Any]:
    """One open-loop run of ``spec``: seeded Poisson arrivals at ``rate``/s on up to ``pool``
    connections, latency from the scheduled time (over ``late_ms`` behind: ``late``; every
    connection busy: ``dropped``, never sent). Of the arrivals in the ``duration`` s after
    ``warmup``: the 200s' latencies (ms), other outcomes, counters, this process's and the
    server tree's cores."""
    import aiohttp  # the lightest installed client (a dependency of dvc and fsspec)

    bodies = [body.encode() for body in spec["bodies"]]
    connector = aiohttp.TCPConnector(limit=spec["pool"])
    timeout = aiohttp.ClientTimeout(total=spec["timeout"])
    session = aiohttp.ClientSession(connector=connector, timeout=timeout)
    latencies: list[float] = []
    due_s: list[float] = []  # each latency's scheduled time in the window
    failures: Counter[str] = Counter()
    counts = Counter(late=0, dropped=0, sent=0, retry_after=0, shed=0)
    start = time.perf_counter() + 0.05
    measure_from = start + spec["warmup"]

    def cpu() -> tuple[float, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime, tree_cpu(spec["server_pid"])

    async def until(moment: float) -> None:
        await asyncio.sleep(max(moment - time.perf_counter(), 0))

    async def mark_window() -> tuple[float, tuple[float, float]]:
        await until(measure_from)
        return time.perf_counter(), cpu()

    async def send(due: float, body: bytes) -> None:
        try:
            async with session.post(spec["url"], data=body, headers=HEADERS) as answer:
                await answer.read()
                status, retry_after = answer.status, "Retry-After" in answer.headers
        except Exception as err:  # any failure to get an answer counts as an error
            status, retry_after = type(err).__name__, False
        if due < measure_from:
            return
        if status == 200:
            latencies.append((time.perf_counter() - due) * 1000)
            due_s.append(due - measure_from)
            return
        failures[str(status)] += 1
        counts["shed"] += status == 503
        counts["retry_after"] += status == 503 and retry_after

    in_flight: set[asyncio.Task] = set()
    try:
        await until(start)
        marker = asyncio.create_task(mark_window())
        offsets = arrival_offsets(spec["rate"], spec["warmup"] + spec["duration"], spec["seed"])
        for index, offset in enumerate(offsets):
            due = start + offset
            await until(due)
            measured = due >= measure_from
            if len(in_flight) >= spec["pool"]:
                counts["dropped"] += measured
                continue
            counts["late"] += measured and time.perf_counter() - due > spec["late_ms"] / 1000
            counts["sent"] += measured
            task = asyncio.create_task(send(due, bodies[index % len(bodies)]))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)
        marked_at, begin = await marker
    finally:
        await session.close()
    elapsed, end = time.perf_counter() - marked_at, cpu()  # window start to the last answer
    client_cpu, server_cpu = ((e - b) / elapsed for b, e in zip(begin, end, strict=True))
    return {
        "latencies_ms": latencies,
        "due_s": due_s,
        "failures": dict(failures),
        "duration_s": spec["duration"],
        "client_cpu": client_cpu,
        "server_cpu": server_cpu,
        **counts,
    }


def load() -> None:
    """Run the open-loop spec on stdin on uvloop, print the results as JSON."""
    spec = json.load(sys.stdin)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # a pool holds many sockets
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    import uvloop  # of uvicorn[standard], as the service runs

    json.dump(uvloop.run(drive(spec)), sys.stdout)


def make_batches(
    tokens: Sequence[int], batch: float, by_length: bool, seed: int
) -> list[list[int]]:
    """Full index batches of ``batch`` tweets cut from the pool sorted by ``tokens`` (or
    shuffled), in a seeded order; a fractional ``batch`` mixes its floor and ceil to that mean."""
    order = list(range(len(tokens)))
    rng = random.Random(seed)
    if by_length:
        order.sort(key=lambda i: tokens[i])
    else:
        rng.shuffle(order)
    low, share = (len(order), 0.0) if batch >= len(order) else (int(batch), batch % 1)
    batches, start = [], 0
    while start + (size := max(1, low + (share > 0 and rng.random() < share))) <= len(order):
        batches.append(order[start : start + size])
        start += size
    rng.shuffle(batches)
    return batches


def reference(conn: Connection, spec: dict[str, Any], threads: int | None, index: int) -> None:
    """A reference process, the backend alone: sends ``"ready"`` once loaded, then per ``(t0,
    t1, cell)`` received (until None) loops ``Backend.score`` over the cell's batches until
    ``t1`` and sends the figures of those started from ``t0``: tweets, their rate, CPU seconds
    (all threads), real and padded tokens."""
    import numpy as np
    from transformers.utils import logging as hf_logging

    from tweetcls.core.bundle import load_bundle
    from tweetcls.inference.backends import load_backend
    from tweetcls.inference.base import token_chunks

    hf_logging.disable_progress_bar()
    engine = load_backend(load_bundle(Path(spec["model"])), spec["backend"], threads)
    texts = [t["text"] for t in spec["tweets"]]
    keywords = [t["keyword"] for t in spec["tweets"]]
    tokens = engine.count_tokens(texts, keywords)
    for i in range(min(5, len(texts))):
        engine.predict_proba(texts[i : i + 1], keywords[i : i + 1])
    conn.send("ready")
    while (message := conn.recv()) is not None:
        t0, t1, cell = message
        batch, by_length, budget = spec["cells"][cell]
        batches = make_batches(tokens, batch, by_length, seed=1000 * index)
        inputs = [([texts[i] for i in b], [keywords[i] for i in b]) for b in batches]
        real, padded = [sum(tokens[i] for i in b) for b in batches], []
        for b in batches:
            lengths = np.sort([tokens[i] for i in b])
            chunks = token_chunks(lengths, budget) if budget > 0 else [slice(None)]
            padded.append(sum(len(lengths[c]) * int(lengths[c][-1]) for c in chunks))
        done = real_tokens = padded_tokens = n = 0
        first = last = cpu_first = cpu_last = 0.0
        while (begin := time.monotonic()) < t1:
            k, cpu = n % len(batches), time.process_time()
            engine.score(*inputs[k], max_batch_tokens=budget)
            n += 1
            if begin >= t0:
                if not done:
                    first, cpu_first = begin, cpu
                last, cpu_last = time.monotonic(), time.process_time()
                done += len(batches[k])
                real_tokens += real[k]
                padded_tokens += padded[k]
        span = last - first
        conn.send(
            {"tweets": done, "tweets_per_s": done / span if span > 0 else 0.0,
             "cpu_s": cpu_last - cpu_first, "real_tokens": real_tokens,
             "padded_tokens": padded_tokens}
        )  # fmt: skip


def build_app(max_chars: int | None = None, max_items: int | None = None) -> Any:
    """The minimal FastAPI app of ``--baseline`` (served by ``uvicorn --factory``): the
    service's request model with its limits (default: the service's), a constant answer."""
    from fastapi import Body, FastAPI
    from fastapi.responses import JSONResponse

    from tweetcls.core.labels import LABEL_NAMES
    from tweetcls.serving.schemas import build_request_model
    from tweetcls.serving.settings import ServeSettings

    fields = ServeSettings.model_fields
    limits = max_chars or fields["max_chars"].default, max_items or fields["max_items"].default
    tweet_model, _, body_type = build_request_model(*limits)
    answer = {"label": 0, "label_name": LABEL_NAMES[0], "probability": 0.125}
    answer |= {"model_version": "baseline", "prediction_id": "00000000-0000-4000-8000-" + "0" * 12}
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/ready")
    async def ready() -> Any:
        return JSONResponse({"status": "ready"})

    @app.post("/predict")
    async def predict(body: Annotated[body_type, Body()]) -> Any:
        if isinstance(body, tweet_model):
            return JSONResponse(answer)
        return JSONResponse({"predictions": [answer] * len(body.items)})

    return app


if __name__ == "__main__":
    if sys.argv[1:] != ["load"]:
        sys.exit("usage: _serve_workers.py load")
    load()
