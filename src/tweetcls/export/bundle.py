"""``python -m tweetcls export``: a fitted model directory -> a serving bundle.

Copies the model directory from ``fit`` (``runs/<run>/model``), adds the model as ONNX (fp32,
dynamic batch and sequence axes) and as dynamically quantized int8 ONNX, checks all three
backends on ``val.csv`` through the same :mod:`tweetcls.inference.backends` classes the server
uses, and writes ``serving.json`` (version, hashes, provenance) and ``drift_reference.json``
(profile of ``train.csv``). The bundle directory is written atomically: on any failure,
including int8 losing more than ``--max-f1-drop`` F1 against PyTorch, nothing is left behind.
See :mod:`tweetcls.core.bundle` for the layout.
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tweetcls.core.atomic import atomic_path, write_text
from tweetcls.core.bootstrap import f1_interval
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
from tweetcls.core.errors import ConfigError
from tweetcls.core.inputs import encode
from tweetcls.inference.backends import predict_frame

#: ONNX opset of the exported graph. 20 is the dynamo exporter's native opset in torch 2.13
#: (no version conversion pass), has native ``Gelu`` and ``LayerNormalization`` kernels in
#: ONNX Runtime, and is supported by ``onnxruntime.quantization``.
DEFAULT_OPSET = 20
#: Largest allowed drop of validation F1 from PyTorch to int8.
DEFAULT_MAX_F1_DROP = 0.01
#: Tweets per backend call when scoring the validation and training data.
#: Files and folders of an earlier bundle that are rebuilt, never copied.
_GENERATED = ("onnx", INFO_FILE, DRIFT_REFERENCE_FILE)
#: Sample tweets for tracing: two of different lengths (so no axis is specialised to 1).
_SAMPLE = (
    ["Forest fire near La Ronge Sask. Canada", "I love fruits"],
    ["wildfire", None],
)


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
            "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "onnx_inputs": onnx_inputs,
            "onnx_opset": opset,
            "quantization": quantization,
            "versions": _library_versions(),
        }
        write_text(tmp / INFO_FILE, json.dumps(info, indent=2) + "\n")
        bundle = load_bundle(tmp)
        backends, probabilities = _score_backends(bundle, val)
        results = compare_backends(val["target"].to_numpy(), probabilities, bundle.threshold)
        drop = results["pytorch"]["f1"] - results["onnx-int8"]["f1"]
        if drop > max_f1_drop:
            raise ConfigError(
                f"int8 model loses {drop:.4f} validation F1 (pytorch {results['pytorch']['f1']:.4f}"
                f", onnx-int8 {results['onnx-int8']['f1']:.4f}, onnx {results['onnx']['f1']:.4f}"
                f"), more than --max-f1-drop {max_f1_drop}; no bundle written"
            )
        info["validation"] = {kind: r["f1"] for kind, r in results.items()}
        write_text(tmp / INFO_FILE, json.dumps(info, indent=2) + "\n")
        reference = _drift_reference(backends["onnx-int8"], train, bundle.threshold)
        write_text(tmp / DRIFT_REFERENCE_FILE, json.dumps(reference, indent=2) + "\n")
    report = {
        "model": str(model_dir),
        "bundle": str(out),
        "version": info["version"],
        "threshold": bundle.threshold,
        "samples": len(val),
        "max_f1_drop": max_f1_drop,
        "int8_f1_drop": round(drop, 6),
        "onnx_opset": opset,
        "quantization": quantization,
        "size_mb": {
            kind: round((out / f).stat().st_size / 2**20, 2) for kind, f in BACKEND_FILES.items()
        },
        "backends": results,
    }
    write_text(report_path, json.dumps(report, indent=2) + "\n")
    return report


def _logits_module(model: Any) -> Any:
    """``model`` as a module that returns only the ``logits`` tensor (for export)."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor | None = None,
        ) -> torch.Tensor:
            inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                inputs["token_type_ids"] = token_type_ids
            return self.model(**inputs).logits

    return LogitsOnly()


