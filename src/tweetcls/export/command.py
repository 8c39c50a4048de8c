"""``tweetcls export``: build the serving bundle of a fitted model."""

from __future__ import annotations

import argparse
from pathlib import Path

from tweetcls.core.errors import ConfigError
from tweetcls.export.bundle import DEFAULT_MAX_F1_DROP, DEFAULT_OPSET, export_bundle


def build_parser(prog: str = "tweetcls export") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Turn a fitted model directory into a serving bundle: ONNX fp32 and int8 models, "
            "serving.json (version, hashes, provenance) and drift_reference.json; check the "
            "backends on val.csv and write the comparison report."
        ),
    )
    parser.add_argument(
        "--model",
        required=True,
        help="model directory written by fit (e.g. runs/pipeline/model): Hugging Face weights, "
        "tokenizer and tweetcls.json",
    )
    parser.add_argument(
        "--out",
        required=True,
        help="bundle directory to write (replaced atomically; e.g. runs/pipeline/serving)",
    )
    parser.add_argument(
        "--data-dir",
        default="data/processed",
        help="processed data: val.csv for the backend checks, train.csv for the drift reference "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--raw-dir",
        default="data/raw",
        help="raw data directory whose <raw_dir>.dvc hash is recorded as data_md5 "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--report",
        default="reports/export.json",
        help="where to write the backend comparison on val.csv (default: %(default)s)",
    )
    parser.add_argument(
        "--max-f1-drop",
        type=float,
        default=DEFAULT_MAX_F1_DROP,
        help="fail (exit 2, no bundle written) if the int8 model's validation F1 is more than "
        "this below PyTorch's (default: %(default)s)",
    )
    parser.add_argument(
        "--opset",
        type=int,
        default=DEFAULT_OPSET,
        help="ONNX opset of the exported graph, 18 or later (default: %(default)s)",
    )
    return parser


def main(argv: list[str] | None = None, prog: str = "tweetcls export") -> None:
    """Entry point of ``python -m tweetcls export``."""
    args = build_parser(prog).parse_args(argv)
    if args.opset < 18:
        raise ConfigError(f"--opset: the dynamo exporter needs opset >= 18, got {args.opset}")
    report = export_bundle(
        Path(args.model),
        Path(args.out),
        data_dir=Path(args.data_dir),
        raw_dir=Path(args.raw_dir),
        report_path=Path(args.report),
        max_f1_drop=args.max_f1_drop,
        opset=args.opset,
    )
    int8, pytorch = report["backends"]["onnx-int8"], report["backends"]["pytorch"]
    print(
        f"export: wrote {args.out} (version {report['version']}): val F1 pytorch "
        f"{pytorch['f1']:.4f}, onnx-int8 {int8['f1']:.4f}, label agreement "
        f"{int8['agreement']:.4f}; report {args.report}"
    )
