"""What the benchmarks share: progress on stderr and the report on stdout, the JSON layout of
the training benchmarks (``meta``: run details, ``rows``: one object per table row, ``report``:
the printed markdown), the host (:func:`host_info`), batch-1 timing in interleaved rounds
(``bench_serve.py``, ``bench_models.py``) and free ports (the tests' servers use them too).

Only the standard library and PyYAML (a dependency of transformers): ``bench_train_mfu.py`` must
run on a bare GPU machine with only torch, transformers and lightning.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
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


def interleaved_ms(
    calls: Mapping[str, Callable[[int], object]], reps: int, rounds: int, items: int, warmup: int
) -> dict[str, list[list[float]]]:
    """Milliseconds per call of each of ``calls`` (name -> a call on item ``i``), per round.

    Each call first runs untimed on items ``0 .. warmup - 1``; then ``reps`` timed calls each
    (rounded up to whole rounds) in ``rounds`` rounds. A round times every call on the same
    items, in an order rotated from round to round, so a machine whose speed drifts affects all
    alike and the per-round ratios show the spread.
    """
    for call in calls.values():
        for i in range(min(warmup, items)):
            call(i)
    names, per_round = list(calls), -(-reps // rounds)
    times: dict[str, list[list[float]]] = {name: [] for name in names}
    for r in range(rounds):
        batch = [(r * per_round + i) % items for i in range(per_round)]
        for name in names[r % len(names) :] + names[: r % len(names)]:
            round_times = []
            for i in batch:
                start = time.perf_counter()
                calls[name](i)
                round_times.append((time.perf_counter() - start) * 1000)
            times[name].append(round_times)
    return times


#: CPU flags that decide inference speed.
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_int8")


def host_info(versions: Sequence[str] = ()) -> dict[str, Any]:
    """The machine: CPU model (``lscpu``, else ``/proc/cpuinfo``) and which of ``CPU_FLAGS`` it
    has, CPU counts, load average, the checkout's commit (``-dirty`` with uncommitted changes),
    Python, and the installed version of each package of ``versions`` (None: missing)."""

    def run(*command: str) -> str:
        return subprocess.run(
            command, capture_output=True, text=True, check=True, timeout=10
        ).stdout

    def version(name: str) -> str | None:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    fields: dict[str, str] = {}
    for command in (["lscpu"], ["cat", "/proc/cpuinfo"]):
        try:
            lines = run(*command).splitlines()
        except (OSError, subprocess.SubprocessError):
            continue
        for key, _, value in (line.partition(":") for line in lines):
            key = {"model name": "Model name", "flags": "Flags"}.get(key.strip(), key.strip())
            fields.setdefault(key, value.strip())
    try:
        git = ("git", "-C", str(CONFIGS.parent))
        commit: str | None = run(*git, "rev-parse", "--short", "HEAD").strip()
        commit += "-dirty" if run(*git, "status", "--porcelain", "--untracked-files=no") else ""
    except (OSError, subprocess.SubprocessError):
        commit = None
    flags = set(fields.get("Flags", "").split())
    cores = [int(fields.get(key) or 0) for key in ("Core(s) per socket", "Socket(s)")]
    return {
        "cpu_model": fields.get("Model name") or platform.processor() or platform.machine(),
        "cpu_flags": [flag for flag in CPU_FLAGS if flag in flags],
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "physical_cores": (cores[0] * cores[1]) or None,
        "commit": commit,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": list(os.getloadavg()),
        "versions": {name: version(name) for name in versions},
    }
