"""Results of ``bench_serve.py``: the row types, load statistics, host details, Markdown, JSON."""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

#: Client count at which the closed-loop verdicts are given.
TARGET_CLIENTS = 32
#: The service's req/s over the backend's best reference tweets/s, at ``TARGET_CLIENTS``.
TARGET_RATIO = 0.95
#: tweetcls (tiny bundle) req/s over the minimal FastAPI app's, at each client count.
TARGET_BASELINE_RATIO = 0.5
#: Open loop: a rate is within capacity with 0 errors and p99 at most this.
CAPACITY_P99_MS = 1000.0
#: Open loop: loads run, as fractions of the capacity; the target applies at ``TARGET_LOAD``.
LOADS = (0.5, 0.8, 1.5)
TARGET_LOAD = 0.8
TARGET_OPEN_P99_MS = 50.0
TARGET_OPEN_BACKEND = "onnx-int8"
#: Batch-1 speed-up of int8 over PyTorch eager.
TARGET_INT8_SPEEDUP = 2.5
#: CPU flags that decide inference speed.
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_int8")
VERSIONS = (
    "tweetcls", "onnxruntime", "torch", "transformers", "tokenizers", "numpy", "fastapi",
    "pydantic", "uvicorn", "uvloop", "httptools", "aiohttp", "httpx",
)  # fmt: skip


@dataclass
class LoadStats:
    """What :func:`load_stats` makes of one load generator run (closed or open loop).

    Args:
        requests: Requests answered 200 in the timed window.
        errors: Every other outcome (non-200 answers and failed connections).
        error_kinds: ``errors`` by kind.
        duration_s: The timed window.
        req_per_s: ``requests / duration_s``.
        p50_ms: Median latency of the 200s (client side).
        p95_ms: 95th percentile latency of the 200s.
        p99_ms: 99th percentile latency of the 200s.
        server_cpu: Cores the server used on average.
        client_cpu: Cores the load generator used on average.
    """

    requests: int
    errors: int
    error_kinds: dict[str, int]
    duration_s: float
    req_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    server_cpu: float
    client_cpu: float


@dataclass
class LoadResult(LoadStats):
    """One closed-loop run: a server configuration at a client count.

    ``ratio`` is ``req_per_s / reference_tweets_per_s`` (the backend's best reference, see
    :class:`ReferenceResult`; one request is one tweet), ``meets_target`` whether, at
    ``TARGET_CLIENTS`` clients, ``ratio >= TARGET_RATIO`` with 0 errors (``None`` at other
    client counts or without a reference). ``backend`` is ``minimal`` for the baseline app.
    """

    backend: str
    config: str
    workers: int
    max_batch_tokens: int
    threads: int | None
    clients: int
    reference_tweets_per_s: float | None = None
    ratio: float | None = None
    meets_target: bool | None = None


@dataclass
class ReferenceResult:
    """The backend alone (no HTTP): ``predict_proba`` in a loop over batches of real tweets.

    Args:
        backend: Backend name.
        processes: Processes running at once (1, or one per CPU).
        threads: Intra-op threads per process (``None``: the runtime's default, all cores).
        batch: Tweets per call.
        sorted: Batches cut from the pool sorted by token count (else shuffled).
        tweets: Tweets predicted in the timed windows, all processes.
        tweets_per_s: Sum over processes of each one's tweets / its timed window.
        padding: Padded tokens (rows x longest row) over real tokens of the timed batches.
        process_tweets_per_s: Each process's rate.
    """

    backend: str
    processes: int
    threads: int | None
    batch: int
    sorted: bool
    tweets: int
    tweets_per_s: float
    padding: float
    process_tweets_per_s: list[float] = field(default_factory=list)


