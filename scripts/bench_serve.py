"""Benchmark the prediction service against the backend's own throughput, in one run.

Hosts differ about 3x in speed, so every verdict here is a ratio of two figures measured in
the same run on the same cores, printed with the host (``_bench_common.host_info``). For each
backend of ``--backends`` (``onnx-int8``, ``onnx``, ``pytorch``):

1. **Model latency at batch 1** (skip: ``--skip_latency``; ``_serve_latency.py``):
   ``predict_proba`` on one tweet at a time in interleaved rounds; the int8 / PyTorch
   speed-up (target >= 2.5x) with its per-round spread.
2. **Ideal reference** (skip: ``--skip_reference``; ``_serve_reference.py``): the backend
   alone, no HTTP, on length-sorted (``--reference_batches``) and random
   (``--reference_unsorted``) batches, in one all-threads process and in one single-thread
   process per CPU; the best tweets/s bounds any service.
3. **Closed loop** (skip: ``--skip_closed_loop``): per service configuration of the grid
   ``--workers`` x ``--batching`` (``requests``: ``--max_batch_tokens 0``; ``tokens``:
   ``--max_batch_tokens``) x ``--server_threads``, the service starts as deployed (``python -m
   tweetcls serve``, ``serve_argv``'s command line, request log to a temporary SQLite file);
   at each ``--clients`` count wrk (``-t1 -c<clients>``, ``wrk_predict.lua``: single-tweet
   ``POST /predict`` bodies rotating over distinct real tweets of ``--data``) runs ``--warmup``
   s unrecorded, then ``--duration`` s (wrk takes whole seconds). Reported: req/s,
   p50/p95/p99, errors, the CPU of the server's process tree (psutil) and of wrk
   (``RUSAGE_CHILDREN``), and the service's mean micro-batch size over the run (sum / count of
   its ``tweetcls_batch_size`` histogram, ``GET /metrics`` before and after).
4. **Matched reference** (with 2 and 3): once that server stopped, the backend alone fed what
   it saw at each client count: its workers' processes with its threads each, random batches
   of its mean size from the same tweets, scored by ``Backend.score`` under its
   ``--max_batch_tokens``. Reported: service / matched and service / ideal (a request is one
   tweet), and **CPU per answer**: server CPU s per request, backend CPU s per tweet
   (``time.process_time``), their ratio. Target at 32 clients: service / matched (else /
   ideal) >= 0.95 with 0 errors.
5. **Baseline** (``--baseline``, with a tiny bundle as ``--model``): the same wrk runs against
   a minimal FastAPI app (``_serve_baseline_app.py``); tweetcls / minimal >= 0.5.
6. **Open loop** (``--open_loop``; ``_serve_openloop.py``): Poisson arrivals from the Python
   generator ``_serve_load.py`` (no compiled open-loop generator is packaged here); capacity,
   then 50%, 80% (onnx-int8: p99 <= 50 ms) and 150% of it on a bounded queue.

``--repeats N`` runs the closed-loop grid and the baseline N times, alternating (every
configuration once, then again), each on a fresh server; the open loop runs in the first.
The load generator shares the host and takes CPU the server could use (printed); the
references have none. ``--server_cpus``/``--client_cpus`` pin them (the references run on
the server's CPUs). Run from the repository root (offline), on an otherwise idle machine, with
wrk installed (``apt-get install wrk``; ``--wrk`` names another binary)::

    python -m tweetcls export --model runs/pipeline/model --out runs/pipeline/serving
    python scripts/bench_serve.py --model runs/pipeline/serving --json reports/bench_serve.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the _serve_*.py helpers
from _bench_common import free_port, host_info
from _serve_latency import int8_speedup, model_latency
from _serve_load import http_library
from _serve_openloop import capacity_and_loads, overload
from _serve_reference import best, ideal_cells, matched_cell, measure
from _serve_report import (
    TARGET_CLIENTS,
    LoadResult,
    OpenLoopResult,
    Report,
    baseline_rows,
    load_result,
    markdown,
    match,
    targets,
    to_json,
)
from _serve_server import (
    ServerError,
    ServiceConfig,
    baseline_command,
    batch_totals,
    check_alive,
    parse_cpus,
    pinned,
    progress,
    run_client,
    run_wrk,
    running_server,
    serve_command,
)

from tweetcls.core.atomic import write_text
from tweetcls.core.bundle import BACKENDS
from tweetcls.core.errors import ConfigError, TweetclsError
from tweetcls.serving.tweets import Tweet, read_tweets, tweet_body

__all__ = ["ConfigError", "ServerError", "main"]
#: Packages whose versions the report prints.
VERSIONS = (
    "tweetcls", "onnxruntime", "torch", "transformers", "tokenizers", "numpy", "fastapi",
    "pydantic", "uvicorn", "uvloop", "httptools", "aiohttp", "httpx",
)  # fmt: skip


def load_tweets(path: Path, limit: int) -> list[Tweet]:
    """Up to ``limit`` distinct real tweets of ``--data`` as ``{"text", "keyword"}``."""
    return read_tweets(path, limit, name=f"--data {path}")


def predict_body(tweet: Tweet) -> bytes:
    """The JSON body of a single-tweet ``POST /predict``."""
    return json.dumps(tweet_body(tweet)).encode()


# ---------------------------------------------------------------- command line


def threads_value(text: str) -> int | None:
    """argparse type of ``--server_threads``: ``auto`` (the service's default) or >= 1."""
    if text == "auto":
        return None
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 or 'auto', got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line (see the module docstring and scripts/README.md)."""
    parser = argparse.ArgumentParser(
        description="Benchmark `tweetcls serve` against the backend's own throughput "
        "(reference), a minimal FastAPI app (--baseline) and open-loop load (--open_loop).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--model", type=Path, required=True, help="serving bundle directory")
    add("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS), help="backends")
    add("--data", type=Path, default=Path("data/processed/val.csv"), help="tweets to send")
    add("--tweets", type=int, default=2000, help="distinct tweets to cycle")
    add("--json", type=Path, help="also write the results here")
    grid = parser.add_argument_group("service configurations (a grid)")
    grid.add_argument("--workers", nargs="+", type=int, default=[1], help="serve --workers")
    grid.add_argument(
        "--batching", nargs="+", choices=("requests", "tokens"), default=["requests"],
        help="requests: --max_batch_tokens 0; tokens: --max_batch_tokens = --max_batch_tokens",
    )  # fmt: skip
    grid.add_argument("--max_batch_tokens", type=int, default=512, help="of --batching tokens")
    grid.add_argument(
        "--server_threads", nargs="+", type=threads_value,
        help="serve --threads per worker, or 'auto' (None: auto, the service's default); the "
        "first also for the batch-1 latency",
    )  # fmt: skip
    grid.add_argument("--server_args", default="", help="extra serve flags, e.g. '--max_wait_ms 5'")
    closed = parser.add_argument_group("closed loop (wrk)")
    closed.add_argument(
        "--clients", nargs="+", type=int, default=[1, 8, TARGET_CLIENTS], help="client counts"
    )
    closed.add_argument(
        "--duration", type=float, default=10.0, help="measured s per run (wrk: whole seconds)"
    )
    closed.add_argument(
        "--warmup", type=float, default=2.0, help="unmeasured s before a run (wrk: whole s)"
    )
    closed.add_argument("--repeats", type=int, default=1, help="runs of the grid, alternating")
    closed.add_argument("--wrk", default="wrk", help="the wrk binary")
    closed.add_argument("--skip_closed_loop", action="store_true", help="no closed-loop runs")
    closed.add_argument("--baseline", action="store_true", help="also the minimal FastAPI app")
    ref = parser.add_argument_group("reference throughput (ideal and matched)")
    ref.add_argument("--skip_reference", action="store_true", help="no references (no ratios)")
    ref.add_argument(
        "--reference_batches", nargs="+", type=int, default=[1, 8, 16, 32, 64],
        help="batch sizes cut from the pool sorted by length",
    )  # fmt: skip
    ref.add_argument(
        "--reference_unsorted", nargs="*", type=int, default=[32],
        help="batch sizes of random lengths (the padding cost); none: skip",
    )  # fmt: skip
    ref.add_argument("--reference_duration", type=float, default=3.0, help="timed s per cell")
    ref.add_argument("--reference_warmup", type=float, default=1.0, help="untimed s per cell")
    lat = parser.add_argument_group("batch-1 model latency")
    lat.add_argument("--skip_latency", action="store_true", help="no batch-1 model latency")
    lat.add_argument("--latency_reps", type=int, default=200, help="timed calls per backend")
    lat.add_argument("--latency_rounds", type=int, default=5, help="interleaved rounds")
    ol = parser.add_argument_group("open loop")
    ol.add_argument("--open_loop", action="store_true", help="capacity, 50/80/150%% runs")
    ol.add_argument("--start_rate", type=float, default=25.0, help="first step, req/s")
    ol.add_argument("--ramp_factor", type=float, default=2.0, help="geometric ramp factor")
    ol.add_argument("--bisect_steps", type=int, default=4, help="bisections after the ramp")
    ol.add_argument("--max_rate", type=float, default=20000.0, help="ramp ceiling, req/s")
    ol.add_argument("--step_duration", type=float, default=3.0, help="measured s per step")
    ol.add_argument("--step_warmup", type=float, default=0.5, help="unmeasured s per step")
    ol.add_argument("--pool", type=int, default=1024, help="most connections in flight")
    ol.add_argument("--late_ms", type=float, default=10.0, help="sent later counts as late")
    ol.add_argument("--server_max_queue", type=int, default=64, help="serve --max_queue, 150%%")
    ol.add_argument(
        "--overload_args", default="", help="extra serve flags of the 150%% server only, e.g. "
        "'--max_queue_ms 100'",
    )  # fmt: skip
    host = parser.add_argument_group("host and client")
    host.add_argument("--server_cpus", type=parse_cpus, help="pin server and reference, e.g. 0")
    host.add_argument("--client_cpus", type=parse_cpus, help="pin the load generator, e.g. 1")
    host.add_argument(
        "--http", choices=("auto", "aiohttp", "httpx"), default="auto", help="open-loop client"
    )
    host.add_argument("--request_timeout", type=float, default=10.0, help="s per request")
    host.add_argument("--startup_timeout", type=float, default=180.0, help="s to /ready")
    return parser


def check_args(args: argparse.Namespace) -> None:
    """Reject values that cannot give a measurement; fill in ``--server_threads``."""
    args.server_threads = args.server_threads or [None]
    positive = ("duration", "request_timeout", "startup_timeout", "reference_duration")
    positive += ("step_duration", "start_rate", "max_rate", "late_ms")
    for name in positive:
        if getattr(args, name) <= 0:
            raise ConfigError(f"--{name.replace('_', '-')}: must be > 0")
    for name in ("warmup", "reference_warmup", "step_warmup", "bisect_steps"):
        if getattr(args, name) < 0:
            raise ConfigError(f"--{name.replace('_', '-')}: must be >= 0")
    for name in ("tweets", "latency_reps", "latency_rounds", "pool", "server_max_queue", "repeats"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')}: must be >= 1")
    for name in ("clients", "workers", "reference_batches", "reference_unsorted"):
        if any(v < 1 for v in getattr(args, name)):
            raise ConfigError(
                f"--{name.replace('_', '-')}: must be >= 1, got {getattr(args, name)}"
            )
    if args.max_batch_tokens < 1 and "tokens" in args.batching:
        raise ConfigError("--max_batch_tokens: must be >= 1 with --batching tokens")
    if args.ramp_factor <= 1:
        raise ConfigError("--ramp_factor: must be > 1")
    if args.baseline and args.skip_closed_loop:
        raise ConfigError("--baseline compares closed-loop runs: drop --skip_closed_loop")
    if not args.skip_closed_loop and shutil.which(args.wrk) is None:
        raise ConfigError(
            f"--wrk {args.wrk}: not found (the closed loop needs wrk: apt-get install wrk)"
        )


def service_configs(args: argparse.Namespace) -> list[ServiceConfig]:
    """The grid ``--workers`` x ``--batching`` x ``--server_threads``."""
    tokens = {"requests": 0, "tokens": args.max_batch_tokens}
    threads = args.server_threads or [None]
    grid = itertools.product(args.workers, dict.fromkeys(args.batching), threads)
    return [ServiceConfig(w, tokens[b], t) for w, b, t in grid]


# ---------------------------------------------------------------- the run


def settings_of(args: argparse.Namespace, version: str, tweets: int) -> dict[str, Any]:
    """The run's settings, for the report."""
    settings = {k: v for k, v in vars(args).items() if k not in ("server_cpus", "client_cpus")}
    settings |= {
        "model": str(args.model),
        "data": str(args.data),
        "json": str(args.json) if args.json else None,
        "model_version": version,
        "tweets": tweets,
        "configs": [c.label for c in service_configs(args)],
        "server_cpus": sorted(args.server_cpus) if args.server_cpus else None,
        "client_cpus": sorted(args.client_cpus) if args.client_cpus else None,
    }
    return settings


def closed_loop(
    args: argparse.Namespace, url: str, bodies: Path, proc: Any, log: Path, workers: int = 0
) -> list[tuple[int, dict[str, Any], float | None]]:
    """``(clients, wrk's raw results, the service's mean batch or None)`` per ``--clients``;
    ``workers`` 0: a server without ``/metrics`` (the minimal app)."""
    out = []
    for clients in args.clients:
        if round(args.warmup) > 0:
            run_wrk(f"{url}/predict", bodies, clients, round(args.warmup), args, proc.pid)
        before = batch_totals(f"{url}/metrics", workers) if workers else (0.0, 0.0)
        seconds = max(1, round(args.duration))
        raw = run_wrk(f"{url}/predict", bodies, clients, seconds, args, proc.pid)
        check_alive(proc, log)
        after = batch_totals(f"{url}/metrics", workers) if workers else (0.0, 0.0)
        calls = after[1] - before[1]
        out.append((clients, raw, (after[0] - before[0]) / calls if calls > 0 else None))
    return out


def measure_service(
    report: Report,
    args: argparse.Namespace,
    backend: str,
    config: ServiceConfig,
    files: tuple[Sequence[bytes], Path, Sequence[Tweet]],
    tmp: Path,
    number: int,
    repeat: int = 0,
) -> None:
    """Closed-loop rows with their matched references and, with ``--open_loop`` (first repeat),
    the open-loop result of one configuration. ``files``: the bodies, their file (one per
    line, for wrk) and the tweets."""
    bodies, body_file, tweets = files
    reference = report.reference_best.get(backend, {}).get("tweets_per_s")
    result: OpenLoopResult | None = None

    def start(max_queue: int | None, tag: str) -> Any:
        port = free_port()
        log = tmp / f"server-{number}-{tag}.log"
        database = f"sqlite:///{tmp}/requests-{number}-{tag}.db"
        extra = args.server_args + (f" {args.overload_args}" if tag == "overload" else "")
        command = serve_command(args.model, backend, port, database, extra, config, max_queue)
        url = f"http://127.0.0.1:{port}"
        server = running_server(
            command, f"{url}/ready", log, args.startup_timeout, args.server_cpus,
            consecutive=2 * config.workers - 1,
        )  # fmt: skip
        return server, url, log

    def driver(url: str, proc: Any, log: Path) -> Any:
        def drive(**kwargs: Any) -> dict[str, Any]:
            raw = run_client(f"{url}/predict", bodies, args, proc.pid, **kwargs)
            check_alive(proc, log)
            return raw

        return drive

    rows: list[LoadResult] = []
    server, url, log = start(None, "main")
    with server as proc:
        if not args.skip_closed_loop:
            for clients, raw, mean_batch in closed_loop(
                args, url, body_file, proc, log, config.workers
            ):
                rows.append(load_result(backend, config, clients, raw, reference))
                rows[-1].mean_batch, rows[-1].repeat = mean_batch, repeat
        if args.open_loop and repeat == 0:
            result = capacity_and_loads(backend, config.label, driver(url, proc, log), args)
            report.open_loop.append(result)
    report.load += rows
    matched = [r for r in rows if r.mean_batch is not None]
    if not args.skip_reference and matched:
        progress(f"matched reference {backend} {config.label}")
        cpus = len(args.server_cpus or os.sched_getaffinity(0))
        threads = config.threads or (max(1, cpus // config.workers) if config.workers > 1 else None)
        with pinned(args.server_cpus):
            found = measure(
                args.model, backend, tweets, [(config.workers, threads)],
                [matched_cell(r.mean_batch, config.max_batch_tokens) for r in matched],
                args.reference_warmup, args.reference_duration, tmp,
                startup_timeout=args.startup_timeout, clients=[r.clients for r in matched],
            )  # fmt: skip
        report.matched += found
        for row, cell in zip(matched, found, strict=True):
            match(row, cell)
    if result is not None and result.capacity_rate > 0:
        server, url, log = start(args.server_max_queue, "overload")
        with server as proc:
            overload(result, driver(url, proc, log), args)


def measure_minimal(
    report: Report, args: argparse.Namespace, bodies: Path, tmp: Path, repeat: int
) -> None:
    """The minimal app at every client count (``--baseline``)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / "minimal.log"
    with running_server(
        baseline_command(port), f"{url}/ready", log, args.startup_timeout, args.server_cpus
    ) as proc:
        for clients, raw, _ in closed_loop(args, url, bodies, proc, log):
            row = load_result("minimal", ServiceConfig(), clients, raw, None, "minimal app")
            row.repeat = repeat
            report.minimal.append(row)


def run(args: argparse.Namespace) -> Report:
    """Measure everything the arguments ask for (see the module docstring)."""
    from tweetcls.core.bundle import load_bundle

    check_args(args)
    bundle = load_bundle(args.model)
    tweets = load_tweets(args.data, args.tweets)
    bodies = [predict_body(tweet) for tweet in tweets]
    args.http = http_library(args.http)
    report = Report(
        settings=settings_of(args, bundle.version, len(tweets)),
        machine=host_info(VERSIONS),
        targets=targets(),
    )
    with tempfile.TemporaryDirectory(prefix="bench_serve.") as tmp_name:
        tmp = Path(tmp_name)
        body_file = tmp / "bodies.jsonl"
        body_file.write_bytes(b"\n".join(bodies) + b"\n")
        if not args.skip_latency:
            progress("batch-1 model latency")
            with pinned(args.server_cpus):
                report.model_latency = model_latency(
                    args.model, args.backends, tweets, args.latency_reps,
                    args.latency_rounds, args.server_threads[0],
                )  # fmt: skip
        if not args.skip_reference:
            processes = len(args.server_cpus or os.sched_getaffinity(0))
            cell_list = ideal_cells(args.reference_batches, args.reference_unsorted)
            with pinned(args.server_cpus):
                for backend in args.backends:
                    progress(f"reference {backend}: 1 process, then {processes} processes")
                    report.reference += measure(
                        args.model, backend, tweets, [(1, None), (processes, 1)], cell_list,
                        args.reference_warmup, args.reference_duration, tmp,
                        startup_timeout=args.startup_timeout,
                    )  # fmt: skip
            report.reference_best = best(report.reference)
        number = itertools.count()
        for repeat in range(args.repeats if not args.skip_closed_loop or args.open_loop else 0):
            for backend in args.backends:
                for config in service_configs(args):
                    files = (bodies, body_file, tweets)
                    measure_service(report, args, backend, config, files, tmp, next(number), repeat)
            if args.baseline:
                measure_minimal(report, args, body_file, tmp, repeat)
        report.baseline = baseline_rows(report.load, report.minimal)
    report.int8_speedup, report.int8_speedup_rounds = int8_speedup(report.model_latency)
    return report


def underscore_flags(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``argv`` with the dashed spellings of this script's flags (``--skip-latency``, before
    2026-12-03) as the underscored ones every command uses, and one deprecation line each.

    Deprecated: the dashed spellings go in the next release.
    """
    known = {option for action in parser._actions for option in action.option_strings}
    out = []
    for arg in argv:
        flag, equals, value = arg.partition("=")
        new = "--" + flag[2:].replace("-", "_")
        if flag.startswith("--") and flag not in known and new in known:
            print(f"bench_serve.py: {flag} is deprecated, use {new}", file=sys.stderr)
            arg = new + equals + value
        out.append(arg)
    return out


def main(argv: list[str] | None = None) -> Report:
    """Run the benchmark, print the Markdown tables, optionally write JSON; return the report."""
    parser = build_parser()
    args = parser.parse_args(underscore_flags(parser, sys.argv[1:] if argv is None else argv))
    try:
        report = run(args)
    except TweetclsError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(markdown(report))
    if args.json is not None:
        write_text(args.json, to_json(report))
    return report


if __name__ == "__main__":
    main()
