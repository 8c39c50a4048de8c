"""Results of ``bench_serve.py``: the row types, load statistics, Markdown and JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

#: Client count at which the closed-loop verdicts are given.
TARGET_CLIENTS = 32
#: The service's req/s over the matched reference's tweets/s (else the ideal's), at
#: ``TARGET_CLIENTS``.
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


@dataclass
class LoadStats:
    """One load generator run (closed loop: :func:`wrk_stats`, open: :func:`load_stats`):
    ``requests`` answered well in the timed window ``duration_s``, ``errors`` (every other
    outcome) by kind, ``req_per_s``, client-side latency percentiles, and the cores used on
    average by the server's process tree and by the load generator."""

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
    """One closed-loop run (wrk): a server configuration at a client count.

    One request is one tweet, so req/s compare with tweets/s. ``ratio``: ``req_per_s /
    reference_tweets_per_s``, the backend's best ideal reference (:class:`ReferenceResult`).
    ``mean_batch``: the service's tweets per model call over the run (its
    ``tweetcls_batch_size`` histogram); ``matched_tweets_per_s``: the backend alone on batches
    of that size (its ``matched`` reference row), ``matched_ratio`` the service's req/s over it.
    CPU per answer: ``server_cpu_s_per_request`` (the server's process tree) against
    ``backend_cpu_s_per_tweet`` (the matched reference), ``cpu_ratio`` the first over the
    second. ``meets_target``: at ``TARGET_CLIENTS`` clients, ``matched_ratio`` (else
    ``ratio``) ``>= TARGET_RATIO`` with 0 errors (``None`` at other client counts or without a
    reference). ``backend`` is ``minimal`` for the baseline app.
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
    mean_batch: float | None = None
    server_cpu_s_per_request: float | None = None
    matched_tweets_per_s: float | None = None
    matched_ratio: float | None = None
    backend_cpu_s_per_tweet: float | None = None
    cpu_ratio: float | None = None
    repeat: int = 0


@dataclass
class ReferenceResult:
    """The backend alone (no HTTP, ``_serve_reference.py``): ``processes`` at once with
    ``threads`` each (``None``: the runtime's default), batches of ``batch`` tweets (matched:
    the mean) cut from the pool ``sorted`` by token count or drawn at random, scored under
    ``max_batch_tokens``; the ``tweets`` timed, ``tweets_per_s`` (the sum of
    ``process_tweets_per_s``), ``padding`` (padded over real tokens, per chunk) and
    ``cpu_s_per_tweet`` (all threads). ``clients``: of a matched row, the client count whose
    micro-batches it replays (None: ideal)."""

    backend: str
    processes: int
    threads: int | None
    batch: float
    sorted: bool
    tweets: int
    tweets_per_s: float
    padding: float
    process_tweets_per_s: list[float] = field(default_factory=list)
    max_batch_tokens: int = 0
    cpu_s_per_tweet: float | None = None
    clients: int | None = None


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
    """Model latency of one backend at batch 1 (``predict_proba`` on one tweet): ``reps`` timed
    calls over all rounds, their median and 90th percentile, and each round's median."""

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
    repeat: int = 0


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
    matched: list[ReferenceResult] = field(default_factory=list)
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
        "ratio_to": "matched reference, else the ideal",
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


def wrk_stats(raw: dict[str, Any]) -> dict[str, Any]:
    """The :class:`LoadStats` fields of a wrk run (``_serve_server.run_wrk``); errors are
    answers with status >= 400 and socket errors, requests the other answers."""
    kinds = {k: raw[k] for k in ("http_errors", "connect", "read", "write", "timeout") if raw[k]}
    requests, duration = raw["requests"] - raw["http_errors"], raw["duration_us"] / 1e6
    return {
        "requests": requests,
        "errors": sum(kinds.values()),
        "error_kinds": kinds,
        "duration_s": duration,
        "req_per_s": requests / duration if duration > 0 else 0.0,
        "p50_ms": raw["p50_ms"] if raw["requests"] else float("nan"),
        "p95_ms": raw["p95_ms"] if raw["requests"] else float("nan"),
        "p99_ms": raw["p99_ms"] if raw["requests"] else float("nan"),
        "server_cpu": raw["server_cpu_s"] / raw["wall_s"],
        "client_cpu": raw["client_cpu_s"] / raw["wall_s"],
    }


