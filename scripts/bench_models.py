"""Inference cost of several serving bundles side by side (e.g. MiniLM, MPNet, a student).

Each bundle's backend (``onnx-int8`` by default) labels the same tweets in the same run:
batch-1 latency in interleaved rounds (the bundles' order rotated each round, so a machine
whose speed drifts treats them alike), throughput at length-sorted batches of 32, and the
latency of one word-attribution explanation (``inference.explain``: the tweet and one variant
per word in one batch) on the first ``--reps`` tweets. Prints a
Markdown table with each bundle's ratio to the first, and writes JSON::

    python scripts/bench_models.py --bundle minilm=runs/pipeline/serving \\
        --bundle mpnet=runs/mpnet/serving --json reports/bench_models.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import host_info


def bundle_size_mb(path: Path, kind: str) -> float:
    from tweetcls.core.bundle import BACKEND_FILES

    return round((path / BACKEND_FILES[kind]).stat().st_size / 1e6, 1)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", action="append", required=True, help="NAME=DIR, repeated")
    parser.add_argument("--backend", default="onnx-int8", help="backend of every bundle")
    parser.add_argument("--data", default="data/processed/val.csv", help="tweets to label")
    parser.add_argument("--reps", type=int, default=200, help="batch-1 calls per bundle")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--batch", type=int, default=32, help="batch size for throughput")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads")
    parser.add_argument("--json", default="reports/bench_models.json", help="output JSON")
    args = parser.parse_args(argv)

    from tweetcls.core.bundle import load_bundle
    from tweetcls.inference.backends import load_backend
    from tweetcls.inference.base import frame_inputs

    texts, keywords = frame_inputs(pd.read_csv(args.data, keep_default_na=False))
    names, engines, sizes = [], {}, {}
    for spec in args.bundle:
        name, _, path = spec.partition("=")
        bundle = load_bundle(path)
        names.append(name)
        engines[name] = load_backend(bundle, args.backend, args.threads)
        sizes[name] = bundle_size_mb(bundle.path, args.backend)
    for engine in engines.values():  # warm-up
        for i in range(10):
            engine.predict_proba([texts[i]], [keywords[i]])
    per_round = -(-args.reps // args.rounds)
    latency: dict[str, list[list[float]]] = {name: [] for name in names}
    for r in range(args.rounds):
        rows = [(r * per_round + i) % len(texts) for i in range(per_round)]
        for name in [*names[r % len(names) :], *names[: r % len(names)]]:
            times = []
            for i in rows:
                start = time.perf_counter()
                engines[name].predict_proba([texts[i]], [keywords[i]])
                times.append((time.perf_counter() - start) * 1000)
            latency[name].append(times)
    order = np.argsort([len(t) for t in texts])
    throughput = {}
    for name in names:
        start = time.perf_counter()
        for begin in range(0, len(order), args.batch):
            rows = order[begin : begin + args.batch]
            engines[name].predict_proba([texts[i] for i in rows], [keywords[i] for i in rows])
        throughput[name] = len(order) / (time.perf_counter() - start)
    from tweetcls.inference.explain import explain

    explained: dict[str, list[float]] = {}
    for name in names:
        explained[name] = []
        for i in range(min(args.reps, len(texts))):
            start = time.perf_counter()
            explain(engines[name].predict_proba, texts[i], keywords[i])
            explained[name].append((time.perf_counter() - start) * 1000)
    first = names[0]
    first_median = statistics.median([t for times in latency[first] for t in times])
    results = {
        "settings": vars(args),
        "machine": host_info(["tweetcls", "onnxruntime", "torch", "tokenizers"]),
        "bundles": {},
    }
    lines = [
        f"| bundle ({args.backend}) | batch-1 median ms | x {first} (per-round range) "
        f"| tweets/s at sorted batch {args.batch} | explanation median ms (p95) | size MB |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in names:
        pooled = [t for times in latency[name] for t in times]
        rounds = [statistics.median(t) for t in latency[name]]
        first_rounds = [statistics.median(t) for t in latency[first]]
        ratios = [m / f for m, f in zip(rounds, first_rounds, strict=True)]
        results["bundles"][name] = {
            "median_ms": round(statistics.median(pooled), 3),
            "round_medians_ms": [round(m, 3) for m in rounds],
            "ratio_to_first": round(statistics.median(pooled) / first_median, 3),
            "ratio_rounds": [round(x, 3) for x in ratios],
            "tweets_per_s_batched": round(throughput[name], 1),
            "explain_median_ms": round(statistics.median(explained[name]), 3),
            "explain_p95_ms": round(float(np.percentile(explained[name], 95)), 3),
            "size_mb": sizes[name],
        }
        row = results["bundles"][name]
        lines.append(
            f"| {name} | {row['median_ms']:.2f} | {row['ratio_to_first']:.2f} "
            f"({min(ratios):.2f}-{max(ratios):.2f}) | {row['tweets_per_s_batched']:.0f} "
            f"| {row['explain_median_ms']:.1f} ({row['explain_p95_ms']:.1f}) | {row['size_mb']} |"
        )
    machine = results["machine"]
    print(f"CPU: {machine['cpu_model']} ({' '.join(machine['cpu_flags'])})")
    print("\n".join(lines))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
