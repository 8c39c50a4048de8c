"""The Markdown printout of ``bench_serve.py``: host line, then one table per section."""

from __future__ import annotations

from _serve_report import (
    CAPACITY_P99_MS,
    TARGET_BASELINE_RATIO,
    TARGET_CLIENTS,
    TARGET_INT8_SPEEDUP,
    TARGET_LOAD,
    TARGET_OPEN_BACKEND,
    TARGET_OPEN_P99_MS,
    TARGET_RATIO,
    Report,
)

VERDICT = {None: "", True: "PASS", False: "FAIL"}


def _num(value: float | None, digits: int = 0) -> str:
    """``value`` with ``digits`` decimals; ``-`` for None or NaN."""
    if value is None or value != value:
        return "-"
    return f"{value:.{digits}f}"


def _share(part: float | None) -> str:
    return "-" if part is None else f"{part:.1%}"


def header(report: Report) -> list[str]:
    """What was run, and on what."""
    s, m = report.settings, report.machine
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v and k != "tweetcls")
    return [
        f"Serving benchmark: {s['model']} (version {s['model_version']}), {s['tweets']} "
        f"distinct tweets of {s['data']}; {s['duration']} s per run after {s['warmup']} s "
        f"warm-up; client {s['http']}",
        "",
        f"Host: {m['cpu_model']}; flags: {' '.join(m['cpu_flags']) or 'none of avx2/avx512'}; "
        f"{m['cpus']} CPUs ({m['cpus_usable']} usable, {m['physical_cores']} physical cores); "
        f"load average at start {' '.join(f'{x:.2f}' for x in m['load_average'])}; "
        f"server CPUs {s['server_cpus'] or 'all'}, client CPUs {s['client_cpus'] or 'all'}"
        + (f"; server args `{s['server_args']}`" if s["server_args"] else ""),
        "",
        f"Versions: tweetcls {m['versions']['tweetcls']} (commit {m['commit']}), python "
        f"{m['python']}, {versions}",
    ]