def load_result(
    backend: str,
    config: Any,
    clients: int,
    raw: dict[str, Any],
    reference: float | None,
    label: str | None = None,
) -> LoadResult:
    """One closed-loop row of ``config`` (a ``ServiceConfig``) from a wrk run, with its ratio
    to the ideal ``reference`` (tweets/s) and its verdict (:func:`judge`)."""
    row = LoadResult(
        backend=backend,
        config=label or config.label,
        workers=config.workers,
        max_batch_tokens=config.max_batch_tokens,
        threads=config.threads,
        clients=clients,
        **wrk_stats(raw),
    )
    if row.requests:
        row.server_cpu_s_per_request = raw["server_cpu_s"] / row.requests
    if reference:
        row.reference_tweets_per_s = reference
        row.ratio = row.req_per_s / reference
    return judge(row)


def match(row: LoadResult, matched: ReferenceResult) -> LoadResult:
    """``row`` with the figures of its matched reference, judged again."""
    row.matched_tweets_per_s = matched.tweets_per_s
    row.matched_ratio = row.req_per_s / matched.tweets_per_s if matched.tweets_per_s else None
    row.backend_cpu_s_per_tweet = matched.cpu_s_per_tweet
    if row.server_cpu_s_per_request is not None and matched.cpu_s_per_tweet:
        row.cpu_ratio = row.server_cpu_s_per_request / matched.cpu_s_per_tweet
    return judge(row)


def judge(row: LoadResult) -> LoadResult:
    """``meets_target`` of ``row`` (see :class:`LoadResult`)."""
    ratio = row.matched_ratio if row.matched_ratio is not None else row.ratio
    if ratio is not None and row.clients == TARGET_CLIENTS:
        row.meets_target = ratio >= TARGET_RATIO and row.errors == 0
    return row


def baseline_rows(load: Sequence[LoadResult], minimal: Sequence[LoadResult]) -> list[BaselineRow]:
    """Each service row against the minimal app's row at the same client count and repeat."""
    by_clients = {(row.repeat, row.clients): row for row in minimal}
    rows = []
    for row in load:
        base = by_clients.get((row.repeat, row.clients))
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
                repeat=row.repeat,
            )
        )
    return rows


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


# ---------------------------------------------------------------- Markdown

VERDICT = {None: "", True: "PASS", False: "FAIL"}


def cell(value: Any) -> str:
    """A table cell: ``-`` for None or NaN; floats to 3 significant digits (whole from 100)."""
    if isinstance(value, list):
        return " ".join(cell(v) for v in value)
    if value is None or value != value:
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return str(value)


def table(title: str, rows: Sequence[Any], fields: str) -> list[str]:
    """A titled Markdown table of ``rows`` (dataclasses or dicts), one column per name of the
    space-separated ``fields``; ``meets_target`` as PASS/FAIL; nothing without rows."""
    if not rows:
        return []
    names = fields.split()
    lines = ["", title, "", f"| {' | '.join(names)} |", "|" + "---|" * len(names)]
    for row in rows:
        values = row if isinstance(row, dict) else asdict(row)
        values = values | {"meets_target": VERDICT[values.get("meets_target")]}
        lines.append(f"| {' | '.join(cell(values[name]) for name in names)} |")
    return lines


