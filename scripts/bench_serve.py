"""Benchmark the prediction service: HTTP load per backend and client count, and model latency.

For the backends (``onnx-int8``, ``onnx``, ``pytorch``; ``--backends``):

1. **Model latency at batch 1**: all backends are loaded in this process
   (``tweetcls.inference.backends.load_backend``) and ``predict_proba`` runs on one tweet at a
   time, ``--latency-reps`` times per backend over distinct real tweets, split into
   ``--latency-rounds`` rounds; each round times every backend on the same tweets, in rotated
   order, so that a machine whose speed drifts (a shared VM) affects all backends alike. The
   median over all rounds and each round's median are reported. The target is int8 >= 2.5x
   faster than PyTorch eager at batch 1; the per-round ratios give its spread.
2. **HTTP load**, one backend at a time: the service is started exactly as deployed,
   ``python -m tweetcls serve --model DIR --backend B --port P`` (a subprocess, command line
   from ``tweetcls.serving.command.serve_argv``, request log to a temporary SQLite file), and is
   used once ``GET /ready`` answers 200. For each client count
   (``--clients``, default 1 8 32) a load generator sends single-tweet ``POST /predict``
   requests in closed loop (each client sends its next request when the previous one is
   answered), cycling through distinct real tweets of ``--data`` (default
   ``data/processed/val.csv``, read by ``tweetcls.serving.tweets.read_tweets``), for
   ``--warmup`` seconds (not recorded) and then ``--duration`` seconds. Reported: successful
   requests, req/s, latency p50/p95/p99 (ms, client side, including the HTTP round trip),
   errors (non-200 answers and failed connections), and the CPU used by server and client (in
   cores, averaged over the run).

Targets printed next to the results: at 32 clients >= 600 req/s with p99 <= 50 ms and 0 errors.

Load generator: a separate process (``bench_serve.py client``, JSON spec on stdin, results on
stdout) with uvloop when installed and one keep-alive connection per client, through aiohttp
when installed, else httpx. Request bodies are serialized before the clock starts; the client
records a status and a time per request and nothing else, so it stays lean.

CPU sharing: client and server run on the same machine, so the client takes CPU the server
could use; its share is printed (``client CPU``). By default neither is pinned: the server can
use every core the lean client leaves idle, which is closer to a deployment (clients elsewhere)
than halving the server's cores. On a 2-core machine, pinning (``--server-cpus 0
--client-cpus 1``) isolates the two but measures a 1-core server. ``--server-threads`` sets the
backend's intra-op threads (server and model-latency runs alike; default: the runtime's
choice, one per core).

Run from the repository root (offline), on an otherwise idle machine::

    python -m tweetcls export --model runs/pipeline/model --out runs/pipeline/serving
    python scripts/bench_serve.py --model runs/pipeline/serving --json reports/bench_serve.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tweetcls.core.atomic import write_text
from tweetcls.core.bundle import BACKENDS
from tweetcls.core.errors import ConfigError, TweetclsError
from tweetcls.core.ports import free_port
from tweetcls.serving.tweets import Tweet, read_tweets, tweet_body

# The load generator process runs this file too: numpy, pandas and the serving modules
# (transformers) are imported where the benchmark needs them, not here, so it starts in a
# fraction of a second.

SCRIPT = Path(__file__).resolve()

#: What the service should reach at ``TARGET_CLIENTS`` clients, and the batch-1 speedup of int8.
TARGET_CLIENTS = 32
TARGET_REQ_PER_S = 600.0
TARGET_P99_MS = 50.0
TARGET_INT8_SPEEDUP = 2.5


class ServerError(TweetclsError):
    """The service did not start or died during the benchmark."""


@dataclass
class LoadResult:
    """One load run: a backend at a client count.

    Args:
        backend: Backend the server ran.
        clients: Concurrent closed-loop clients.
        requests: Successful (HTTP 200) requests in the measured window.
        errors: Failed requests in the measured window (non-200 or no answer).
        error_kinds: Failure counts by HTTP status or exception name.
        duration_s: Measured window (first measured start to last measured answer).
        req_per_s: ``requests / duration_s``.
        p50_ms: Median latency of the successful requests.
        p95_ms: 95th percentile latency.
        p99_ms: 99th percentile latency.
        server_cpu: Server CPU time over the measured window (cores).
        client_cpu: Load generator CPU time over the measured window (cores).
        meets_target: At ``TARGET_CLIENTS`` clients: whether req/s, p99 and errors meet the
            targets; ``None`` at other client counts.
    """

    backend: str
    clients: int
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
    meets_target: bool | None = None


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
class Report:
    """Everything one benchmark measured, with its settings and the machine."""

    settings: dict[str, Any]
    machine: dict[str, Any]
    targets: dict[str, float]
    model_latency: list[LatencyResult] = field(default_factory=list)
    load: list[LoadResult] = field(default_factory=list)
    int8_speedup: float | None = None
    int8_speedup_rounds: list[float] = field(default_factory=list)


# ---------------------------------------------------------------- inputs


def load_tweets(path: Path, limit: int) -> list[Tweet]:
    """Up to ``limit`` distinct real tweets of ``--data`` as ``{"text", "keyword"}``."""
    return read_tweets(path, limit, name=f"--data {path}")


def predict_body(tweet: Tweet) -> bytes:
    """The JSON body of a single-tweet ``POST /predict``."""
    return json.dumps(tweet_body(tweet)).encode()


def parse_cpus(value: str) -> set[int]:
    """A CPU list such as ``0``, ``0,1`` or ``0-3`` (argparse type)."""
    cpus: set[int] = set()
    try:
        for part in value.split(","):
            first, _, last = part.partition("-")
            cpus.update(range(int(first), int(last or first) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a CPU list: {value!r} (e.g. 0 or 0,1 or 0-3)"
        ) from None
    available = os.sched_getaffinity(0)
    if not cpus or not cpus <= available:
        raise argparse.ArgumentTypeError(f"CPUs {value!r} not all in {sorted(available)}")
    return cpus


@contextlib.contextmanager
def pinned(cpus: set[int] | None) -> Iterator[None]:
    """Run the block (and the processes it starts, which inherit it) on ``cpus``."""
    if cpus is None:
        yield
        return
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


# ---------------------------------------------------------------- model latency


def model_latency(
    model: Path,
    backends: Sequence[str],
    tweets: Sequence[Tweet],
    reps: int,
    rounds: int,
    threads: int | None,
    warmup: int = 10,
) -> list[LatencyResult]:
    """Time ``predict_proba`` on one tweet at a time: ``reps`` calls per backend, interleaved.

    All backends are loaded at once and timed in ``rounds`` rounds; each round times every
    backend on the same tweets, in an order rotated from round to round. On a shared machine
    whose speed drifts over minutes, this keeps the backends' ratios fair: each one sees the
    same conditions, and the per-round ratios show the spread.
    """
    import numpy as np
    from transformers.utils import logging as hf_logging

    from tweetcls.core.bundle import load_bundle
    from tweetcls.inference.backends import load_backend

    hf_logging.disable_progress_bar()  # the weight-loading bar of the pytorch backend
    bundle = load_bundle(model)
    engines = {backend: load_backend(bundle, backend, threads) for backend in backends}
    for engine in engines.values():
        for tweet in tweets[:warmup]:
            engine.predict_proba([str(tweet["text"])], [tweet["keyword"]])
    times: dict[str, list[list[float]]] = {backend: [] for backend in backends}
    per_round = -(-reps // rounds)
    for r in range(rounds):
        batch = [tweets[(r * per_round + i) % len(tweets)] for i in range(per_round)]
        for backend in [*backends[r % len(backends) :], *backends[: r % len(backends)]]:
            engine, round_times = engines[backend], []
            for tweet in batch:
                start = time.perf_counter()
                engine.predict_proba([str(tweet["text"])], [tweet["keyword"]])
                round_times.append((time.perf_counter() - start) * 1000)
            times[backend].append(round_times)
    del engines
    gc.collect()
    results = []
    for backend in backends:
        pooled = [t for round_times in times[backend] for t in round_times]
        results.append(
            LatencyResult(
                backend=backend,
                reps=len(pooled),
                median_ms=statistics.median(pooled),
                p90_ms=float(np.percentile(pooled, 90)),
                round_medians_ms=[statistics.median(t) for t in times[backend]],
            )
        )
    return results


def int8_speedup(latency: Sequence[LatencyResult]) -> tuple[float | None, list[float]]:
    """PyTorch's batch-1 median over int8's, overall and per round (None, [] without both)."""
    by_backend = {r.backend: r for r in latency}
    if "onnx-int8" not in by_backend or "pytorch" not in by_backend:
        return None, []
    int8, eager = by_backend["onnx-int8"], by_backend["pytorch"]
    rounds = zip(eager.round_medians_ms, int8.round_medians_ms, strict=True)
    return eager.median_ms / int8.median_ms, [e / i for e, i in rounds]


# ---------------------------------------------------------------- server


def serve_command(
    model: Path, backend: str, port: int, threads: int | None, database_url: str, extra: str
) -> list[str]:
    """The ``python -m tweetcls serve`` command line of one benchmarked server."""
    from tweetcls.serving.command import serve_argv

    command = serve_argv(
        model=model,
        backend=backend,
        host="127.0.0.1",
        port=port,
        database_url=database_url,
        threads=threads,
    )
    return command + shlex.split(extra)


def log_tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file."""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_ready(proc: subprocess.Popen, url: str, log: Path, timeout: float) -> None:
    """Poll ``url`` (``/ready``) until it answers 200; fail if the server exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"server exited with {proc.returncode}:\n{log_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except urllib.error.HTTPError as err:  # e.g. 503 while the model loads
            err.close()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise ServerError(f"{url} not ready after {timeout:.0f} s:\n{log_tail(log)}")


@contextlib.contextmanager
def running_server(
    command: list[str], ready_url: str, log: Path, timeout: float, cpus: set[int] | None
) -> Iterator[subprocess.Popen]:
    """Start the server, wait until it is ready, and stop it (SIGTERM, then SIGKILL)."""
    with log.open("wb") as out, pinned(cpus):
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(proc, ready_url, log, timeout)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- load generator (client side)


async def _drive(spec: dict[str, Any]) -> dict[str, Any]:
    """Closed-loop load: ``clients`` tasks each POST the next body as soon as answered."""
    bodies = [body.encode() for body in spec["bodies"]]
    clients, url, timeout = spec["clients"], spec["url"], spec["timeout"]
    headers = {"content-type": "application/json"}
    use_aiohttp = spec["http"] == "aiohttp"
    if use_aiohttp:
        import aiohttp

        session: Any = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=clients),
            timeout=aiohttp.ClientTimeout(total=timeout),
        )
    else:
        import httpx

        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        session = httpx.AsyncClient(limits=limits, timeout=timeout)

    async def post(body: bytes) -> int:
        if use_aiohttp:
            async with session.post(url, data=body, headers=headers) as answer:
                await answer.read()
                return answer.status
        answer = await session.post(url, content=body, headers=headers)
        return answer.status_code

    start = time.perf_counter()
    measure_from = start + spec["warmup"]
    stop_at = measure_from + spec["duration"]
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    last_end = measure_from
    next_index = 0
    server = psutil.Process(spec["server_pid"])
    cpu_mark: list[tuple[float, float]] = []

    def cpu_seconds() -> tuple[float, float]:
        """CPU seconds used so far by this process and by the server."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        times = server.cpu_times()
        return usage.ru_utime + usage.ru_stime, times.user + times.system

    async def client() -> None:
        nonlocal next_index, last_end
        while (sent := time.perf_counter()) < stop_at:
            body = bodies[next_index % len(bodies)]
            next_index += 1
            try:
                status = await post(body)
                failure = None if status == 200 else str(status)
            except Exception as err:  # any failure to get an answer counts as an error
                failure = type(err).__name__
            done = time.perf_counter()
            if sent >= measure_from:
                last_end = max(last_end, done)
                if failure is None:
                    latencies.append((done - sent) * 1000)
                else:
                    failures[failure] += 1

    async def mark_window_start() -> None:
        await asyncio.sleep(measure_from - time.perf_counter())
        cpu_mark.append(cpu_seconds())

    async with session:
        await asyncio.gather(mark_window_start(), *(client() for _ in range(clients)))
    window = last_end - measure_from
    used = [end - begin for begin, end in zip(cpu_mark[0], cpu_seconds(), strict=True)]
    return {
        "latencies_ms": latencies,
        "failures": dict(failures),
        "duration_s": window,
        "client_cpu": used[0] / window if window > 0 else 0.0,
        "server_cpu": used[1] / window if window > 0 else 0.0,
    }


