"""Benchmark the prediction service against the backend's own throughput, in one run.

Hosts differ about 3x in speed, so every verdict here is a ratio of two figures measured in
the same run on the same cores; the CPU model and its AVX2/AVX-512/VNNI flags are printed with
them. For each backend of ``--backends`` (``onnx-int8``, ``onnx``, ``pytorch``):

1. **Model latency at batch 1** (skip: ``--skip_latency``): all backends loaded in this
   process, ``predict_proba`` on one tweet at a time, ``--latency_reps`` calls per backend in
   ``--latency_rounds`` rounds, the backends' order rotated each round; the int8 / PyTorch
   speed-up (target >= 2.5x) with its per-round spread.
2. **Reference throughput** (skip: ``--skip_reference``; ``_serve_reference.py``): the
   backend alone, no HTTP, in one process with all cores and in one single-thread process per
   CPU at once; length-sorted batches of ``--reference_batches`` and shuffled ones of
   ``--reference_unsorted`` (the padding cost). The reference is the best of these tweets/s.
3. **Closed-loop HTTP load** (skip: ``--skip_closed_loop``): for each service configuration of
   the grid ``--workers`` x ``--batching`` (``requests``: ``--max_batch_tokens 0``;
   ``tokens``: ``--max_batch_tokens`` = ``--max_batch_tokens``) x ``--server_threads``, the
   service is started exactly as deployed (``python -m tweetcls serve``, the command line of
   ``tweetcls.serving.command.serve_argv``, request log to a temporary SQLite file) and used
   once ``GET /ready`` answers 200 (``2 x workers - 1`` times in a row). For each
   ``--clients`` count a load generator (``_serve_load.py``, a separate lean process) sends
   single-tweet ``POST /predict`` requests in closed loop over distinct real tweets of
   ``--data``, ``--warmup`` s unrecorded, then ``--duration`` s. Reported: requests, req/s,
   client-side p50/p95/p99, errors, server and client CPU (cores), and the ratio of req/s to
   the backend's reference tweets/s (one request is one tweet). Target at 32 clients: ratio
   >= 0.95 with 0 errors (PASS/FAIL).
4. **Baseline** (``--baseline``; pass ``--model`` a tiny bundle so that the model costs little):
   the same client counts against a minimal FastAPI app (``_serve_baseline_app.py``: the
   service's request model, a constant answer, uvicorn with uvloop/httptools, no access log);
   the ratio tweetcls / minimal req/s shows the service's own per-request cost (target >= 0.5).
5. **Open loop** (``--open_loop``; ``_serve_openloop.py``): Poisson arrivals; per backend and
   configuration the capacity (highest rate with 0 errors and p99 <= 1 s: a geometric ramp,
   then bisection over short steps), then 50% and 80% of it (target for onnx-int8 at 80%: p99
   <= 50 ms) and 150% on a server restarted with ``--max_queue`` = ``--server_max_queue``: the
   share shed with 503 (and with Retry-After), the p99 of the 200s, the other errors.

CPU sharing: the load generator runs on the same machine and takes CPU the server could use
(its share is printed); the reference has no such client. ``--server_cpus``/``--client_cpus``
pin them (the reference runs on the server's CPUs).

Run from the repository root (offline), on an otherwise idle machine::

    python -m tweetcls export --model runs/pipeline/model --out runs/pipeline/serving
    python scripts/bench_serve.py --model runs/pipeline/serving --json reports/bench_serve.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the _serve_*.py helpers
from _bench_common import free_port
from _serve_latency import int8_speedup, model_latency
from _serve_load import http_library
from _serve_markdown import markdown
from _serve_openloop import capacity_and_loads, overload
from _serve_reference import best, cells, measure
from _serve_report import (
    TARGET_CLIENTS,
    OpenLoopResult,
    Report,
    baseline_rows,
    host_info,
    load_result,
    targets,
    to_json,
)
from _serve_server import (
    ServerError,
    ServiceConfig,
    baseline_command,
    check_alive,
    parse_cpus,
    pinned,
    progress,
    run_client,
    running_server,
    serve_command,
)

from tweetcls.core.atomic import write_text
from tweetcls.core.bundle import BACKENDS
from tweetcls.core.errors import ConfigError, TweetclsError
from tweetcls.serving.tweets import Tweet, read_tweets, tweet_body

__all__ = ["ConfigError", "ServerError", "main"]


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
    closed = parser.add_argument_group("closed loop")
    closed.add_argument(
        "--clients", nargs="+", type=int, default=[1, 8, TARGET_CLIENTS], help="client counts"
    )
    closed.add_argument("--duration", type=float, default=10.0, help="measured s per run")
    closed.add_argument("--warmup", type=float, default=2.0, help="unmeasured s before a run")
    closed.add_argument("--skip_closed_loop", action="store_true", help="no closed-loop runs")
    closed.add_argument("--baseline", action="store_true", help="also the minimal FastAPI app")
    ref = parser.add_argument_group("reference throughput")
    ref.add_argument("--skip_reference", action="store_true", help="no reference (no ratios)")
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
        "--http", choices=("auto", "aiohttp", "httpx"), default="auto", help="client library"
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
    for name in ("tweets", "latency_reps", "latency_rounds", "pool", "server_max_queue"):
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


def measure_service(
    report: Report,
    args: argparse.Namespace,
    backend: str,
    config: ServiceConfig,
    bodies: Sequence[bytes],
    tmp: Path,
    number: int,
) -> None:
    """Closed-loop rows and, with ``--open_loop``, the open-loop result of one server."""
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
        return server, f"{url}/predict", log

    def driver(url: str, proc: Any, log: Path) -> Any:
        def drive(**kwargs: Any) -> dict[str, Any]:
            raw = run_client(url, bodies, args, proc.pid, **kwargs)
            check_alive(proc, log)
            return raw

        return drive

    server, url, log = start(None, "main")
    with server as proc:
        if not args.skip_closed_loop:
            for clients in args.clients:
                raw = driver(url, proc, log)(clients=clients)
                report.load.append(load_result(backend, config, clients, raw, reference))
        if args.open_loop:
            result = capacity_and_loads(backend, config.label, driver(url, proc, log), args)
            report.open_loop.append(result)
    if result is not None and result.capacity_rate > 0:
        server, url, log = start(args.server_max_queue, "overload")
        with server as proc:
            overload(result, driver(url, proc, log), args)


def measure_minimal(
    report: Report, args: argparse.Namespace, bodies: Sequence[bytes], tmp: Path
) -> None:
    """The minimal app at every client count (``--baseline``)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / "minimal.log"
    with running_server(
        baseline_command(port), f"{url}/ready", log, args.startup_timeout, args.server_cpus
    ) as proc:
        for clients in args.clients:
            raw = run_client(f"{url}/predict", bodies, args, proc.pid, clients=clients)
            check_alive(proc, log)
            row = load_result("minimal", ServiceConfig(), clients, raw, None, "minimal app")
            report.minimal.append(row)
    report.baseline = baseline_rows(report.load, report.minimal)


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
        machine=host_info(),
        targets=targets(),
    )
    with tempfile.TemporaryDirectory(prefix="bench_serve.") as tmp_name:
        tmp = Path(tmp_name)
        if not args.skip_latency:
            progress("batch-1 model latency")
            with pinned(args.server_cpus):
                report.model_latency = model_latency(
                    args.model, args.backends, tweets, args.latency_reps,
                    args.latency_rounds, args.server_threads[0],
                )  # fmt: skip
        if not args.skip_reference:
            processes = len(args.server_cpus or os.sched_getaffinity(0))
            cell_list = cells(args.reference_batches, args.reference_unsorted)
            with pinned(args.server_cpus):
                for backend in args.backends:
                    progress(f"reference {backend}: 1 process, then {processes} processes")
                    report.reference += measure(
                        args.model, backend, tweets, processes, cell_list,
                        args.reference_warmup, args.reference_duration, tmp,
                        startup_timeout=args.startup_timeout,
                    )  # fmt: skip
            report.reference_best = best(report.reference)
        if not args.skip_closed_loop or args.open_loop:
            number = itertools.count()
            for backend in args.backends:
                for config in service_configs(args):
                    measure_service(report, args, backend, config, bodies, tmp, next(number))
        if args.baseline:
            measure_minimal(report, args, bodies, tmp)
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
