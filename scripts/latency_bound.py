"""The open-loop latency no server can beat with this backend on this CPU.

A server that answers Poisson arrivals with this backend, costs nothing but the model and
batches greedily (when free it takes every waiting tweet, up to ``--max_batch_size``: the
service's batcher without its 2 ms wait) is simulated on the backend's measured cost per batch
size (its mean: no jitter, so the figures are a floor). For each cap: the ideal capacity (the best
``b / cost(b)`` for ``b`` up to the cap), the p50 and p99 at ``--loads`` of it and at ``--rates``
(req/s, e.g. the service's measured 80%), and how much faster the model would have to be for the
p99 at ``--target_load`` to meet ``--target_ms`` (time scales with the costs, so that is their
ratio). The costs are measured in this process with ``--threads`` threads, in rounds of one
batch per size, each drawn at random from the validation tweets and run as the service runs
them (sorted and chunked under ``--max_batch_tokens``)::

    python scripts/latency_bound.py --model runs/pipeline/serving --max_batch_size 1 2 4 32 \\
        --rates 140.5 --json reports/serving/latency_bound.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jsonargparse.typing import PositiveFloat, PositiveInt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import host_info, log, print_table


def batch_costs(
    engine: Any, frame: pd.DataFrame, sizes: list[int], reps: int, max_batch_tokens: int
) -> dict[int, float]:
    """Mean seconds of ``engine.score`` on seeded random batches of each of ``sizes`` tweets of
    ``frame``: ``reps`` rounds of one batch per size (a machine whose speed drifts affects all
    sizes alike, so the costs' shape holds)."""
    from tweetcls.inference.base import frame_inputs

    texts, keywords = frame_inputs(frame)
    rng = np.random.default_rng(0)
    for i in range(min(10, len(texts))):  # warm-up
        engine.score(texts[i : i + 1], keywords[i : i + 1])
    seconds: dict[int, list[float]] = {size: [] for size in sizes}
    for _ in range(reps):
        for size in sizes:
            batch = rng.choice(len(texts), size, replace=False)
            inputs = [texts[i] for i in batch], [keywords[i] for i in batch]
            start = time.perf_counter()
            engine.score(*inputs, max_batch_tokens=max_batch_tokens)
            seconds[size].append(time.perf_counter() - start)
    costs = {size: float(np.mean(times)) for size, times in seconds.items()}
    log(" ".join(f"{size}: {cost * 1000:.2f} ms" for size, cost in costs.items()))
    return costs


def simulate(arrivals: np.ndarray, cost: np.ndarray, cap: int) -> np.ndarray:
    """Seconds from each arrival to its answer at a greedy batching server: when free it takes
    every tweet already waiting, at most ``cap``, and is busy ``cost[b]`` for a batch of ``b``."""
    done, free, i = np.empty(arrivals.size), 0.0, 0
    while i < arrivals.size:
        start = max(free, arrivals[i])
        j = min(int(np.searchsorted(arrivals, start, side="right")), i + cap)
        free = done[i:j] = start + cost[j - i]
        i = j
    return done - arrivals


def percentiles_ms(rate: float, cost: np.ndarray, cap: int, seconds: float, seed: int) -> dict:
    """p50 and p99 (ms) of :func:`simulate` over ``seconds`` of seeded Poisson arrivals."""
    arrivals = np.cumsum(np.random.default_rng(seed).exponential(1 / rate, int(rate * seconds)))
    p50, p99 = np.percentile(simulate(arrivals, cost, cap), [50, 99]) * 1000
    return {"rate": rate, "p50_ms": float(p50), "p99_ms": float(p99)}


def main(argv: list[str] | None = None) -> dict:
    """Measure the costs, simulate each cap, print the table, write ``--json``; return it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--model", required=True, help="serving bundle directory")
    add("--backend", default="onnx-int8")
    add("--threads", type=PositiveInt, default=None, help="intra-op threads (default: all)")
    add("--data", default="data/processed/val.csv", help="tweets (text, keyword columns)")
    add("--max_batch_size", type=PositiveInt, nargs="+", default=[1, 2, 4, 32])
    add("--max_batch_tokens", type=int, default=512, help="as the service's (0: one run)")
    add("--reps", type=PositiveInt, default=100, help="rounds of one batch per size")
    add("--loads", type=PositiveFloat, nargs="+", default=[0.5, 0.8], help="shares of capacity")
    add("--rates", type=PositiveFloat, nargs="*", default=[], help="also at these req/s")
    add("--target_load", type=PositiveFloat, default=0.8)
    add("--target_ms", type=PositiveFloat, default=50.0)
    add("--seconds", type=PositiveFloat, default=600.0, help="simulated seconds per rate")
    add("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from tweetcls.core.atomic import write_text
    from tweetcls.core.bundle import load_bundle
    from tweetcls.core.errors import TweetclsError
    from tweetcls.inference.backends import load_backend

    try:
        engine = load_backend(load_bundle(args.model), args.backend, args.threads)
        frame = pd.read_csv(args.data, keep_default_na=False)
    except (TweetclsError, OSError) as err:
        parser.error(str(err))
    sizes = list(range(1, max(args.max_batch_size) + 1))
    costs = batch_costs(engine, frame, sizes, args.reps, args.max_batch_tokens)
    cost = np.array([0.0, *costs.values()])
    rows = []
    for cap in args.max_batch_size:
        capacity = max(b / cost[b] for b in range(1, cap + 1))
        row = {"max_batch_size": cap, "capacity": capacity, "at": []}
        for load in sorted({*args.loads, args.target_load}):
            at = percentiles_ms(load * capacity, cost, cap, args.seconds, seed=cap)
            row["at"].append({"load": load, **at})
            if load == args.target_load:
                row["speedup_needed"] = at["p99_ms"] / args.target_ms
        row["at"] += [percentiles_ms(r, cost, cap, args.seconds, seed=cap) for r in args.rates]
        rows.append(row)
    print_table([r | a for r in rows for a in r["at"]],
                "max_batch_size:d capacity:.1f load:.2f rate:.1f p50_ms:.1f p99_ms:.1f "
                "speedup_needed:.2f")  # fmt: skip
    report = {
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": host_info(("onnxruntime", "tokenizers")),
        "batch_ms": {size: seconds * 1000 for size, seconds in costs.items()},
        "bounds": rows,
    }
    if args.json:
        write_text(args.json, json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