def client_main() -> None:
    """``bench_serve.py client``: run one load spec (JSON on stdin), print results as JSON."""
    spec = json.load(sys.stdin)
    try:
        import uvloop

        results = uvloop.run(_drive(spec))
    except ImportError:
        results = asyncio.run(_drive(spec))
    json.dump(results, sys.stdout)


def http_library(choice: str) -> str:
    """``aiohttp`` or ``httpx`` for ``--http auto|aiohttp|httpx``."""
    if choice != "auto":
        return choice
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return "httpx"
    return "aiohttp"


def run_load(
    url: str, bodies: Sequence[bytes], clients: int, args: argparse.Namespace, server_pid: int
) -> dict[str, Any]:
    """Run one load spec in a load generator process; return its raw results."""
    spec = {
        "url": url,
        "server_pid": server_pid,
        "bodies": [body.decode() for body in bodies],
        "clients": clients,
        "warmup": args.warmup,
        "duration": args.duration,
        "timeout": args.request_timeout,
        "http": args.http,
    }
    with pinned(args.client_cpus):
        proc = subprocess.run(
            [sys.executable, str(SCRIPT), "client"],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            timeout=args.warmup + args.duration + args.request_timeout + 120,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def summarize(backend: str, clients: int, raw: dict[str, Any]) -> LoadResult:
    """Percentiles and rates of one load run."""
    import numpy as np

    latencies = np.asarray(raw["latencies_ms"], dtype=float)
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99]) if latencies.size else (np.nan,) * 3
    errors = sum(raw["failures"].values())
    duration = raw["duration_s"]
    result = LoadResult(
        backend=backend,
        clients=clients,
        requests=int(latencies.size),
        errors=errors,
        error_kinds=raw["failures"],
        duration_s=duration,
        req_per_s=latencies.size / duration if duration > 0 else 0.0,
        p50_ms=float(p50),
        p95_ms=float(p95),
        p99_ms=float(p99),
        server_cpu=raw["server_cpu"],
        client_cpu=raw["client_cpu"],
    )
    if clients == TARGET_CLIENTS:
        result.meets_target = (
            result.req_per_s >= TARGET_REQ_PER_S and result.p99_ms <= TARGET_P99_MS and errors == 0
        )
    return result


