"""Does int8 hold on this CPU? A bundle's fp32 ONNX model and int8 variants of it, side by side.

Each variant (``export.quantize.quantize`` with one setting changed from the shipped one;
``exact``: the shipped model as a VNNI CPU computes it, ``quantize.exact_integers``) is scored
against fp32: F1, label agreement, largest probability difference, batch-1 latency (every model
in each of ``--rounds`` rounds, their order rotated). The SIMD features recorded are those CPUID
shows the process, an emulated CPU's under qemu (which has no VNNI)::

    python scripts/int8_parity.py --bundle runs/pipeline/serving --json reports/int8/native.json
    qemu-x86_64 -cpu Haswell-noTSX .venv/bin/python scripts/int8_parity.py \\
        --bundle runs/pipeline/serving --limit 200 --json reports/int8/avx2.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import batch1_latency, host_info

#: int8 variants: the bundle's own int8 model, then its settings with one thing changed (the
#: weights' type or range, per-channel scales, the fp32 down-projections).
VARIANTS = {
    "shipped": None,
    "full_range": {"reduce_range": False},  # 8-bit weights: saturate on CPUs without VNNI
    "uint8_weights": {"weight_type": "QUInt8", "reduce_range": False},
    "per_tensor": {"per_channel": False},
    "all_matmuls": {"fp32_matmuls_fed_by": []},
    "exact": None,  # the shipped model as a VNNI CPU computes it (quantize.exact_integers)
}


def main(argv: list[str] | None = None) -> dict:
    """Score fp32 and each of ``--variants``, print the table, write ``--json``; return it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", required=True, help="serving bundle directory")
    parser.add_argument("--data", default="data/processed/val.csv", help="labelled tweets")
    parser.add_argument("--limit", type=int, default=0, help="score the first N tweets (0: all)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--reps", type=int, default=50, help="batch-1 calls per model")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of those calls")
    parser.add_argument("--json", required=True, help="output JSON")
    args = parser.parse_args(argv)

    import onnxruntime as ort
    from sklearn.metrics import f1_score

    from tweetcls.core.atomic import write_text
    from tweetcls.core.bundle import load_bundle
    from tweetcls.export.quantize import QUANTIZATION, exact_integers, quantize
    from tweetcls.inference.backends import load_backend
    from tweetcls.inference.base import frame_inputs, predict_frame

    frame = pd.read_csv(args.data, keep_default_na=False)
    frame = frame.head(args.limit) if args.limit else frame
    texts, keywords = frame_inputs(frame)
    bundle = load_bundle(args.bundle)
    engines = {"fp32": load_backend(bundle, "onnx", threads=1)}
    options = engines["fp32"].session.get_session_options()
    fp32_path = bundle.backend_file("onnx")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.variants:
            path = bundle.backend_file("onnx-int8")
            if name == "exact":
                path = exact_integers(path, Path(tmp) / "exact.onnx")
            elif VARIANTS[name] is not None:
                path = Path(tmp) / f"{name}.onnx"
                quantize(fp32_path, path, {**QUANTIZATION, **VARIANTS[name]})
            engines[name] = copy.copy(engines["fp32"])  # its tokenizer, another model
            engines[name].session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
    probs = {name: predict_frame(engine, frame) for name, engine in engines.items()}
    reps = min(args.reps, len(texts))
    latency = batch1_latency(engines, texts, keywords, reps, rounds=min(args.rounds, reps))
    labels = frame["target"].to_numpy()
    reference = probs["fp32"]
    rows = {}
    for name in engines:
        predicted = probs[name] >= bundle.threshold
        rows[name] = {
            "f1": round(float(f1_score(labels, predicted)), 4),
            "agreement": round(float(np.mean(predicted == (reference >= bundle.threshold))), 4),
            # three significant digits: a weak model's calibrated probabilities sit close together
            "max_abs_prob_diff": float(f"{np.max(np.abs(probs[name] - reference)):.3g}"),
            "batch1_median_ms": round(latency[name]["median_ms"], 3),
            "batch1_round_medians_ms": [round(t, 3) for t in latency[name]["round_medians_ms"]],
        }
    report = {"bundle": args.bundle, "tweets": len(frame)}
    report |= {"simd_features": host_info()["simd_features"], "onnxruntime": ort.__version__}
    report["variants"] = rows
    print(f"CPU features seen: {' '.join(report['simd_features'])}; {len(frame)} tweets")
    table = pd.DataFrame.from_dict(rows, orient="index")
    print(table.drop(columns="batch1_round_medians_ms").to_string())
    write_text(args.json, json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
