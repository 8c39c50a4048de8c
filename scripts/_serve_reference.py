"""Reference throughput of ``bench_serve.py``: the backend's own best tweets/s, no HTTP.

Per backend, ``predict_proba`` (tokenization included, as in the service) runs in a loop over
batches of distinct real tweets, in two layouts on the same cores as the server:

* one process with the runtime's default threads (all cores), and
* N single-thread processes at once, N = the CPUs the server may use (its pinning, else
  ``os.sched_getaffinity``); their rates are summed.

All 1 + N processes load the backend at the same time (a waiting one takes no CPU).

Cells: length-sorted batches of each ``--reference_batches`` size (the pool sorted by token
count and cut into consecutive full batches) and shuffled batches of each
``--reference_unsorted`` size (random lengths: the padding cost). Each process visits its
batches in a seeded random order (a different one per process), so any stretch of the run is
a fair sample of the pool's lengths. The processes of a layout run every cell in step: the
parent sends each cell a common start time ``t0`` and end ``t1`` (``time.monotonic``,
system-wide on Linux); batches run untimed until ``t0`` (``--reference_warmup``), and those
started in ``[t0, t1)`` are timed (``--reference_duration``). A process's rate is its timed
tweets over the span from its first timed batch's start to its last one's end. The
reference of a backend is its best cell.

A worker is ``python scripts/_serve_reference.py``: a JSON spec on its first stdin line, then
``go t0 t1 cell`` lines; it answers ``ready`` once loaded and one JSON line per cell.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _serve_report import ReferenceResult

SCRIPT = Path(__file__).resolve()


def cells(sorted_sizes: Sequence[int], unsorted_sizes: Sequence[int]) -> list[tuple[int, bool]]:
    """``(batch, sorted)`` of every cell, sorted ones first."""
    return [(b, True) for b in sorted_sizes] + [(b, False) for b in unsorted_sizes]


def make_batches(tokens: Sequence[int], batch: int, by_length: bool, seed: int) -> list[list[int]]:
    """Index batches of ``batch`` tweets: cut from the pool sorted by ``tokens`` (or shuffled
    with ``seed``), full batches only, in an order shuffled with ``seed``."""
    order = list(range(len(tokens)))
    rng = random.Random(seed)
    if by_length:
        order.sort(key=lambda i: tokens[i])
    else:
        rng.shuffle(order)
    size = min(batch, len(order))
    batches = [order[i : i + size] for i in range(0, len(order) - size + 1, size)]
    rng.shuffle(batches)
    return batches


def worker_main() -> None:
    """One reference process (see the module docstring)."""
    spec = json.loads(sys.stdin.readline())
    from transformers.utils import logging as hf_logging

    from tweetcls.core.bundle import load_bundle
    from tweetcls.inference.backends import load_backend

    hf_logging.disable_progress_bar()
    engine = load_backend(load_bundle(Path(spec["model"])), spec["backend"], spec["threads"])
    texts = [t["text"] for t in spec["tweets"]]
    keywords = [t["keyword"] for t in spec["tweets"]]
    tokens: list[int] = []
    for start in range(0, len(texts), 256):
        tokens += engine.count_tokens(texts[start : start + 256], keywords[start : start + 256])
    for i in range(min(5, len(texts))):
        engine.predict_proba(texts[i : i + 1], keywords[i : i + 1])
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "quit":
            break
        _, t0, t1, cell = line.split()
        batch, by_length = spec["cells"][int(cell)]
        batches = make_batches(tokens, batch, by_length, spec["seed"] + 1000 * spec["index"])
        batch_texts = [[texts[i] for i in b] for b in batches]
        batch_keywords = [[keywords[i] for i in b] for b in batches]
        real = [sum(tokens[i] for i in b) for b in batches]
        padded = [len(b) * max(tokens[i] for i in b) for b in batches]
        timed = {"tweets": 0, "real": 0, "padded": 0, "first": None, "last": None}
        n = 0
        while (begin := time.monotonic()) < float(t1):
            k = n % len(batches)
            engine.predict_proba(batch_texts[k], batch_keywords[k])
            n += 1
            if begin >= float(t0):
                timed["first"] = timed["first"] or begin
                timed["last"] = time.monotonic()
                timed["tweets"] += len(batches[k])
                timed["real"] += real[k]
                timed["padded"] += padded[k]
        span = (timed["last"] - timed["first"]) if timed["first"] else 0.0
        result = {
            "tweets": timed["tweets"],
            "seconds": span,
            "tweets_per_s": timed["tweets"] / span if span > 0 else 0.0,
            "real_tokens": timed["real"],
            "padded_tokens": timed["padded"],
        }
        print(json.dumps(result), flush=True)


def _read_line(proc: subprocess.Popen, log: Path, what: str) -> str:
    line = proc.stdout.readline() if proc.stdout else ""
    if not line:
        proc.wait(timeout=30)
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"reference worker exited ({proc.returncode}) {what}:\n{tail}")
    return line


def _send(proc: subprocess.Popen, line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def _stop(procs: Sequence[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.stdin is not None and not proc.stdin.closed:
            try:
                proc.stdin.write("quit\n")
                proc.stdin.close()
            except BrokenPipeError:
                pass
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def measure(
    model: Path,
    backend: str,
    tweets: Sequence[dict[str, Any]],
    processes: int,
    cell_list: Sequence[tuple[int, bool]],
    warmup: float,
    duration: float,
    log_dir: Path,
    seed: int = 0,
    startup_timeout: float = 300.0,
) -> list[ReferenceResult]:
    """Every cell in one all-threads process, then in ``processes`` single-thread ones at once.

    All ``1 + processes`` workers load at the same time (a waiting worker takes no CPU).
    """
    layouts = [(None, 0)] + [(1, i) for i in range(processes)]
    procs: list[subprocess.Popen] = []
    logs = [log_dir / f"reference-{backend}-{t or 'auto'}-{i}.log" for t, i in layouts]
    try:
        for (threads, index), log in zip(layouts, logs, strict=True):
            with log.open("wb") as err:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, str(SCRIPT)],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=err,
                        text=True,
                    )
                )
            spec = {"model": str(model), "backend": backend, "threads": threads}
            spec |= {"tweets": list(tweets), "cells": list(cell_list), "seed": seed}
            _send(procs[-1], json.dumps(spec | {"index": index}))
        deadline = time.monotonic() + startup_timeout
        for proc, log in zip(procs, logs, strict=True):
            if _read_line(proc, log, "while loading").strip() != "ready":
                raise RuntimeError(f"reference worker: unexpected answer, see {log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"reference workers not ready after {startup_timeout:.0f} s")
        results = []
        for group, threads in ((slice(0, 1), None), (slice(1, None), 1)):
            for number, (batch, by_length) in enumerate(cell_list):
                t0 = time.monotonic() + 0.05 + warmup
                for proc in procs[group]:
                    _send(proc, f"go {t0} {t0 + duration} {number}")
                rows = [
                    json.loads(_read_line(proc, log, f"in cell {number}"))
                    for proc, log in zip(procs[group], logs[group], strict=True)
                ]
                real = sum(r["real_tokens"] for r in rows)
                results.append(
                    ReferenceResult(
                        backend=backend,
                        processes=len(rows),
                        threads=threads,
                        batch=batch,
                        sorted=by_length,
                        tweets=sum(r["tweets"] for r in rows),
                        tweets_per_s=sum(r["tweets_per_s"] for r in rows),
                        padding=sum(r["padded_tokens"] for r in rows) / real if real else 0.0,
                        process_tweets_per_s=[r["tweets_per_s"] for r in rows],
                    )
                )
        return results
    finally:
        _stop(procs)


def best(results: Sequence[ReferenceResult]) -> dict[str, dict[str, Any]]:
    """Per backend, its best cell: ``tweets_per_s`` and where it came from."""
    top: dict[str, ReferenceResult] = {}
    for row in results:
        if row.backend not in top or row.tweets_per_s > top[row.backend].tweets_per_s:
            top[row.backend] = row
    return {
        backend: {
            "tweets_per_s": row.tweets_per_s,
            "processes": row.processes,
            "threads": row.threads,
            "batch": row.batch,
            "sorted": row.sorted,
        }
        for backend, row in top.items()
    }


if __name__ == "__main__":
    worker_main()
