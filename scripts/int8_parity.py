"""Does int8 hold on this CPU? A bundle's fp32 ONNX model and int8 variants of it, side by side.

ONNX Runtime's 8-bit matrix products depend on the CPU: with VNNI (``avx512_vnni``,
``avx_vnni``) a ``uint8 x int8`` product accumulates in 32 bits; on AVX2 alone it goes
through ``vpmaddubsw``, whose 16-bit sums of two products saturate, so the same int8 model can
score differently there. Each variant is ``export.quantize.quantize`` of the bundle's
``model.onnx`` with one setting changed from the shipped one; each is scored on the same
tweets: F1 at the bundle's threshold, label agreement and the largest probability difference
against fp32, and the median batch-1 latency. The SIMD features are those the
process sees through CPUID (numpy's run-time dispatch), so a run under an emulated CPU
reports that CPU, e.g. an AVX2-only one without VNNI::

    python scripts/int8_parity.py --bundle runs/pipeline/serving --json reports/int8/native.json
    qemu-x86_64 -cpu Haswell-noTSX .venv/bin/python scripts/int8_parity.py \\
        --bundle runs/pipeline/serving --limit 200 --json reports/int8/avx2.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

#: int8 variants: the bundle's own int8 model (``shipped``), then its settings with one thing
#: changed.
VARIANTS = {
    "shipped": None,
    "reduce_range": {"reduce_range": True},
    "uint8_weights": {"weight_type": "QUInt8"},
    "per_tensor": {"per_channel": False},
    "all_matmuls": {"fp32_matmuls_fed_by": []},
}


def simd_features() -> list[str]:
    """The SIMD features numpy's run-time dispatch found through CPUID (not /proc/cpuinfo,
    which shows the host's flags even under an emulator)."""
    import numpy._core._multiarray_umath as umath

    found = umath.__cpu_features__
    wanted = ("AVX2", "FMA3", "AVX512F", "AVX512_SKX", "AVX512_CLX", "AVX512_CNL", "AVX512_SPR")
    return [name for name in wanted if found.get(name)]


def main(argv: list[str] | None = None) -> dict:
    """Score fp32 and each of ``--variants``, print the table, write ``--json``; return it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", required=True, help="serving bundle directory")
    parser.add_argument("--data", default="data/processed/val.csv", help="labelled tweets")
    parser.add_argument("--limit", type=int, default=0, help="score the first N tweets (0: all)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--reps", type=int, default=50, help="batch-1 calls per model")
    parser.add_argument("--json", required=True, help="output JSON")
    args = parser.parse_args(argv)

    import onnxruntime as ort
    from sklearn.metrics import f1_score

    from tweetcls.core.atomic import write_text
    from tweetcls.core.bundle import load_bundle
    from tweetcls.export.quantize import QUANTIZATION, quantize
    from tweetcls.inference.backends import load_backend
    from tweetcls.inference.base import frame_inputs, predict_frame

    frame = pd.read_csv(args.data, keep_default_na=False)
    frame = frame.head(args.limit) if args.limit else frame
    texts, keywords = frame_inputs(frame)
    bundle = load_bundle(args.bundle)
    backend = load_backend(bundle, "onnx", threads=1)
    options = backend.session.get_session_options()
    fp32_path = bundle.backend_file("onnx")

    def run(path: Path | None) -> dict:
        if path is not None:
            backend.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        probs = predict_frame(backend, frame)
        times = []
        for i in range(min(args.reps, len(texts))):
            start = time.perf_counter()
            backend.predict_proba([texts[i]], [keywords[i]])
            times.append((time.perf_counter() - start) * 1000)
        return {"probs": probs, "batch1_median_ms": round(statistics.median(times), 3)}

    results = {"fp32": run(None)}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.variants:
            path = bundle.backend_file("onnx-int8")
            if VARIANTS[name] is not None:
                path = Path(tmp) / f"{name}.onnx"
                quantize(fp32_path, path, {**QUANTIZATION, **VARIANTS[name]})
            results[name] = run(path)
    labels = frame["target"].to_numpy()
    reference = results["fp32"]["probs"]
    rows = {}
    for name, result in results.items():
        predicted = result["probs"] >= bundle.threshold
        rows[name] = {
            "f1": round(float(f1_score(labels, predicted)), 4),
            "agreement": round(float(np.mean(predicted == (reference >= bundle.threshold))), 4),
            # three significant digits: a weak model's calibrated probabilities sit close together
            "max_abs_prob_diff": float(f"{np.max(np.abs(result['probs'] - reference)):.3g}"),
            "batch1_median_ms": result["batch1_median_ms"],
        }
    report = {"bundle": args.bundle, "tweets": len(frame), "simd_features": simd_features()}
    report |= {"onnxruntime": ort.__version__, "variants": rows}
    print(f"CPU features seen: {' '.join(report['simd_features'])}; {len(frame)} tweets")
    print(pd.DataFrame.from_dict(rows, orient="index").to_string())
    write_text(args.json, json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
