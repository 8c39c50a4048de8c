"""What the benchmarks share (``bench_train_overhead.py``, ``bench_train_mfu.py``, and the
free ports of ``bench_serve.py``; the tests' servers use them too).

Progress on stderr, the report on stdout, and the same JSON layout for the training benchmarks:
``meta`` (run details), ``rows`` (one object per table row) and ``report`` (the printed
markdown). Only the
standard library and PyYAML (a dependency of transformers): ``bench_train_mfu.py`` must run on
a bare GPU machine with only torch, transformers and lightning.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def read_config(name: str, missing_ok: bool = False) -> dict[str, Any]:
    """``configs/<name>.yaml``; with ``missing_ok`` an empty dict when there is none."""
    path = CONFIGS / f"{name}.yaml"
    if missing_ok and not path.is_file():
        return {}
    return yaml.safe_load(path.read_text())


def log(message: str) -> None:
    """Progress message on stderr (stdout carries only the report)."""
    print(message, file=sys.stderr, flush=True)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def timestamp() -> str:
    """The local time with its UTC offset, to the second."""
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def write_json(
    path: Path, meta: dict[str, Any], rows: Sequence[dict[str, Any]], report: str
) -> None:
    """Save the run details, the table rows and the markdown report to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "rows": list(rows), "report": report}
    path.write_text(json.dumps(payload, indent=2) + "\n")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