@dataclass
class OpenLoopRun(LoadStats):
    """One open-loop run at a fixed Poisson rate.

    ``outcome`` (capacity steps): ``pass`` (0 errors, p99 <= ``CAPACITY_P99_MS``, the
    generator on time), ``fail`` (the service missed that) or ``generator-limited`` (the
    service met it, but an arrival was dropped or over 5% were late). ``shed``: 503 answers,
    ``retry_after``: those with a ``Retry-After`` header; ``errors``: every non-200, 503 too.
    """

    label: str
    rate: float
    max_queue: int | None
    sent: int
    late: int
    dropped: int
    shed: int
    retry_after: int
    outcome: str = ""
    meets_target: bool | None = None


@dataclass
class OpenLoopResult:
    """Open loop for one server configuration: capacity search, then loads of ``LOADS``.

    ``capacity_rate``: the highest rate that passed; ``limited_by``: what stopped the search
    (``service``, ``generator``, ``max-rate``). Overload figures come from the 150% run:
    ``shed_share`` (503 answers over the requests sent), ``retry_after_share`` (503s carrying
    Retry-After), ``overload_p99_ms`` (of the 200s) and ``overload_other_errors`` (non-200,
    non-503); that server ran with ``--max_queue`` ``overload_max_queue`` and the serve flags
    ``overload_args``.
    """

    backend: str
    config: str
    capacity_rate: float
    limited_by: str
    steps: list[OpenLoopRun] = field(default_factory=list)
    runs: list[OpenLoopRun] = field(default_factory=list)
    overload_max_queue: int | None = None
    overload_args: str = ""
    shed_share: float | None = None
    retry_after_share: float | None = None
    overload_p99_ms: float | None = None
    overload_other_errors: int | None = None


@dataclass
class LatencyResult:
    """Model latency of one backend at batch 1 (``predict_proba`` on one tweet).

    Args:
        backend: Backend name.
        reps: Timed calls (after ``warmup`` untimed ones), over all rounds.
        median_ms: Median call time over all rounds.
        p90_ms: 90th percentile call time over all rounds.
        round_medians_ms: Median call time of each round.
    """

    backend: str
    reps: int
    median_ms: float
    p90_ms: float
    round_medians_ms: list[float] = field(default_factory=list)


@dataclass
class BaselineRow:
    """A service row against the minimal app at the same client count (``--baseline``)."""

    backend: str
    config: str
    clients: int
    service_req_per_s: float
    minimal_req_per_s: float
    ratio: float
    meets_target: bool


@dataclass
class Report:
    """Everything one benchmark measured, with its settings and the machine."""

    settings: dict[str, Any]
    machine: dict[str, Any]
    targets: dict[str, Any]
    model_latency: list[LatencyResult] = field(default_factory=list)
    int8_speedup: float | None = None
    int8_speedup_rounds: list[float] = field(default_factory=list)
    reference: list[ReferenceResult] = field(default_factory=list)
    reference_best: dict[str, dict[str, Any]] = field(default_factory=dict)
    load: list[LoadResult] = field(default_factory=list)
    minimal: list[LoadResult] = field(default_factory=list)
    baseline: list[BaselineRow] = field(default_factory=list)
    open_loop: list[OpenLoopResult] = field(default_factory=list)


def targets() -> dict[str, Any]:
    """The targets, as the report prints them."""
    return {
        "clients": TARGET_CLIENTS,
        "ratio_to_reference": TARGET_RATIO,
        "ratio_to_minimal": TARGET_BASELINE_RATIO,
        "capacity_p99_ms": CAPACITY_P99_MS,
        "open_loop_loads": list(LOADS),
        "open_loop_target_load": TARGET_LOAD,
        "open_loop_p99_ms": TARGET_OPEN_P99_MS,
        "open_loop_backend": TARGET_OPEN_BACKEND,
        "int8_speedup": TARGET_INT8_SPEEDUP,
    }