# ---------------------------------------------------------------- report


def markdown(report: Report) -> str:
    """The results as Markdown tables, with the targets."""
    s = report.settings
    lines = [
        f"Serving benchmark: {s['model']} (version {s['model_version']}), "
        f"{report.machine['cpus']} CPUs, {s['duration']} s per run after {s['warmup']} s warm-up, "
        f"client {s['http']}, server threads {s['server_threads'] or 'default'}, "
        f"server CPUs {s['server_cpus'] or 'all'}, client CPUs {s['client_cpus'] or 'all'}",
        "",
        "| backend | clients | requests | req/s | p50 ms | p95 ms | p99 ms | errors "
        "| server CPU | client CPU | target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in report.load:
        target = {None: "", True: "met", False: "missed"}[r.meets_target]
        lines.append(
            f"| {r.backend} | {r.clients} | {r.requests} | {r.req_per_s:.0f} | {r.p50_ms:.1f} "
            f"| {r.p95_ms:.1f} | {r.p99_ms:.1f} | {r.errors} | {r.server_cpu:.2f} "
            f"| {r.client_cpu:.2f} | {target} |"
        )
    lines += [
        "",
        f"Target at {TARGET_CLIENTS} clients: >= {TARGET_REQ_PER_S:.0f} req/s, "
        f"p99 <= {TARGET_P99_MS:.0f} ms, 0 errors. CPU columns: cores used on average.",
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
        met = "met" if report.int8_speedup >= TARGET_INT8_SPEEDUP else "missed"
        spread = report.int8_speedup_rounds
        lines += [
            "",
            f"onnx-int8 vs pytorch at batch 1: {report.int8_speedup:.2f}x "
            f"(rounds {min(spread):.2f}-{max(spread):.2f}x; "
            f"target >= {TARGET_INT8_SPEEDUP}x: {met})",
        ]
    return "\n".join(lines)


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


# ---------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description="Benchmark `tweetcls serve`: HTTP load per backend and client count, "
        "and batch-1 model latency.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", type=Path, required=True, help="serving bundle directory")
    parser.add_argument(
        "--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS), help="backends to run"
    )
    parser.add_argument(
        "--clients", nargs="+", type=int, default=[1, 8, TARGET_CLIENTS], help="concurrent clients"
    )
    parser.add_argument("--duration", type=float, default=10.0, help="measured s per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured s before each run")
    parser.add_argument(
        "--data", type=Path, default=Path("data/processed/val.csv"), help="tweets to send"
    )
    parser.add_argument("--tweets", type=int, default=2000, help="distinct tweets to cycle")
    parser.add_argument(
        "--latency-reps", type=int, default=200, help="batch-1 timed calls per backend"
    )
    parser.add_argument(
        "--latency-rounds",
        type=int,
        default=5,
        help="rounds the batch-1 calls are split into, backends interleaved in each",
    )
    parser.add_argument("--server-threads", type=int, help="backend intra-op threads")
    parser.add_argument("--server-cpus", type=parse_cpus, help="pin the server, e.g. 0")
    parser.add_argument("--client-cpus", type=parse_cpus, help="pin the load generator, e.g. 1")
    parser.add_argument(
        "--server-args", default="", help="extra `tweetcls serve` arguments, e.g. '--max_wait_ms 5'"
    )
    parser.add_argument(
        "--http", choices=("auto", "aiohttp", "httpx"), default="auto", help="client library"
    )
    parser.add_argument("--request-timeout", type=float, default=10.0, help="s per request")
    parser.add_argument("--startup-timeout", type=float, default=120.0, help="s to /ready")
    parser.add_argument("--skip-latency", action="store_true", help="no batch-1 model latency")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser


def check_args(args: argparse.Namespace) -> None:
    """Reject values that cannot give a measurement."""
    for name in ("duration", "request_timeout", "startup_timeout"):
        if getattr(args, name) <= 0:
            raise ConfigError(f"--{name.replace('_', '-')}: must be > 0")
    if args.warmup < 0:
        raise ConfigError("--warmup: must be >= 0")
    if any(c < 1 for c in args.clients):
        raise ConfigError(f"--clients: must be >= 1, got {args.clients}")
    for name in ("tweets", "latency_reps", "latency_rounds"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')}: must be >= 1")
    if args.server_threads is not None and args.server_threads < 1:
        raise ConfigError("--server-threads: must be >= 1")


def run(args: argparse.Namespace) -> Report:
    """Measure every backend of ``args.backends`` (model latency, then HTTP load)."""
    from tweetcls.core.bundle import load_bundle

    check_args(args)
    bundle = load_bundle(args.model)
    tweets = load_tweets(args.data, args.tweets)
    bodies = [predict_body(tweet) for tweet in tweets]
    args.http = http_library(args.http)
    report = Report(
        settings={
            "model": str(args.model),
            "model_version": bundle.version,
            "data": str(args.data),
            "tweets": len(tweets),
            "backends": args.backends,
            "clients": args.clients,
            "duration": args.duration,
            "warmup": args.warmup,
            "http": args.http,
            "server_threads": args.server_threads,
            "server_cpus": sorted(args.server_cpus) if args.server_cpus else None,
            "client_cpus": sorted(args.client_cpus) if args.client_cpus else None,
            "server_args": args.server_args,
        },
        machine={
            "cpus": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        targets={
            "clients": TARGET_CLIENTS,
            "req_per_s": TARGET_REQ_PER_S,
            "p99_ms": TARGET_P99_MS,
            "int8_speedup": TARGET_INT8_SPEEDUP,
        },
    )
    with tempfile.TemporaryDirectory(prefix="bench_serve.") as tmp:
        if not args.skip_latency:
            with pinned(args.server_cpus):
                report.model_latency = model_latency(
                    args.model,
                    args.backends,
                    tweets,
                    args.latency_reps,
                    args.latency_rounds,
                    args.server_threads,
                )
        for backend in args.backends:
            port = free_port()
            log = Path(tmp) / f"server-{backend}.log"
            command = serve_command(
                args.model,
                backend,
                port,
                args.server_threads,
                f"sqlite:///{tmp}/requests-{backend}.db",
                args.server_args,
            )
            base = f"http://127.0.0.1:{port}"
            with running_server(
                command, f"{base}/ready", log, args.startup_timeout, args.server_cpus
            ) as proc:
                for clients in args.clients:
                    raw = run_load(f"{base}/predict", bodies, clients, args, proc.pid)
                    if proc.poll() is not None:
                        raise ServerError(f"server died during the run:\n{log_tail(log)}")
                    report.load.append(summarize(backend, clients, raw))
    report.int8_speedup, report.int8_speedup_rounds = int8_speedup(report.model_latency)
    return report


def main(argv: list[str] | None = None) -> Report:
    """Run the benchmark, print the Markdown tables, optionally write JSON; return the report."""
    args = build_parser().parse_args(argv)
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
    if sys.argv[1:2] == ["client"]:
        client_main()
    else:
        main()
