"""Reference throughput of ``bench_serve.py``: the backend alone, no HTTP.

``Backend.score`` (tokenization included, as in the service) runs in a loop over batches of
distinct real tweets, on the server's cores, in groups of processes run at once (rates
summed). **Ideal** (:func:`ideal_cells`): one process with the runtime's default threads,
then one single-thread process per CPU the server may use; length-sorted batches of each
``--reference_batches`` size (the pool sorted by token count, cut into full batches) and
random ones of each ``--reference_unsorted`` size (the padding cost). **Matched**
(:func:`matched_cell`): what the service saw at one client count: one process per worker
with its threads, random batches of its mean micro-batch size (sizes ``floor`` and ``ceil``
of it mixed to that mean), scored under its ``max_batch_tokens``.

Each process visits its batches in a seeded random order of its own, so any stretch is a fair
sample of the lengths. A group runs each cell in step: the parent sends a common start ``t0``
and end ``t1`` (``time.monotonic``, system-wide on Linux); batches run untimed until ``t0``,
those started in ``[t0, t1)`` are timed. A process's rate is its timed tweets over the span
from its first timed batch's start to its last one's end; its CPU time over that span
(``time.process_time``: all its threads) gives the CPU seconds per tweet.

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


def ideal_cells(sorted_sizes: Sequence[int], unsorted_sizes: Sequence[int]) -> list[list]:
    """``[batch, sorted, max_batch_tokens]`` of every ideal cell, sorted ones first."""
    return [[b, True, 0] for b in sorted_sizes] + [[b, False, 0] for b in unsorted_sizes]


def matched_cell(mean_batch: float, max_batch_tokens: int) -> list:
    """The cell of a service that formed micro-batches of ``mean_batch`` tweets on average."""
    return [mean_batch, False, max_batch_tokens]


def make_batches(
    tokens: Sequence[int], batch: float, by_length: bool, seed: int
) -> list[list[int]]:
    """Index batches of ``batch`` tweets: cut from the pool sorted by ``tokens`` (or shuffled
    with ``seed``), full batches only, in an order shuffled with ``seed``. A fractional
    ``batch`` (unsorted only) mixes sizes ``floor`` and ``ceil`` of it to that mean."""
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


def worker_main() -> None:
    """One reference process (see the module docstring)."""
    spec = json.loads(sys.stdin.readline())
    import numpy as np
    from transformers.utils import logging as hf_logging

    from tweetcls.core.bundle import load_bundle
    from tweetcls.inference.backends import load_backend
    from tweetcls.inference.base import token_chunks

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
        batch, by_length, budget = spec["cells"][int(cell)]
        batches = make_batches(tokens, batch, by_length, spec["seed"] + 1000 * spec["index"])
        batch_texts = [[texts[i] for i in b] for b in batches]
        batch_keywords = [[keywords[i] for i in b] for b in batches]
        real = [sum(tokens[i] for i in b) for b in batches]
        padded = []
        for b in batches:
            lengths = np.sort([tokens[i] for i in b])
            chunks = token_chunks(lengths, budget) if budget > 0 else [slice(None)]
            padded.append(sum(len(lengths[c]) * int(lengths[c][-1]) for c in chunks))
        timed = dict.fromkeys(("tweets", "real", "padded", "first", "last", "cpu0", "cpu1"), 0.0)
        n = 0
        while (begin := time.monotonic()) < float(t1):
            k, cpu = n % len(batches), time.process_time()
            engine.score(batch_texts[k], batch_keywords[k], max_batch_tokens=budget)
            n += 1
            if begin >= float(t0):
                if not timed["first"]:
                    timed["first"], timed["cpu0"] = begin, cpu
                timed["last"], timed["cpu1"] = time.monotonic(), time.process_time()
                timed["tweets"] += len(batches[k])
                timed["real"] += real[k]
                timed["padded"] += padded[k]
        span = timed["last"] - timed["first"]
        result = {
            "tweets": int(timed["tweets"]),
            "tweets_per_s": timed["tweets"] / span if span > 0 else 0.0,
            "cpu_s": timed["cpu1"] - timed["cpu0"],
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
    groups: Sequence[tuple[int, int | None]],
    cell_list: Sequence[list],
    warmup: float,
    duration: float,
    log_dir: Path,
    seed: int = 0,
    startup_timeout: float = 300.0,
    clients: Sequence[int | None] = (),
) -> list[ReferenceResult]:
    """Every cell in each group of ``(processes, threads)``, one group after the other; the
    rows of matched cells carry the client count of ``clients`` (one per cell).

    All workers of all groups load at the same time (a waiting worker takes no CPU).
    """
    layouts = [(threads, g, i) for g, (n, threads) in enumerate(groups) for i in range(n)]
    procs: list[subprocess.Popen] = []
    logs = [log_dir / f"reference-{backend}-{g}-{t or 'auto'}-{i}.log" for t, g, i in layouts]
    try:
        for (threads, _, index), log in zip(layouts, logs, strict=True):
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
        for g, (_, threads) in enumerate(groups):
            group = [k for k, layout in enumerate(layouts) if layout[1] == g]
            for number, (batch, by_length, budget) in enumerate(cell_list):
                t0 = time.monotonic() + 0.05 + warmup
                for k in group:
                    _send(procs[k], f"go {t0} {t0 + duration} {number}")
                rows = [
                    json.loads(_read_line(procs[k], logs[k], f"in cell {number}")) for k in group
                ]
                real, done = sum(r["real_tokens"] for r in rows), sum(r["tweets"] for r in rows)
                results.append(
                    ReferenceResult(
                        backend=backend,
                        processes=len(rows),
                        threads=threads,
                        batch=batch,
                        sorted=by_length,
                        tweets=done,
                        tweets_per_s=sum(r["tweets_per_s"] for r in rows),
                        padding=sum(r["padded_tokens"] for r in rows) / real if real else 0.0,
                        process_tweets_per_s=[r["tweets_per_s"] for r in rows],
                        max_batch_tokens=budget,
                        cpu_s_per_tweet=sum(r["cpu_s"] for r in rows) / done if done else None,
                        clients=clients[number] if clients else None,
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