def load_stats(raw: dict[str, Any]) -> dict[str, Any]:
    """The :class:`LoadStats` fields of a load generator's raw results, as keyword arguments."""
    import numpy as np

    latencies = np.asarray(raw["latencies_ms"], dtype=float)
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99]) if latencies.size else (np.nan,) * 3
    duration = raw["duration_s"]
    return {
        "requests": int(latencies.size),
        "errors": sum(raw["failures"].values()),
        "error_kinds": raw["failures"],
        "duration_s": duration,
        "req_per_s": latencies.size / duration if duration > 0 else 0.0,
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "server_cpu": raw["server_cpu"],
        "client_cpu": raw["client_cpu"],
    }


def load_result(
    backend: str,
    config: Any,
    clients: int,
    raw: dict[str, Any],
    reference: float | None,
    label: str | None = None,
) -> LoadResult:
    """One closed-loop row of ``config`` (a ``ServiceConfig``), with its ratio to ``reference``
    (tweets/s) and its verdict."""
    row = LoadResult(
        backend=backend,
        config=label or config.label,
        workers=config.workers,
        max_batch_tokens=config.max_batch_tokens,
        threads=config.threads,
        clients=clients,
        **load_stats(raw),
    )
    if reference:
        row.reference_tweets_per_s = reference
        row.ratio = row.req_per_s / reference
        if clients == TARGET_CLIENTS:
            row.meets_target = row.ratio >= TARGET_RATIO and row.errors == 0
    return row


def baseline_rows(load: Sequence[LoadResult], minimal: Sequence[LoadResult]) -> list[BaselineRow]:
    """Each service row against the minimal app's row at the same client count."""
    by_clients = {row.clients: row for row in minimal}
    rows = []
    for row in load:
        base = by_clients.get(row.clients)
        if base is None or base.req_per_s <= 0:
            continue
        ratio = row.req_per_s / base.req_per_s
        rows.append(
            BaselineRow(
                backend=row.backend,
                config=row.config,
                clients=row.clients,
                service_req_per_s=row.req_per_s,
                minimal_req_per_s=base.req_per_s,
                ratio=ratio,
                meets_target=ratio >= TARGET_BASELINE_RATIO and row.errors == 0,
            )
        )
    return rows


def cpu_info() -> dict[str, Any]:
    """CPU model (``lscpu``, else ``/proc/cpuinfo``), the flags of ``CPU_FLAGS`` it has, cores."""
    fields: dict[str, str] = {}
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = {
            k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in text.splitlines())
        }
    except (OSError, subprocess.CalledProcessError):
        pass
    if not fields.get("Model name") or not fields.get("Flags"):
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as handle:
                for line in handle:
                    key, _, value = line.partition(":")
                    key = {"model name": "Model name", "flags": "Flags"}.get(key.strip(), "")
                    if key and not fields.get(key):
                        fields[key] = value.strip()
        except OSError:
            pass
    flags = set(fields.get("Flags", "").split())
    import psutil

    return {
        "cpu_model": fields.get("Model name") or platform.processor() or platform.machine(),
        "cpu_flags": [flag for flag in CPU_FLAGS if flag in flags],
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "physical_cores": psutil.cpu_count(logical=False),
    }


def git_commit() -> str | None:
    """The checkout's short commit, ``-dirty`` with uncommitted changes; None outside git."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        run = functools.partial(
            subprocess.run, cwd=root, capture_output=True, text=True, check=True, timeout=10
        )
        commit = run(["git", "rev-parse", "--short", "HEAD"]).stdout.strip()
        dirty = run(["git", "status", "--porcelain", "--untracked-files=no"]).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def host_info() -> dict[str, Any]:
    """The machine and the versions that decide the figures."""
    versions = {}
    for name in VERSIONS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        **cpu_info(),
        "commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": list(os.getloadavg()),
        "versions": versions,
    }


def to_json(report: Report) -> str:
    """The report as JSON (NaN percentiles of runs without a success become null)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and value != value:
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(asdict(report)), indent=2) + "\n"
