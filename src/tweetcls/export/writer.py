"""A fitted model directory -> a serving bundle (``tweetcls export``, :mod:`.command`).

Copies the model directory from ``fit`` (``runs/<run>/model``), adds the model as ONNX (fp32,
dynamic batch and sequence axes) and as dynamically quantized int8 ONNX, checks all three
backends on ``val.csv`` through the same :mod:`tweetcls.inference` backends the server
uses, fits the map (Platt scaling) that calibrates their probabilities on it
(:mod:`tweetcls.core.calibration`), and writes ``serving.json`` (version, hashes, provenance,
calibration) and ``drift_reference.json`` (profile of ``train.csv``). The bundle directory is
written atomically: on any failure, including int8 losing more than ``--max_f1_drop`` F1
against PyTorch, nothing is left behind. See :mod:`tweetcls.core.bundle` for the layout.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from tweetcls.core.atomic import atomic_path, write_text
from tweetcls.core.bundle import (
    BACKEND_FILES,
    DRIFT_REFERENCE_FILE,
    INFO_FILE,
    META_FILE,
    Bundle,
    file_sha256,
    load_bundle,
    weights_version,
)
from tweetcls.core.calibration import Calibration, calibrate
from tweetcls.core.errors import ConfigError
from tweetcls.core.host import cpu_flags
from tweetcls.export.compare import compare_backends, score_backends
from tweetcls.export.onnx import DEFAULT_OPSET, export_onnx
from tweetcls.export.quantize import quantize
from tweetcls.inference.base import frame_inputs, predict_frame
from tweetcls.inference.explain import EXPLANATIONS_KEY, check_explanations
from tweetcls.inference.self_check import SELF_CHECK_KEY, record_self_check

#: Largest allowed drop of validation F1 from PyTorch to int8.
DEFAULT_MAX_F1_DROP = 0.01
#: Tweets per backend call when scoring the validation and training data.
#: Files and folders of an earlier bundle that are rebuilt, never copied.
_GENERATED = ("onnx", INFO_FILE, DRIFT_REFERENCE_FILE)


def export_bundle(
    model_dir: Path,
    out: Path,
    *,
    data_dir: Path,
    raw_dir: Path,
    report_path: Path,
    max_f1_drop: float = DEFAULT_MAX_F1_DROP,
    opset: int = DEFAULT_OPSET,
) -> dict[str, Any]:
    """Write the bundle ``out`` from ``model_dir`` and the report; return the report.

    Args:
        model_dir: Model directory written by ``fit``.
        out: Bundle directory (replaced atomically).
        data_dir: Processed data with ``train.csv`` and ``val.csv``.
        raw_dir: Raw data directory; its ``.dvc`` hash is recorded.
        report_path: JSON comparison of the backends on ``val.csv``.
        max_f1_drop: Largest allowed F1 drop from PyTorch to int8.
        opset: ONNX opset.

    Raises:
        ConfigError: bad model directory, or int8 F1 dropped more than ``max_f1_drop``.
        DataValidationError: the processed data is missing.
    """
    from tweetcls.core.provenance import provenance
    from tweetcls.data.preprocess import read_processed

    source = load_bundle(model_dir)  # validates the directory and tweetcls.json
    if out.resolve() == model_dir.resolve():
        raise ConfigError(f"--out: must differ from --model ({out})")
    val = read_processed(data_dir, "val.csv")
    train = read_processed(data_dir, "train.csv")
    for name, frame in (("val.csv", val), ("train.csv", train)):
        if frame.empty or "target" not in frame:
            raise ConfigError(f"{data_dir / name}: needs rows with a 'target' column")
    with atomic_path(out) as tmp:
        shutil.copytree(model_dir, tmp, ignore=shutil.ignore_patterns(*_GENERATED))
        onnx_inputs = export_onnx(tmp, tmp / BACKEND_FILES["onnx"], source.meta, opset)
        quantization = quantize(tmp / BACKEND_FILES["onnx"], tmp / BACKEND_FILES["onnx-int8"])
        info = {
            "version": weights_version(tmp),
            "model_sha256": {kind: file_sha256(tmp / f) for kind, f in BACKEND_FILES.items()},
            "config_sha256": file_sha256(tmp / META_FILE),
            **{k: v for k, v in provenance(raw_dir).items() if k != "data_dvc_file"},
            "onnx_inputs": onnx_inputs,
            "onnx_opset": opset,
            "quantization": quantization,
            "versions": _library_versions(),
        }
        # the bundle as loading will see it; serving.json is written once, with its validation
        bundle = Bundle.of(tmp, source.meta, info, info["version"])
        backends, probabilities = score_backends(bundle, val)
        results = compare_backends(val["target"].to_numpy(), probabilities, bundle.threshold)
        drop = results["pytorch"]["f1"] - results["onnx-int8"]["f1"]
        if drop > max_f1_drop:
            raise ConfigError(
                f"int8 model loses {drop:.4f} validation F1 (pytorch {results['pytorch']['f1']:.4f}"
                f", onnx-int8 {results['onnx-int8']['f1']:.4f}, onnx {results['onnx']['f1']:.4f}"
                f"), more than --max_f1_drop {max_f1_drop}; no bundle written"
            )
        info["validation"] = {kind: r["f1"] for kind, r in results.items()}
        # probabilities that mean what they say: a map fitted on val.csv (decisions
        # unchanged: the threshold moves with the probabilities)
        calibration, calibration_report = calibrate(
            probabilities["pytorch"], val["target"].to_numpy()
        )
        info["calibration"] = {
            "method": calibration_report["method"],
            **calibration.as_dict(),
            "fitted_on": f"val.csv ({len(val)} tweets, PyTorch backend)",
        }
        for backend in backends.values():
            backend.calibration = Calibration.of(info, INFO_FILE)  # as loading will read it
        bundle = Bundle.of(tmp, source.meta, info, info["version"])  # the threshold moves
        # int8 parity holds on the CPU kind it was checked on: 8-bit dot products saturate on
        # CPUs without VNNI, so a bundle served on another kind may score differently
        info["validated_on_cpu_flags"] = cpu_flags()
        info[SELF_CHECK_KEY] = record_self_check(backends, val)  # scored again at serve start
        # word attributions are served only if they point at the words the model uses
        texts, keywords = frame_inputs(val)
        info[EXPLANATIONS_KEY], faithfulness = check_explanations(
            backends["onnx-int8"].predict_proba, texts, keywords, "onnx-int8"
        )
        write_text(tmp / INFO_FILE, json.dumps(info, indent=2) + "\n")
        reference = _drift_reference(backends["onnx-int8"], train, bundle.threshold)
        write_text(tmp / DRIFT_REFERENCE_FILE, json.dumps(reference, indent=2) + "\n")
    report = {
        "model": str(model_dir),
        "bundle": str(out),
        "version": info["version"],
        "threshold": bundle.threshold,
        "samples": len(val),
        "calibration": calibration_report,
        "faithfulness": faithfulness,
        "max_f1_drop": max_f1_drop,
        "int8_f1_drop": round(drop, 6),
        "onnx_opset": opset,
        "quantization": quantization,
        "validated_on_cpu_flags": info["validated_on_cpu_flags"],
        "size_mb": {
            kind: round((out / f).stat().st_size / 2**20, 2) for kind, f in BACKEND_FILES.items()
        },
        "backends": results,
    }
    write_text(report_path, json.dumps(report, indent=2) + "\n")
    return report


def _library_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("torch", "transformers", "onnx", "onnxruntime")}


def _drift_reference(backend: Any, train: pd.DataFrame, threshold: float) -> dict[str, Any]:
    """Profile of ``train.csv`` with the serving backend's predictions and token counts."""
    from tweetcls.monitoring.drift import build_reference

    probabilities = predict_frame(backend, train)
    frame = train[["text", "keyword", "target"]].assign(
        probability=probabilities, label=(probabilities >= threshold).astype(int)
    )
    return build_reference(frame, backend)
