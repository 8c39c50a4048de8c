"""Inference cost of several serving bundles side by side (e.g. MiniLM, MPNet, a student).

Per bundle, with one ``--backend``: batch-1 latency in ``--rounds`` interleaved rounds, then,
one bundle after another, throughput in length-sorted batches of ``--batch`` and the latency of
one word-attribution explanation (``inference.explain``) of each of the first ``--reps`` tweets::

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
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import batch1_latency, host_info


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Measure every ``--bundle``, print the table, write ``--json``; return what it holds."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", action="append", required=True, help="NAME=DIR, repeated")
    parser.add_argument("--backend", default="onnx-int8", help="backend of every bundle")
    parser.add_argument("--data", default="data/processed/val.csv", help="tweets to label")
    parser.add_argument("--reps", type=int, default=200, help="batch-1 calls per bundle")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--batch", type=int, default=32, help="batch size for throughput")
    parser.add_argument("--json", default="reports/bench_models.json", help="output JSON")
    args = parser.parse_args(argv)

    from tweetcls.core.atomic import write_text
    from tweetcls.core.bundle import BACKEND_FILES, load_bundle
    from tweetcls.inference.backends import load_backend
    from tweetcls.inference.base import frame_inputs, predict_frame
    from tweetcls.inference.explain import explain

    frame = pd.read_csv(args.data, keep_default_na=False)
    texts, keywords = frame_inputs(frame)
    engines, sizes = {}, {}
    for spec in args.bundle:
        name, _, path = spec.partition("=")
        bundle = load_bundle(path)
        engines[name] = load_backend(bundle, args.backend)
        sizes[name] = round((bundle.path / BACKEND_FILES[args.backend]).stat().st_size / 1e6, 1)
    latency = batch1_latency(engines, texts, keywords, args.reps, args.rounds)
    throughput, explained = {}, {}
    for name, engine in engines.items():
        start = time.perf_counter()
        predict_frame(engine, frame, args.batch)  # length-sorted batches
        throughput[name] = len(texts) / (time.perf_counter() - start)
    for name, engine in engines.items():
        explained[name] = []
        for i in range(min(args.reps, len(texts))):
            start = time.perf_counter()
            explain(engine.predict_proba, texts[i], keywords[i])
            explained[name].append((time.perf_counter() - start) * 1000)

    first = latency[next(iter(engines))]
    bundles = {}
    for name in engines:
        median, rounds = latency[name]["median_ms"], latency[name]["round_medians_ms"]
        ratios = [m / f for m, f in zip(rounds, first["round_medians_ms"], strict=True)]
        bundles[name] = {
            "median_ms": round(median, 3),
            "round_medians_ms": [round(m, 3) for m in rounds],
            "ratio_to_first": round(median / first["median_ms"], 3),
            "ratio_rounds": [round(r, 3) for r in ratios],
            "tweets_per_s_batched": round(throughput[name], 1),
            "explain_median_ms": round(statistics.median(explained[name]), 3),
            "explain_p95_ms": round(float(np.percentile(explained[name], 95)), 3),
            "size_mb": sizes[name],
        }
    machine = host_info(["tweetcls", "onnxruntime", "torch", "tokenizers"])
    results = {"settings": vars(args), "machine": machine, "bundles": bundles}
    print(
        f"CPU: {machine['cpu_model']} ({' '.join(machine['cpu_flags'])}); backend {args.backend}; "
        f"ratios to {next(iter(engines))}; tweets/s at length-sorted batches of {args.batch}"
    )
    table = pd.DataFrame.from_dict(bundles, orient="index").drop(columns="round_medians_ms")
    print(table.to_string())
    write_text(args.json, json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
