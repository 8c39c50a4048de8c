"""Batch-1 model latency of ``bench_serve.py``: ``predict_proba`` on one tweet at a time."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from _serve_report import LatencyResult

from tweetcls.serving.tweets import Tweet


def model_latency(
    model: Path,
    backends: Sequence[str],
    tweets: Sequence[Tweet],
    reps: int,
    rounds: int,
    threads: int | None,
    warmup: int = 10,
) -> list[LatencyResult]:
    """Time ``predict_proba`` on one tweet at a time: ``reps`` calls per backend, interleaved.

    All backends are loaded at once and timed in ``rounds`` rounds; each round times every
    backend on the same tweets, in an order rotated from round to round, so a machine whose
    speed drifts affects all alike; the per-round ratios show the spread.
    """
    import numpy as np
    from transformers.utils import logging as hf_logging

    from tweetcls.core.bundle import load_bundle
    from tweetcls.inference.backends import load_backend

    hf_logging.disable_progress_bar()  # the weight-loading bar of the pytorch backend
    bundle = load_bundle(model)
    engines = {backend: load_backend(bundle, backend, threads) for backend in backends}
    for engine in engines.values():
        for tweet in tweets[:warmup]:
            engine.predict_proba([str(tweet["text"])], [tweet["keyword"]])
    times: dict[str, list[list[float]]] = {backend: [] for backend in backends}
    per_round = -(-reps // rounds)
    for r in range(rounds):
        batch = [tweets[(r * per_round + i) % len(tweets)] for i in range(per_round)]
        for backend in [*backends[r % len(backends) :], *backends[: r % len(backends)]]:
            engine, round_times = engines[backend], []
            for tweet in batch:
                start = time.perf_counter()
                engine.predict_proba([str(tweet["text"])], [tweet["keyword"]])
                round_times.append((time.perf_counter() - start) * 1000)
            times[backend].append(round_times)
    del engines
    gc.collect()
    results = []
    for backend in backends:
        pooled = [t for round_times in times[backend] for t in round_times]
        results.append(
            LatencyResult(
                backend=backend,
                reps=len(pooled),
                median_ms=statistics.median(pooled),
                p90_ms=float(np.percentile(pooled, 90)),
                round_medians_ms=[statistics.median(t) for t in times[backend]],
            )
        )
    return results


def int8_speedup(latency: Sequence[LatencyResult]) -> tuple[float | None, list[float]]:
    """PyTorch's batch-1 median over int8's, overall and per round (None, [] without both)."""
    by_backend = {r.backend: r for r in latency}
    if "onnx-int8" not in by_backend or "pytorch" not in by_backend:
        return None, []
    int8, eager = by_backend["onnx-int8"], by_backend["pytorch"]
    rounds = zip(eager.round_medians_ms, int8.round_medians_ms, strict=True)
    return eager.median_ms / int8.median_ms, [e / i for e, i in rounds]
