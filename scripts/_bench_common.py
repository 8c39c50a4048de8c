"""What the benchmarks share: progress, plain tables, the training benchmarks' JSON, the host
(:func:`host_info`, the only place that collects it), batch-1 latency and free ports (the
tests' servers use them too). Only the standard library and PyYAML: ``bench_train_mfu.py``
must run on a bare GPU machine with only torch, transformers and lightning.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
#: CPU flags (``lscpu``) that decide inference speed.
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_int8")
#: SIMD features as CPUID reports them to this process (numpy's run-time dispatch).
SIMD_FEATURES = ("AVX2", "FMA3", "AVX512F", "AVX512_SKX", "AVX512_CLX", "AVX512_CNL", "AVX512_SPR")


def read_config(name: str) -> dict[str, Any]:
    """``configs/<name>.yaml``."""
    return yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())


def log(message: str) -> None:
    """Progress message on stderr (stdout carries only the results)."""
    print(message, file=sys.stderr, flush=True)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def run_meta(args: argparse.Namespace, **details: Any) -> dict[str, Any]:
    """A training benchmark's JSON ``meta``: the date, :func:`host_info` (torch, transformers
    and lightning also at the top level), ``details`` and every argument as text."""
    machine = host_info(("torch", "transformers", "lightning"))
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        **machine,
        **machine["versions"],
        **details,
        "args": {key: str(value) for key, value in vars(args).items()},
    }


def write_json(path: Path, meta: dict[str, Any], rows: Sequence[dict[str, Any]]) -> None:
    """Save ``{"meta": meta, "rows": rows}`` to ``path``, whole or not at all (written beside
    it, then renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(json.dumps({"meta": meta, "rows": list(rows)}, indent=2) + "\n")
    staging.replace(path)


def print_table(rows: Sequence[Mapping[str, Any]], columns: str) -> None:
    """Print ``rows`` on stdout as a plain table of ``columns``, ``field:format`` words (a list
    value: item by item; None: "-"); a field without a format is text, left-aligned."""
    specs = dict(column.partition(":")[::2] for column in columns.split())

    def cell(value: Any, spec: str) -> str:
        if isinstance(value, list):
            return " ".join(cell(item, spec) for item in value)
        return "-" if value is None else format(value, spec)

    lines = [list(specs), *([cell(r.get(k), f) for k, f in specs.items()] for r in rows)]
    widths = [max(map(len, column)) for column in zip(*lines, strict=True)]
    for line in lines:
        cells = zip(line, widths, specs.values(), strict=True)
        print("  ".join(c.rjust(w) if f else c.ljust(w) for c, w, f in cells).rstrip())


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def batch1_latency(
    engines: Mapping[str, Any],
    texts: Sequence[str],
    keywords: Sequence[str | None],
    reps: int,
    rounds: int,
    warmup: int = 10,
) -> dict[str, dict[str, Any]]:
    """Per name of ``engines`` (backends), ``reps``, ``median_ms``, ``p90_ms`` and
    ``round_medians_ms`` of ``predict_proba`` on one tweet: ``warmup`` untimed calls each, then
    ``reps`` in ``rounds`` rounds on the same tweets, the engines' order rotated each round (a
    machine whose speed drifts affects all alike)."""
    import numpy as np  # not at import: bench_train_mfu's bare GPU machine may lack it

    for engine in engines.values():
        for i in range(min(warmup, len(texts))):
            engine.predict_proba([texts[i]], [keywords[i]])
    names, per_round = list(engines), -(-reps // rounds)
    times: dict[str, list[list[float]]] = {name: [] for name in names}
    for r in range(rounds):
        batch = [(r * per_round + i) % len(texts) for i in range(per_round)]
        for name in names[r % len(names) :] + names[: r % len(names)]:
            round_times = []
            for i in batch:
                start = time.perf_counter()
                engines[name].predict_proba([texts[i]], [keywords[i]])
                round_times.append((time.perf_counter() - start) * 1000)
            times[name].append(round_times)
    pooled = {name: [t for round_times in times[name] for t in round_times] for name in names}
    return {
        name: {
            "reps": len(pooled[name]),
            "median_ms": statistics.median(pooled[name]),
            "p90_ms": float(np.percentile(pooled[name], 90)),
            "round_medians_ms": [statistics.median(t) for t in times[name]],
        }
        for name in names
    }


def host_info(versions: Sequence[str] = ()) -> dict[str, Any]:
    """The machine: host name, CPU model (``/proc/cpuinfo``), which of ``CPU_FLAGS`` the kernel
    lists and which of ``SIMD_FEATURES`` CPUID shows this process (an emulated CPU's under
    qemu), CPU counts, load average, the checkout's commit (``-dirty`` with uncommitted
    changes), Python and the version of each package of ``versions``."""

    def run(*command: str) -> str:
        return subprocess.run(
            command, capture_output=True, text=True, check=True, timeout=10
        ).stdout

    installed = {d.name.lower(): d.version for d in importlib.metadata.distributions()}
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()  # Linux, as sched_getaffinity
    fields: dict[str, str] = {}
    for key, _, value in (line.partition(":") for line in cpuinfo):
        fields.setdefault(key.strip(), value.strip())
    sockets = {line for line in cpuinfo if line.startswith("physical id")}
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as cpuid
    except ImportError:  # no numpy (2.x) here
        cpuid = {}
    try:
        git = ("git", "-C", str(CONFIGS.parent))
        commit: str | None = run(*git, "rev-parse", "--short", "HEAD").strip()
        commit += "-dirty" if run(*git, "status", "--porcelain", "--untracked-files=no") else ""
    except (OSError, subprocess.SubprocessError):
        commit = None
    flags = fields.get("flags", "").split()
    return {
        "host": platform.node(),
        "cpu_model": fields.get("model name") or platform.processor() or platform.machine(),
        "cpu_flags": [flag for flag in CPU_FLAGS if flag in flags],
        "simd_features": [name for name in SIMD_FEATURES if cpuid.get(name)],
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "physical_cores": int(fields.get("cpu cores") or 0) * len(sockets) or None,
        "commit": commit,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": list(os.getloadavg()),
        "versions": {name: installed.get(name.lower()) for name in versions},
    }
