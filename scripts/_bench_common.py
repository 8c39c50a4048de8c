"""What the benchmarks share: progress on stderr and a plain table on stdout
(:func:`print_table`), the JSON of the training benchmarks (``meta``: run details, ``rows``: one
object per row; the docs render their tables from these), the host (:func:`host_info`), batch-1
timing in interleaved rounds (``bench_serve.py``, ``bench_models.py``) and free ports (the tests'
servers use them too).

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
    """Progress message on stderr (stdout carries only the results)."""
    print(message, file=sys.stderr, flush=True)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def run_meta(args: argparse.Namespace, **details: Any) -> dict[str, Any]:
    """A training benchmark's JSON ``meta``: the date, :func:`host_info` (load average now), the
    versions of torch, transformers and lightning (also at the top level), ``details`` and every
    argument as text."""
    machine = host_info(("torch", "transformers", "lightning"))
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        **machine,
        **machine["versions"],
        **details,
        "args": {key: str(value) for key, value in vars(args).items()},
    }


def write_json(path: Path, meta: dict[str, Any], rows: Sequence[dict[str, Any]]) -> None:
    """Save the run details and the rows to ``path`` as ``{"meta": ..., "rows": [...]}``, whole
    or not at all (written beside it, then renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(json.dumps({"meta": meta, "rows": list(rows)}, indent=2) + "\n")
    staging.replace(path)


def print_table(rows: Sequence[Mapping[str, Any]], columns: Mapping[str, str]) -> None:
    """Print ``rows`` on stdout as a plain table, a column per ``columns`` key (a row's field and
    the heading), its value formatted by the key's format spec (a list: item by item; None:
    "-"); columns with a spec are right-aligned."""

    def cell(value: Any, spec: str) -> str:
        if isinstance(value, list):
            return " ".join(cell(item, spec) for item in value)
        return "-" if value is None else format(value, spec)

    lines = [list(columns), *([cell(r.get(k), f) for k, f in columns.items()] for r in rows)]
    widths = [max(map(len, column)) for column in zip(*lines, strict=True)]
    for line in lines:
        cells = zip(line, widths, columns.values(), strict=True)
        print("  ".join(c.rjust(w) if f else c.ljust(w) for c, w, f in cells).rstrip())


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