def markdown(report: Report) -> str:
    """The whole report as Markdown: host, then one table per section that ran (columns: the
    JSON's field names)."""
    s, m = report.settings, report.machine
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v and k != "tweetcls")
    lines = [
        f"Serving benchmark: {s['model']} (version {s['model_version']}), {s['tweets']} distinct "
        f"tweets of {s['data']}; closed loop wrk, {s['duration']} s per run after {s['warmup']} s "
        f"warm-up; open loop {s['http']}",
        "",
        f"Host: {m['cpu_model']}; flags: {' '.join(m['cpu_flags']) or 'none of avx2/avx512'}; "
        f"{m['cpus']} CPUs ({m['cpus_usable']} usable, {m['physical_cores']} physical cores); "
        f"load average at start {' '.join(f'{x:.2f}' for x in m['load_average'])}; server CPUs "
        f"{s['server_cpus'] or 'all'}, client CPUs {s['client_cpus'] or 'all'}"
        + (f"; server args `{s['server_args']}`" if s["server_args"] else ""),
        "",
        f"Versions: tweetcls {m['versions']['tweetcls']} (commit {m['commit']}), python "
        f"{m['python']}, {versions}",
    ]
    lines += table(
        "Backend alone (no HTTP; `Backend.score`, tokenization included); clients: `-` for the "
        "ideal cells, else the client count whose micro-batches a matched row replays; threads "
        "`-`: the runtime's default:",
        report.reference + report.matched,
        "backend clients processes threads batch sorted max_batch_tokens tweets_per_s padding "
        "cpu_s_per_tweet",
    )
    lines += [
        f"Reference {b}: {x['tweets_per_s']:.0f} tweets/s ({x['processes']} x "
        f"{x['threads'] or 'auto'} threads, batch {x['batch']} "
        f"{'sorted' if x['sorted'] else 'random'})."
        for b, x in report.reference_best.items()
    ]
    lines += table(
        f"Service, closed loop (wrk; one tweet per request). ratio: req/s over the ideal "
        f"reference, matched_ratio: over the matched one; target at {TARGET_CLIENTS} clients: "
        f"matched_ratio (else ratio) >= {TARGET_RATIO} with 0 errors. config: w<workers>, "
        "batching (requests: --max_batch_tokens 0; tokens<T>), t<threads per worker>; CPU in "
        "cores (client: wrk):",
        report.load,
        "backend config repeat clients requests req_per_s p50_ms p95_ms p99_ms errors "
        "server_cpu client_cpu mean_batch ratio matched_ratio server_cpu_s_per_request "
        "backend_cpu_s_per_tweet cpu_ratio meets_target",
    )
    lines += table(
        f"Service against a minimal FastAPI app (same request model, constant answer; target "
        f"ratio >= {TARGET_BASELINE_RATIO} with 0 errors):",
        report.baseline,
        "backend config repeat clients service_req_per_s minimal_req_per_s ratio meets_target",
    )
    steps = [
        asdict(o)
        | {"steps": ", ".join(f"{x.rate:.0f} {x.outcome} ({cell(x.p99_ms)})" for x in o.steps)}
        for o in report.open_loop
    ]
    lines += table(
        f"Open loop (Poisson arrivals), capacity = highest rate with 0 errors and p99 <= "
        f"{CAPACITY_P99_MS:.0f} ms; steps: req/s outcome (p99 ms):",
        steps,
        "backend config capacity_rate limited_by steps",
    )
    lines += table(
        f"Open loop at fixed loads (target: {TARGET_OPEN_BACKEND} at {TARGET_LOAD:.0%}: p99 <= "
        f"{TARGET_OPEN_P99_MS:.0f} ms, 0 errors; latency from the scheduled arrival; late: sent "
        "over --late_ms after it; dropped: not sent, every pool connection busy; shed: 503):",
        [
            {"backend": o.backend, "config": o.config} | asdict(r)
            for o in report.open_loop
            for r in o.runs
        ],
        "backend config label rate max_queue sent late dropped req_per_s p50_ms p95_ms p99_ms "
        "errors shed retry_after meets_target",
    )
    lines += [
        f"Overload {o.backend} {o.config} (--max_queue {o.overload_max_queue}"
        f"{' ' * bool(o.overload_args)}{o.overload_args}): share answered 503 "
        f"{cell(o.shed_share)} (with Retry-After {cell(o.retry_after_share)}), p99 of the 200s "
        f"{cell(o.overload_p99_ms)} ms, {o.overload_other_errors} other errors."
        for o in report.open_loop
        if o.overload_max_queue is not None
    ]
    lines += table(
        "Batch-1 model latency:", report.model_latency,
        "backend reps median_ms p90_ms round_medians_ms",
    )  # fmt: skip
    if report.int8_speedup is not None:
        met = VERDICT[report.int8_speedup >= TARGET_INT8_SPEEDUP]
        low, high = min(report.int8_speedup_rounds), max(report.int8_speedup_rounds)
        lines += [
            "",
            f"onnx-int8 vs pytorch at batch 1: {report.int8_speedup:.2f}x (rounds "
            f"{low:.2f}-{high:.2f}x; target >= {TARGET_INT8_SPEEDUP}x: {met})",
        ]
    return "\n".join(lines)
