"""``tweetcls export``: build the serving bundle of a fitted model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tweetcls.core.arguments import run_function
from tweetcls.core.errors import ConfigError
from tweetcls.core.overwrite import refuse_to_replace
from tweetcls.export.onnx import DEFAULT_OPSET
from tweetcls.export.writer import DEFAULT_MAX_F1_DROP, export_bundle


def export(
    model: str,
    out: str,
    data_dir: str = "data/processed",
    raw_dir: str = "data/raw",
    report_path: str | None = None,
    max_f1_drop: float = DEFAULT_MAX_F1_DROP,
    opset: int = DEFAULT_OPSET,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Turn a fitted model directory into a serving bundle: ONNX fp32 and int8 models,
    serving.json (version, hashes, provenance, calibration, whether word attributions are
    faithful) and drift_reference.json; check the backends on val.csv and write the report.

    Args:
        model: Model directory written by fit (e.g. runs/pipeline/model): Hugging Face weights,
            tokenizer and tweetcls.json.
        out: Bundle directory to write (replaced atomically; e.g. runs/pipeline/serving).
        data_dir: Processed data: val.csv for the backend checks, train.csv for the drift
            reference.
        raw_dir: Raw data directory whose ``<raw_dir>.dvc`` hash is recorded as data_md5.
        report_path: Where to write the backend comparison on val.csv; default
            ``reports/export.json`` beside ``out`` (runs/minilm/serving:
            runs/minilm/reports/export.json; the DVC pipeline writes the project's reports/).
        max_f1_drop: Fail (exit 2, no bundle written) if the int8 model's validation F1 is more
            than this below PyTorch's.
        opset: ONNX opset of the exported graph, 18 or later.
        overwrite: Replace a bundle already at ``out`` and a report at ``report_path``; without
            it export stops, before any work, when either exists.
    """
    if opset < 18:
        raise ConfigError(f"--opset: the dynamo exporter needs opset >= 18, got {opset}")
    report_path = report_path or str(Path(out).parent / "reports" / "export.json")
    if not overwrite:
        refuse_to_replace("export", [out, report_path], "`--out` and `--report_path`")
    report = export_bundle(
        Path(model),
        Path(out),
        data_dir=Path(data_dir),
        raw_dir=Path(raw_dir),
        report_path=Path(report_path),
        max_f1_drop=max_f1_drop,
        opset=opset,
    )
    int8, pytorch = report["backends"]["onnx-int8"], report["backends"]["pytorch"]
    calibration = report["calibration"]
    faithful = "faithful" if report["faithfulness"]["faithful"] else "NOT faithful: not served"
    print(
        f"export: wrote {out} (version {report['version']}): val F1 pytorch "
        f"{pytorch['f1']:.4f}, onnx-int8 {int8['f1']:.4f}, label agreement "
        f"{int8['agreement']:.4f}; calibration T {calibration['temperature']:.3f}, b "
        f"{calibration['bias']:+.3f}; "
        f"word attributions {faithful}; report {report_path}"
    )
    return report


def main(args: list[str] | None = None, prog: str = "tweetcls export") -> None:
    """Run ``tweetcls export``."""
    run_function(export, list(args or []), prog)