def export_onnx(model_dir: Path, path: Path, meta: dict[str, Any], opset: int) -> list[str]:
    """Export the Hugging Face model of ``model_dir`` to ONNX ``path``; return its input names.

    Uses the dynamo exporter (``torch.export``), the maintained path in torch 2.13 whose
    ``dynamic_shapes`` are checked symbolically: an export that silently specialised the batch
    or sequence length fails here instead of at serving time. The TorchScript exporter is
    deprecated and is not used. The graph outputs ``logits`` ``(batch, 2)``; inputs are the
    tokenizer's ``model_input_names`` (``token_type_ids`` only for BERT-like models).
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
    sample = encode(
        tokenizer,
        _SAMPLE[0],
        _SAMPLE[1],
        [None] * len(_SAMPLE[0]),
        use_keyword=meta["use_keyword"],
        use_location=meta["use_location"],
        max_length=meta["max_length"],
        return_tensors="pt",
    )
    names = [name for name in tokenizer.model_input_names if name in sample]
    unsupported = set(names) - {"input_ids", "attention_mask", "token_type_ids"}
    if unsupported or not {"input_ids", "attention_mask"} <= set(names):
        raise ConfigError(f"{model_dir}: unsupported tokenizer inputs {names}")
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), _quiet_loggers("torch.onnx", "torch.export"):
        # the exporter's internals warn about deprecations in torch itself, not about this model
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            _logits_module(model),
            (),
            kwargs={name: sample[name] for name in names},
            input_names=names,
            output_names=["logits"],
            dynamic_shapes={name: {0: batch, 1: sequence} for name in names},
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
        program.save(str(path), external_data=False)
    _check_dynamic_axes(path, names)
    return names


def _check_dynamic_axes(path: Path, names: list[str]) -> None:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    inputs = {node.name: node for node in graph.input}
    for name in names:
        dims = inputs[name].type.tensor_type.shape.dim
        if len(dims) != 2 or not all(dim.dim_param for dim in dims):
            raise ConfigError(f"{path}: input {name} has fixed axes {dims}; export not dynamic")


class _quiet_loggers:
    """Raise the given loggers to ERROR for the duration of a ``with`` block."""

    def __init__(self, *names: str) -> None:
        self.loggers = [logging.getLogger(name) for name in names]
        self.levels: list[int] = []

    def __enter__(self) -> None:
        self.levels = [logger.level for logger in self.loggers]
        for logger in self.loggers:
            logger.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        for logger, level in zip(self.loggers, self.levels, strict=True):
            logger.setLevel(level)


#: quantize_dynamic settings: QInt8 weights, one scale per output channel, for the encoder's
#: ``MatMul``s except the feed-forward down-projections (the ``MatMul``s fed by ``Gelu``, whose
#: long-tailed activations lose the most in per-tensor uint8); those, the ``Gemm`` head and the
#: ``Gather`` embeddings stay fp32. Validation F1 of int8 on the pipeline's MiniLM (PyTorch
#: 0.8020, threshold 0.610, 750 tweets): per-channel + reduce_range 0.7900, per-channel 0.7954,
#: uint8 weights per-channel 0.7953, per-tensor uint8 0.7915, per-channel with the last layer
#: in fp32 0.7887, per-channel with the down-projections in fp32 0.8000 (chosen; agreement
#: 0.9947, 70 MB instead of 59 MB, same batch-1 latency on this AVX2 CPU).
QUANTIZATION = {
    "weight_type": "QInt8",
    "op_types_to_quantize": ["MatMul"],
    "per_channel": True,
    "reduce_range": False,
    "fp32_matmuls_fed_by": ["Gelu"],
}


def fp32_matmuls(model_path: Path, fed_by: list[str]) -> list[str]:
    """Names of the ``MatMul`` nodes of ``model_path`` fed by an op whose type is in ``fed_by``."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    producer = {output: node.op_type for node in graph.node for output in node.output}
    return [
        node.name
        for node in graph.node
        if node.op_type == "MatMul" and producer.get(node.input[0]) in fed_by
    ]


def quantize(fp32_path: Path, int8_path: Path) -> dict[str, Any]:
    """Dynamically quantize ``fp32_path`` (int8 weights, activations quantized at run time).

    Returns the settings, with the names of the nodes kept in fp32.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    excluded = fp32_matmuls(fp32_path, QUANTIZATION["fp32_matmuls_fed_by"])
    with _quiet_loggers("root"):
        quantize_dynamic(
            fp32_path,
            int8_path,
            weight_type=QuantType[QUANTIZATION["weight_type"]],
            op_types_to_quantize=QUANTIZATION["op_types_to_quantize"],
            per_channel=QUANTIZATION["per_channel"],
            reduce_range=QUANTIZATION["reduce_range"],
            nodes_to_exclude=excluded,
            extra_options={"MatMulConstBOnly": True},
        )
    return {**QUANTIZATION, "fp32_nodes": excluded}


def _library_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("torch", "transformers", "onnx", "onnxruntime")}


def _score_backends(bundle: Bundle, val: pd.DataFrame) -> tuple[dict, dict[str, np.ndarray]]:
    from tweetcls.inference.backends import BACKENDS, load_backend

    backends = {kind: load_backend(bundle, kind) for kind in BACKENDS}
    return backends, {kind: predict_frame(b, val) for kind, b in backends.items()}


def compare_backends(
    targets: np.ndarray, probabilities: dict[str, np.ndarray], threshold: float
) -> dict[str, dict[str, float]]:
    """Per backend: classification metrics at ``threshold`` and agreement with ``pytorch``.

    A tweet is labelled a disaster when its probability is at least ``threshold``.
    """
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    reference = probabilities["pytorch"]
    results = {}
    for kind, probs in probabilities.items():
        labels = (probs >= threshold).astype(int)
        interval = f1_interval(probs, targets, np.nextafter(threshold, 0))  # ">=" as ">"
        precision, recall, f1, _ = precision_recall_fscore_support(
            targets, labels, average="binary", zero_division=0
        )
        results[kind] = {
            "f1": round(float(f1), 6),
            # 95% bootstrap interval over tweets: backends closer than its width are tied
            "f1_ci": [round(interval.low, 6), round(interval.high, 6)],
            "precision": round(float(precision), 6),
            "recall": round(float(recall), 6),
            "accuracy": round(float(accuracy_score(targets, labels)), 6),
            "agreement": round(float(np.mean(labels == (reference >= threshold))), 6),
            "max_abs_prob_diff": round(float(np.max(np.abs(probs - reference))), 6),
        }
    return results


def _drift_reference(backend: Any, train: pd.DataFrame, threshold: float) -> dict[str, Any]:
    """Profile of ``train.csv`` with the serving backend's predictions and token counts."""
    from tweetcls.monitoring.drift import build_reference

    probabilities = predict_frame(backend, train)
    frame = train[["text", "keyword", "target"]].assign(
        probability=probabilities, label=(probabilities >= threshold).astype(int)
    )
    return build_reference(frame, backend)