def reference_table(report: Report) -> list[str]:
    """Reference throughput per backend and cell, and the best of each backend."""
    if not report.reference:
        return []
    lines = [
        "",
        "Reference throughput (backend alone, no HTTP; `predict_proba` incl. tokenization):",
        "",
        "| backend | processes x threads | batch | batches | tweets/s | padded / real tokens "
        "| of best |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    for r in report.reference:
        top = report.reference_best[r.backend]["tweets_per_s"]
        lines.append(
            f"| {r.backend} | {r.processes} x {r.threads or 'auto'} | {r.batch} "
            f"| {'sorted' if r.sorted else 'random'} | {r.tweets_per_s:.0f} | {r.padding:.2f} "
            f"| {r.tweets_per_s / top if top else 0:.2f} |"
        )
    lines.append("")
    for backend, b in report.reference_best.items():
        lines.append(
            f"Reference {backend}: {b['tweets_per_s']:.0f} tweets/s ({b['processes']} x "
            f"{b['threads'] or 'auto'} threads, batch {b['batch']} "
            f"{'sorted' if b['sorted'] else 'random'})."
        )
    return lines


def load_table(report: Report) -> list[str]:
    """Closed-loop rows with their ratio to the reference and the verdict."""
    if not report.load:
        return []
    lines = [
        "",
        "Service, closed loop (one tweet per request, so req/s compare with tweets/s):",
        "",
        "| backend | config | clients | requests | req/s | p50 ms | p95 ms | p99 ms | errors "
        "| server CPU | client CPU | service / reference | target |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in report.load:
        lines.append(
            f"| {r.backend} | {r.config} | {r.clients} | {r.requests} | {r.req_per_s:.0f} "
            f"| {_num(r.p50_ms, 1)} | {_num(r.p95_ms, 1)} | {_num(r.p99_ms, 1)} | {r.errors} "
            f"| {r.server_cpu:.2f} | {r.client_cpu:.2f} | {_num(r.ratio, 2)} "
            f"| {VERDICT[r.meets_target]} |"
        )
    lines += [
        "",
        f"Target at {TARGET_CLIENTS} clients: service / reference >= {TARGET_RATIO} with 0 "
        "errors. config: w<workers>, batching (requests: --max_batch_tokens 0; tokens<T>), "
        "t<threads per worker>. CPU columns: cores used on average.",
    ]
    return lines


def baseline_table(report: Report) -> list[str]:
    """``--baseline``: tweetcls against the minimal app, client count by client count."""
    if not report.minimal:
        return []
    minimal = {r.clients: r for r in report.minimal}
    lines = [
        "",
        "Service against a minimal FastAPI app (same request model, constant answer, same "
        "uvicorn settings):",
        "",
        "| backend | config | clients | tweetcls req/s | minimal req/s | minimal p99 ms "
        "| tweetcls / minimal | target |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for b in report.baseline:
        lines.append(
            f"| {b.backend} | {b.config} | {b.clients} | {b.service_req_per_s:.0f} "
            f"| {b.minimal_req_per_s:.0f} | {_num(minimal[b.clients].p99_ms, 1)} "
            f"| {b.ratio:.2f} | {VERDICT[b.meets_target]} |"
        )
    lines += ["", f"Target: tweetcls / minimal >= {TARGET_BASELINE_RATIO} with 0 errors."]
    return lines


def open_loop_tables(report: Report) -> list[str]:
    """Capacity per configuration, then the fixed-load runs."""
    if not report.open_loop:
        return []
    lines = [
        "",
        f"Open loop (Poisson arrivals), capacity = highest rate with 0 errors and p99 <= "
        f"{CAPACITY_P99_MS:.0f} ms:",
        "",
        "| backend | config | capacity req/s | limited by | steps: req/s outcome (p99 ms) |",
        "|---|---|---:|---|---|",
    ]
    for o in report.open_loop:
        steps = ", ".join(f"{s.rate:.0f} {s.outcome} ({_num(s.p99_ms)})" for s in o.steps)
        lines.append(
            f"| {o.backend} | {o.config} | {o.capacity_rate:.0f} | {o.limited_by} | {steps} |"
        )
    lines += [
        "",
        "| backend | config | load | rate req/s | max queue | sent | late | dropped | 200/s "
        "| p50 ms | p95 ms | p99 ms | 503 | with Retry-After | other errors | target |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for o in report.open_loop:
        for r in o.runs:
            lines.append(
                f"| {o.backend} | {o.config} | {r.label} | {r.rate:.0f} "
                f"| {r.max_queue or 'default'} | {r.sent} | {r.late} | {r.dropped} "
                f"| {r.req_per_s:.0f} | {_num(r.p50_ms, 1)} | {_num(r.p95_ms, 1)} "
                f"| {_num(r.p99_ms, 1)} | {r.shed} | {r.retry_after} | {r.errors - r.shed} "
                f"| {VERDICT[r.meets_target]} |"
            )
    lines += [
        "",
        f"Target: {TARGET_OPEN_BACKEND} at {TARGET_LOAD:.0%} of capacity: p99 <= "
        f"{TARGET_OPEN_P99_MS:.0f} ms, 0 errors. Latency from the scheduled arrival time; "
        "late: sent over --late_ms after it; dropped: not sent, every pool connection busy.",
    ]
    for o in report.open_loop:
        if o.overload_max_queue is not None:
            lines.append(
                f"Overload {o.backend} {o.config} (--max_queue {o.overload_max_queue}"
                f"{' ' + o.overload_args if o.overload_args else ''}): "
                f"{_share(o.shed_share)} answered 503 ({_share(o.retry_after_share)} with "
                f"Retry-After), p99 of the 200s {_num(o.overload_p99_ms, 1)} ms, "
                f"{o.overload_other_errors} other errors."
            )
    return lines


def latency_table(report: Report) -> list[str]:
    """Batch-1 model latency and the int8 speed-up."""
    if not report.model_latency:
        return []
    lines = [
        "",
        "| backend | batch-1 latency median ms | p90 ms | median ms per round |",
        "|---|---:|---:|---|",
    ]
    lines += [
        f"| {r.backend} | {r.median_ms:.2f} | {r.p90_ms:.2f} "
        f"| {' '.join(f'{m:.2f}' for m in r.round_medians_ms)} |"
        for r in report.model_latency
    ]
    if report.int8_speedup is not None:
        met = "PASS" if report.int8_speedup >= TARGET_INT8_SPEEDUP else "FAIL"
        spread = report.int8_speedup_rounds
        lines += [
            "",
            f"onnx-int8 vs pytorch at batch 1: {report.int8_speedup:.2f}x "
            f"(rounds {min(spread):.2f}-{max(spread):.2f}x; "
            f"target >= {TARGET_INT8_SPEEDUP}x: {met})",
        ]
    return lines


def markdown(report: Report) -> str:
    """The whole report as Markdown."""
    sections = (reference_table, load_table, baseline_table, open_loop_tables, latency_table)
    lines = header(report)
    for section in sections:
        lines += section(report)
    return "\n".join(lines)
