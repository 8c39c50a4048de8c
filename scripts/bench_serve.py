"""Benchmark the prediction service against its backend alone, on the same cores in one run.

Per backend: batch-1 model latency, the backend alone (the ideal reference), the service per
configuration under wrk's closed loop beside the backend fed its micro-batches (the matched
reference), a minimal FastAPI app (``--baseline``), Poisson arrivals (``--open_loop``) and the
floor under their latency (``--latency_bound``); the method: docs/serving.md. Prints the main
columns; ``--json``: the whole report::

    python scripts/bench_serve.py --model runs/pipeline/serving --json reports/bench_serve.json
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import itertools
import json
import math
import multiprocessing
import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _bench_common, _serve_workers
import numpy as np
from _bench_common import batch1_latency, free_port, host_info, log, print_table
from _serve_workers import arrival_offsets, reference, tree_cpu
from jsonargparse.typing import NonNegativeFloat, PositiveFloat, PositiveInt

from tweetcls.core.atomic import write_text
from tweetcls.core.bundle import BACKENDS, load_bundle
from tweetcls.core.errors import ConfigError, TweetclsError
from tweetcls.serving.batcher import STAGES
from tweetcls.serving.tweets import Tweet, read_tweets, tweet_body

__all__ = ["ConfigError", "ServerError", "main"]
Row = dict[str, Any]  # a row of the JSON's tables
HERE = Path(__file__).resolve().parent
WORKERS, WRK_SCRIPT = HERE / "_serve_workers.py", HERE / "wrk_predict.lua"
#: The histograms of ``/metrics`` whose sums and counts a run records, and their keys.
HISTOGRAMS = {"tweetcls_batch_size": "batch", "tweetcls_stage_duration_seconds": "{stage}"}
#: Packages whose versions the report records.
VERSIONS = (
    "tweetcls", "onnxruntime", "torch", "transformers", "tokenizers", "numpy", "fastapi",
    "pydantic", "uvicorn", "uvloop", "httptools", "aiohttp", "httpx",
)  # fmt: skip
#: The verdicts' targets (docs/serving.md), as the JSON records them.
TARGETS = {
    "clients": 32, "ratio_to_reference": 0.95, "ratio_to": "matched reference, else the ideal",
    "ratio_to_minimal": 0.5, "capacity_p99_ms": 1000.0, "capacity_p50_growth": [1.5, 5.0],
    "open_loop_loads": [0.5, 0.8, 1.5],
    "open_loop_target_load": 0.8, "open_loop_p99_ms": 50.0, "open_loop_backend": "onnx-int8",
    "int8_speedup": 2.5,
}  # fmt: skip
#: Settings without a flag (no documented run changes them); the JSON's settings hold them.
FIXED = {
    "tweets": 2000, "latency_rounds": 5, "ramp_factor": 2.0, "pool": 1024, "late_ms": 10.0,
    "server_max_queue": 64, "request_timeout": 10.0, "startup_timeout": 180.0, "wrk": "wrk",
    "http": "aiohttp", "bound_rounds": 10, "bound_seconds": 600.0,  # open-loop client; ideal server
}  # fmt: skip
#: The fields of a closed-loop row known only later (None until then), and its repeat.
LOAD_LATER = dict.fromkeys(
    ("reference_tweets_per_s", "ratio", "meets_target", "server_cpu_s_per_request",
     "matched_tweets_per_s", "matched_ratio", "backend_cpu_s_per_tweet", "cpu_ratio")
) | {"repeat": 0}  # fmt: skip
_STARTED, _SERVERS = time.monotonic(), itertools.count()


def progress(message: str) -> None:
    """A progress line on stderr, with the elapsed time."""
    log(f"[bench_serve {time.monotonic() - _STARTED:6.1f} s] {message}")


class ServerError(TweetclsError):
    """The service did not start or died during the benchmark."""


@dataclass(frozen=True)
class ServiceConfig:
    """A configuration of the grid (``max_batch_tokens`` 0: ``requests`` batching; ``threads``
    None: the service's default; ``extra``: one of ``--server_args``)."""

    workers: int = 1
    max_batch_tokens: int = 0
    threads: int | None = None
    extra: str = ""

    @property
    def label(self) -> str:
        """E.g. ``w2 tokens512 t1`` or ``w1 requests t=auto TOKENIZERS_PARALLELISM=false``."""
        batching = f"tokens{self.max_batch_tokens}" if self.max_batch_tokens else "requests"
        return f"w{self.workers} {batching} t{self.threads or '=auto'} {self.extra}".strip()


@contextlib.contextmanager
def pinned(cpus: Sequence[int] | None) -> Iterator[None]:
    """Run the block (and the processes it starts, which inherit it) on ``cpus``."""
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus or saved)
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


def serve_command(
    model: Path,
    backend: str,
    port: int,
    database_url: str,
    extra: str = "",
    config: ServiceConfig | None = None,
    max_queue: int | None = None,
) -> list[str]:
    """``python -m tweetcls serve`` of ``serve_argv`` with ``--workers`` and
    ``--max_batch_tokens`` always, then the configuration's and ``extra`` flags, whose leading
    ``NAME=value`` words set the server's environment (through ``env``)."""
    from tweetcls.serving.command import serve_argv

    c = config or ServiceConfig()
    flags = {"threads": c.threads, "workers": c.workers, "max_batch_tokens": c.max_batch_tokens}
    flags |= {"model": model, "backend": backend, "host": "127.0.0.1", "port": port}
    argv = serve_argv(**flags, database_url=database_url, max_queue=max_queue)
    words = shlex.split(f"{c.extra} {extra}")
    env = list(itertools.takewhile(lambda word: re.fullmatch(r"[A-Za-z_]\w*=.*", word), words))
    return (["env", *env] if env else []) + argv + words[len(env) :]


def baseline_command(port: int) -> list[str]:
    """The minimal FastAPI app of ``--baseline``, served as the service is (uvloop, httptools,
    no access log)."""
    uvicorn = [sys.executable, "-m", "uvicorn", "--factory", "_serve_workers:build_app"]
    options = ["--port", str(port), "--loop", "uvloop", "--http", "httptools"]
    return [*uvicorn, "--app-dir", str(HERE), *options, "--no-access-log", "--log-level", "warning"]


def log_tail(log: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a server's log."""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def check_alive(proc: subprocess.Popen, log: Path, what: str = "died during the run") -> None:
    """Fail, with the end of its log, if the server exited."""
    if proc.poll() is not None:
        raise ServerError(f"server {what} (exit {proc.returncode}):\n{log_tail(log)}")


@dataclass
class Server:
    """A started server: its process, base URL, log and workers (0: no ``/metrics``)."""

    proc: subprocess.Popen
    url: str
    log: Path
    workers: int = 0

    def drive(self, args: argparse.Namespace, bodies: Sequence[bytes], **run: float) -> Row:
        """The raw results of one open-loop run of ``_serve_workers.py load``, with
        :func:`histogram_means` over it."""
        progress(f"load: {run['rate']:.1f} req/s open loop")
        spec = {"url": f"{self.url}/predict", "server_pid": self.proc.pid, "pool": args.pool}
        spec |= {"bodies": [body.decode() for body in bodies], "late_ms": args.late_ms}
        spec |= {"timeout": args.request_timeout} | run
        timeout = run["warmup"] + run["duration"] + args.request_timeout + 120
        before = histogram_totals(self)
        with pinned(args.client_cpus):
            proc = subprocess.run(
                [sys.executable, str(WORKERS), "load"], input=json.dumps(spec), capture_output=True,
                text=True, timeout=timeout,
            )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"load generator failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        check_alive(self.proc, self.log)
        after = histogram_totals(self)
        return json.loads(proc.stdout) | histogram_means(before, after)


@contextlib.contextmanager
def running_server(
    command: Callable[[int], list[str]], args: argparse.Namespace, tmp: Path, workers: int = 0
) -> Iterator[Server]:
    """Start ``command(port)`` (a service of ``workers``; 0: an app without ``/metrics``) on
    ``--server_cpus``, yield it once ``/ready`` answered 200 ``2 x workers - 1`` times in a row
    (several workers: more than one has), then stop it."""
    port, log = free_port(), tmp / f"server-{next(_SERVERS)}.log"
    url, argv = f"http://127.0.0.1:{port}", command(port)
    progress(f"start: {shlex.join(argv[1:])}")
    with log.open("wb") as out, pinned(args.server_cpus):
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline, streak = time.monotonic() + args.startup_timeout, 0
        while streak < max(1, 2 * workers - 1):
            check_alive(proc, log, "exited while starting")
            if time.monotonic() > deadline:
                raise ServerError(f"{url} not ready after {args.startup_timeout:.0f} s, see {log}")
            try:
                with urllib.request.urlopen(f"{url}/ready", timeout=2) as answer:
                    streak = streak + 1 if answer.status == 200 else 0
                    continue
            except OSError as err:  # refused, or e.g. 503 while the model loads
                if isinstance(err, urllib.error.HTTPError):
                    err.close()
            streak = 0
            time.sleep(0.2)
        progress("ready")
        yield Server(proc, url, log, workers)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def parse_wrk(stdout: str) -> Row:
    """The ``wrk_result {json}`` line that ``wrk_predict.lua``'s ``done()`` prints."""
    for line in stdout.splitlines():
        if line.startswith("wrk_result "):
            return json.loads(line.removeprefix("wrk_result "))
    raise RuntimeError(f"wrk printed no result line:\n{stdout[-3000:]}")


def run_wrk(
    url: str, bodies: Path, clients: int, seconds: int, args: argparse.Namespace, server_pid: int
) -> Row:
    """``clients`` connections of one wrk thread for ``seconds``: wrk's result line with
    ``server_cpu_s`` (the server's process tree), ``client_cpu_s`` (wrk) and ``wall_s``."""
    progress(f"load: {clients} clients, {seconds} s (wrk)")
    command = [args.wrk, "-t1", f"-c{clients}", f"-d{seconds}s", "-s", str(WRK_SCRIPT)]
    command += [f"--timeout={math.ceil(args.request_timeout)}s", url, "--", str(bodies)]
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server, start = tree_cpu(server_pid), time.perf_counter()
    with pinned(args.client_cpus):
        proc = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    wall, server = time.perf_counter() - start, tree_cpu(server_pid) - server
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    client = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    return parse_wrk(proc.stdout) | {"server_cpu_s": server, "client_cpu_s": client, "wall_s": wall}


def histogram_totals(server: Server) -> Counter[str]:
    """``/metrics``' sums and counts of the batch size (``batch_sum``, ``batch_count``) and of
    each stage (``model_sum``, ...), over all workers (the distinct figures of 8 scrapes each);
    none for a server without ``/metrics`` (``workers`` 0)."""
    from prometheus_client.parser import text_string_to_metric_families

    seen = set()
    for _ in range(8 * server.workers if server.workers > 1 else server.workers):
        try:
            with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as answer:
                families = list(text_string_to_metric_families(answer.read().decode()))
        except OSError as err:  # a live server that does not answer: its log says why
            check_alive(server.proc, server.log)
            raise ServerError(f"GET /metrics: {err}; log:\n{log_tail(server.log)}") from None
        values = {
            HISTOGRAMS[f.name].format(**s.labels) + s.name.removeprefix(f.name): s.value
            for f in families if f.name in HISTOGRAMS
            for s in f.samples if s.name.endswith(("_sum", "_count"))
        }  # fmt: skip
        seen.add(frozenset(values.items()))
    return sum((Counter(dict(values)) for values in seen), Counter())


def histogram_means(before: Counter[str], after: Counter[str]) -> Row:
    """The mean micro-batch (None: no model call) and milliseconds per stage (``stage_ms``)
    between two :func:`histogram_totals`."""
    d = after - before  # the stages that ran
    stages = {st: 1000 * d[f"{st}_sum"] / d[f"{st}_count"] for st in STAGES if d[f"{st}_count"]}
    batch = d["batch_sum"] / d["batch_count"] if d["batch_count"] else None
    return {"mean_batch": batch, "stage_ms": stages}


def load_result(
    backend: str, config: ServiceConfig, clients: int, raw: Row, reference: float | None = None
) -> Row:
    """A closed-loop row of a wrk run, with its ratio to the ideal ``reference`` tweets/s."""
    kinds = {k: raw[k] for k in ("http_errors", "connect", "read", "write", "timeout") if raw[k]}
    requests, duration = raw["requests"] - raw["http_errors"], raw["duration_us"] / 1e6
    row = {"requests": requests, "errors": sum(kinds.values()), "error_kinds": kinds}
    row |= {"duration_s": duration, "req_per_s": requests / duration if duration > 0 else 0.0}
    row |= {k: raw[k] if raw["requests"] else math.nan for k in ("p50_ms", "p95_ms", "p99_ms")}
    row |= {"server_cpu": raw["server_cpu_s"] / raw["wall_s"]}
    row |= {"client_cpu": raw["client_cpu_s"] / raw["wall_s"], "backend": backend}
    row |= {"config": config.label, "clients": clients} | LOAD_LATER
    row |= {key: raw.get(key) for key in ("mean_batch", "stage_ms")}
    if requests:
        row["server_cpu_s_per_request"] = raw["server_cpu_s"] / requests
    if reference:
        row |= {"reference_tweets_per_s": reference, "ratio": row["req_per_s"] / reference}
    return judge(row)


def match(row: Row, matched: Row) -> Row:
    """``row`` with the figures of its matched reference row, judged again."""
    rate, cpu = matched["tweets_per_s"], matched["cpu_s_per_tweet"]
    row |= {"matched_tweets_per_s": rate, "backend_cpu_s_per_tweet": cpu}
    row["matched_ratio"] = row["req_per_s"] / rate if rate else None
    if row["server_cpu_s_per_request"] is not None and cpu:
        row["cpu_ratio"] = row["server_cpu_s_per_request"] / cpu
    return judge(row)


def judge(row: Row) -> Row:
    """``meets_target``: at 32 clients, ``matched_ratio`` (else ``ratio``) >= 0.95, 0 errors."""
    ratio = row["matched_ratio"] if row["matched_ratio"] is not None else row["ratio"]
    if ratio is not None and row["clients"] == TARGETS["clients"]:
        row["meets_target"] = ratio >= TARGETS["ratio_to_reference"] and row["errors"] == 0
    return row


def baseline_rows(load: Sequence[Row], minimal: Sequence[Row]) -> list[Row]:
    """Each service row against the minimal app's row at the same client count and repeat."""
    by_run = {(row["repeat"], row["clients"]): row for row in minimal}
    rows = []
    for row in load:
        if (base := by_run.get((row["repeat"], row["clients"]))) and base["req_per_s"] > 0:
            ratio = row["req_per_s"] / base["req_per_s"]
            met = ratio >= TARGETS["ratio_to_minimal"] and row["errors"] == 0
            rows.append(
                {k: row[k] for k in ("backend", "config", "clients")}
                | {"service_req_per_s": row["req_per_s"], "minimal_req_per_s": base["req_per_s"]}
                | {"ratio": ratio, "meets_target": met, "repeat": row["repeat"]}
            )
    return rows


def measure(
    args: argparse.Namespace,
    backend: str,
    tweets: Sequence[Tweet],
    groups: Sequence[tuple[int, int | None]],
    cells: Sequence[list],
    clients: Sequence[int] = (),
) -> list[Row]:
    """Every cell ``[batch, sorted, max_batch_tokens]`` in each group of ``(processes,
    threads)`` reference processes (all loaded at once), group after group, with a common start
    and end per cell; a matched cell's row carries its count of ``clients``."""
    spawn, procs = multiprocessing.get_context("spawn"), []
    spec = {"model": str(args.model), "backend": backend, "tweets": list(tweets), "cells": cells}
    layouts = [(g, threads, i) for g, (n, threads) in enumerate(groups) for i in range(n)]

    def answer(k: int) -> Any:
        try:
            return procs[k][1].recv()
        except EOFError:
            procs[k][0].join(30)
            raise RuntimeError(f"reference process exited ({procs[k][0].exitcode})") from None

    try:
        for _, threads, index in layouts:
            conn, child = spawn.Pipe()
            proc = spawn.Process(target=reference, args=(child, spec, threads, index))
            proc.start()
            procs.append((proc, conn))
            child.close()  # the parent's copy: recv() fails once the process is gone
        for k in range(len(procs)):
            answer(k)  # loaded
        results = []
        for g, (_, threads) in enumerate(groups):
            group = [k for k, layout in enumerate(layouts) if layout[0] == g]
            for number, (batch, by_length, budget) in enumerate(cells):
                t0 = time.monotonic() + 0.05 + args.reference_warmup
                for k in group:
                    procs[k][1].send((t0, t0 + args.reference_duration, number))
                rows = [answer(k) for k in group]
                real, done = sum(r["real_tokens"] for r in rows), sum(r["tweets"] for r in rows)
                rates = [r["tweets_per_s"] for r in rows]
                results.append({
                    "backend": backend, "processes": len(rows), "threads": threads,
                    "batch": batch, "sorted": by_length, "tweets": done,
                    "tweets_per_s": sum(rates),
                    "padding": sum(r["padded_tokens"] for r in rows) / real if real else 0.0,
                    "process_tweets_per_s": rates, "max_batch_tokens": budget,
                    "cpu_s_per_tweet": sum(r["cpu_s"] for r in rows) / done if done else None,
                    "clients": clients[number] if clients else None,
                })  # fmt: skip
        return results
    finally:
        for proc, conn in procs:
            with contextlib.suppress(OSError):
                conn.send(None)  # stop
            proc.join(30)
            proc.kill()
            conn.close()


def best(results: Sequence[Row]) -> dict[str, Row]:
    """Per backend, its best reference cell: ``tweets_per_s`` and where it came from."""
    keys = ("tweets_per_s", "processes", "threads", "batch", "sorted")
    top = sorted(results, key=lambda row: row["tweets_per_s"])  # each backend's best last
    return {row["backend"]: {key: row[key] for key in keys} for row in top}


def model_latency(args: argparse.Namespace, tweets: Sequence[Tweet], warmup: int = 10) -> Row:
    """Batch-1 ``predict_proba`` of every backend, loaded at once (the first
    ``--server_threads``), in interleaved rounds; PyTorch's median over int8's, overall and per
    round (``int8_speedup``, with both)."""
    from transformers.utils import logging as hf_logging

    from tweetcls.inference import backends as loader

    hf_logging.disable_progress_bar()  # the weight-loading bar of the pytorch backend
    bundle, threads = load_bundle(args.model), args.server_threads[0]
    engines = {name: loader.load_backend(bundle, name, threads) for name in args.backends}
    texts, keywords = [str(t["text"]) for t in tweets], [t["keyword"] for t in tweets]
    reps, rounds = args.latency_reps, args.latency_rounds
    latency = batch1_latency(engines, texts, keywords, reps, rounds, warmup)
    del engines  # free the models before the servers start
    gc.collect()
    result = {"model_latency": [{"backend": name} | row for name, row in latency.items()]}
    if {"onnx-int8", "pytorch"} <= latency.keys():
        int8, eager = latency["onnx-int8"], latency["pytorch"]
        ratios = zip(eager["round_medians_ms"], int8["round_medians_ms"], strict=True)
        result["int8_speedup"] = eager["median_ms"] / int8["median_ms"]
        result["int8_speedup_rounds"] = [e / i for e, i in ratios]
    return result


def simulate(arrivals: Any, cost: Sequence[float], cap: int) -> Any:
    """Seconds to each answer: a free server takes the waiting tweets (<= cap), busy cost[b]."""
    done, free, i = np.empty(arrivals.size), 0.0, 0
    while i < arrivals.size:
        start = max(free, arrivals[i])
        j = min(int(np.searchsorted(arrivals, start, side="right")), i + cap)
        free = done[i:j] = start + cost[j - i]
        i = j
    return done - arrivals


def latency_bounds(args: argparse.Namespace, tweets: Sequence[Tweet], open_loop: list) -> Row:
    """Per backend and ``--latency_bound`` cap: an ideal server (:func:`simulate`, docs/serving)."""
    report: Row = {"batch_cost_ms": {}, "latency_bound": []}
    for backend in args.backends:
        sizes = range(1, max(args.latency_bound) + 1)  # in rounds: a drift hits every size alike
        cells = [[b, False, args.max_batch_tokens] for _ in range(args.bound_rounds) for b in sizes]
        with pinned(args.server_cpus):
            found = measure(args, backend, tweets, [(1, args.server_threads[0])], cells)
        per_cell = np.reshape([r["batch"] / r["tweets_per_s"] for r in found], (-1, len(sizes)))
        cost = [0.0, *per_cell.mean(axis=0)]
        report["batch_cost_ms"][backend] = [c * 1000 for c in cost[1:]]
        runs = [(o["config"], r) for o in open_loop if o["backend"] == backend for r in o["runs"]]
        for cap in args.latency_bound:
            capacity = max(b / cost[b] for b in range(1, cap + 1))
            rates = {x: x * capacity for x in TARGETS["open_loop_loads"] if x <= 1}
            rates |= {f"{c} {r['label']}": r["rate"] for c, r in runs if r["max_queue"] is None}
            rows = {}
            for label, rate in rates.items():
                arrivals = np.array(arrival_offsets(rate, args.bound_seconds, seed=cap))
                p50, p99 = np.percentile(simulate(arrivals, cost, cap), [50, 99]) * 1000
                rows[label] = {"backend": backend, "cap": cap, "capacity": capacity, "at": label}
                rows[label] |= {"rate": rate, "p50_ms": p50, "p99_ms": p99}
            needed = rows[TARGETS["open_loop_target_load"]]["p99_ms"] / TARGETS["open_loop_p99_ms"]
            report["latency_bound"] += [row | {"speedup": needed} for row in rows.values()]
    return report


def open_run(label: str, rate: float, max_queue: int | None, raw: Row) -> Row:
    """An open-loop run's row (the 503s: ``shed``, also errors), its ``outcome`` as a capacity
    step: ``fail`` (errors, p99 over 1 s, or the median latency of the last third of the
    arrivals over 1.5x the first third's + 5 ms), ``generator-limited`` (else, if an arrival
    dropped or over 5% were late) or ``pass``."""
    latencies, duration = np.asarray(raw["latencies_ms"], dtype=float), raw["duration_s"]
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99]) if latencies.size else [math.nan] * 3
    by_arrival = latencies[np.argsort(raw["due_s"], kind="stable")]
    third = max(1, by_arrival.size // 3)
    thirds = np.split(by_arrival, [third, by_arrival.size - third])[::2]  # first and last
    first, last = (float(np.median(x)) if x.size else math.nan for x in thirds)
    run = {"requests": latencies.size, "errors": sum(raw["failures"].values())}
    run |= {"error_kinds": raw["failures"], "duration_s": duration}
    run |= {"req_per_s": latencies.size / duration if duration > 0 else 0.0}
    run |= {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99)}
    run |= {"p50_first_third_ms": first, "p50_last_third_ms": last}
    run |= {k: raw[k] for k in ("server_cpu", "client_cpu")}
    run |= {"label": label, "rate": rate, "max_queue": max_queue}
    run |= {k: raw[k] for k in ("sent", "late", "dropped", "shed", "retry_after")}
    run |= {k: raw.get(k) for k in ("mean_batch", "stage_ms")}
    factor, plus_ms = TARGETS["capacity_p50_growth"]
    grew = last > factor * first + plus_ms
    if run["errors"] or not run["requests"] or not p99 <= TARGETS["capacity_p99_ms"] or grew:
        outcome = "fail"
    elif run["dropped"] or run["late"] > 0.05 * max(run["sent"] + run["dropped"], 1):
        outcome = "generator-limited"
    else:
        outcome = "pass"
    return run | {"outcome": outcome, "meets_target": None}


def search_capacity(
    step: Callable[[float], Row],
    start: float,
    factor: float = 2.0,
    bisect_steps: int = 4,
    max_rate: float = 1e5,
    min_rate: float = 1.0,
) -> tuple[float, str, list[Row]]:
    """``(capacity, limited_by, steps)``: ``step`` (a judged run at a rate) from ``start`` times
    ``factor`` until one fails or ``max_rate`` (divided down to ``min_rate`` if the first fails),
    then up to ``bisect_steps`` geometric bisections until within 5%. ``limited_by``:
    ``max-rate``, else ``generator`` or ``service`` by the lowest rate that did not pass."""
    steps: list[Row] = []

    def passes(rate: float) -> bool:
        steps.append(step(rate))
        return steps[-1]["outcome"] == "pass"

    lo: float | None = None
    hi: float | None = None
    rate = min(start, max_rate)
    while lo is None or hi is None:  # up while the steps pass, down while they fail
        lo, hi = (rate, hi) if passes(rate) else (lo, rate)
        if hi is None and rate >= max_rate:
            return rate, "max-rate", steps
        if lo is None and rate <= min_rate:
            break
        rate = min(rate * factor, max_rate) if hi is None else max(rate / factor, min_rate)
    for _ in range(bisect_steps):
        if lo is None or hi / lo <= 1.05:
            break
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if passes(mid) else (lo, mid)
    lowest = min((s for s in steps if s["outcome"] != "pass"), key=lambda s: s["rate"])
    limited_by = "generator" if lowest["outcome"] == "generator-limited" else "service"
    return lo or 0.0, limited_by, steps


def open_loop(
    backend: str, config: str, drive: Callable[..., Row], args: argparse.Namespace
) -> Row:
    """Capacity search and the loads up to 100% on the server that ``drive`` loads."""
    seeds = itertools.count(1)

    def run(label: str, rate: float, warmup: float, duration: float) -> Row:
        raw = drive(rate=rate, warmup=warmup, duration=duration, seed=next(seeds))
        time.sleep(0.3)  # the server settles
        return open_run(label, rate, None, raw)

    capacity, limited_by, steps = search_capacity(
        lambda rate: run("step", rate, args.step_warmup, args.step_duration),
        args.start_rate, args.ramp_factor, args.bisect_steps, args.max_rate,
    )  # fmt: skip
    result = {"backend": backend, "config": config, "capacity_rate": capacity}
    result |= {"limited_by": limited_by, "steps": steps, "runs": [], "overload_max_queue": None}
    result |= {"overload_args": "", "shed_share": None, "retry_after_share": None}
    result |= {"overload_p99_ms": None, "overload_other_errors": None}
    for load in (x for x in TARGETS["open_loop_loads"] if x <= 1 and capacity > 0):
        result["runs"].append(r := run(f"{load:.0%}", load * capacity, args.warmup, args.duration))
        if backend == TARGETS["open_loop_backend"] and load == TARGETS["open_loop_target_load"]:
            r["meets_target"] = r["errors"] == 0 and r["p99_ms"] <= TARGETS["open_loop_p99_ms"]
    return result


def overload(result: Row, drive: Callable[..., Row], args: argparse.Namespace) -> None:
    """The loads above 100% on the bounded-queue server that ``drive`` loads: the 503 share,
    of those the share with Retry-After, the p99 of the 200s, other errors."""
    result |= {"overload_max_queue": args.server_max_queue, "overload_args": args.overload_args}
    for load in (x for x in TARGETS["open_loop_loads"] if x > 1):
        rate = load * result["capacity_rate"]
        raw = drive(rate=rate, warmup=args.warmup, duration=args.duration, seed=10**6)
        result["runs"].append(run := open_run(f"{load:.0%}", rate, args.server_max_queue, raw))
        finished, shed = run["requests"] + run["errors"], run["shed"]  # all sent in the window
        result["shed_share"] = shed / finished if finished else None
        result["retry_after_share"] = run["retry_after"] / shed if shed else None
        result |= {"overload_p99_ms": run["p99_ms"], "overload_other_errors": run["errors"] - shed}


def threads_value(text: str) -> int | None:
    """argparse type of ``--server_threads``: ``auto`` (the service's default) or >= 1."""
    return None if text == "auto" else PositiveInt(text)


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.set_defaults(**FIXED)
    positive, seconds, count = PositiveFloat, NonNegativeFloat, PositiveInt
    add = parser.add_argument
    add("--model", type=Path, required=True, help="serving bundle directory")
    add("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS), help="backends")
    add("--data", type=Path, default=Path("data/processed/val.csv"), help="tweets to send")
    add("--json", type=Path, help="also write the report here")
    add("--workers", nargs="+", type=count, default=[1], help="serve --workers (grid)")
    add("--batching", nargs="+", choices=("requests", "tokens"), default=["requests"],
        help="requests: --max_batch_tokens 0; tokens: --max_batch_tokens (grid)")  # fmt: skip
    add("--max_batch_tokens", type=count, default=512, help="of --batching tokens")
    add("--server_threads", nargs="+", type=threads_value, default=[None],
        help="serve --threads per worker or 'auto' (grid; the first: latency)")  # fmt: skip
    add("--server_args", nargs="+", default=[""],
        help="serve flags, NAME=value first: env (grid) e.g. '' 'A=0 --max_wait_ms 1'")  # fmt: skip
    add("--clients", nargs="+", type=count, default=[1, 8, 32], help="closed-loop clients")
    add("--duration", type=positive, default=10.0, help="measured s per run (wrk: whole s)")
    add("--warmup", type=seconds, default=2.0, help="unmeasured s before a run (wrk: whole s)")
    add("--repeats", type=count, default=1, help="runs of the grid and baseline, alternating")
    add("--skip_closed_loop", action="store_true", help="no closed-loop runs")
    add("--baseline", action="store_true", help="also the minimal FastAPI app")
    add("--skip_reference", action="store_true", help="no references (no ratios)")
    add("--reference_batches", nargs="+", type=count, default=[1, 8, 16, 32, 64],
        help="reference batch sizes cut from the pool sorted by length")  # fmt: skip
    add("--reference_unsorted", nargs="*", type=count, default=[32],
        help="reference batch sizes of random lengths (the padding cost)")  # fmt: skip
    add("--reference_duration", type=positive, default=3.0, help="timed s per reference cell")
    add("--reference_warmup", type=seconds, default=1.0, help="untimed s per reference cell")
    add("--skip_latency", action="store_true", help="no batch-1 model latency")
    add("--latency_reps", type=count, default=200, help="timed batch-1 calls per backend")
    add("--open_loop", action="store_true", help="capacity, then 50/80/150%% of it")
    add("--latency_bound", nargs="+", type=count, help="batch caps of an ideal server to simulate")
    add("--start_rate", type=positive, default=25.0, help="first capacity step, req/s")
    add("--max_rate", type=positive, default=20000.0, help="capacity ceiling, req/s")
    add("--bisect_steps", type=int, default=4, help="capacity bisections after the ramp")
    add("--step_duration", type=positive, default=3.0, help="measured s per capacity step")
    add("--step_warmup", type=seconds, default=0.5, help="unmeasured s per capacity step")
    add("--overload_args", default="", help="extra serve flags of the 150%% server only")
    add("--server_cpus", nargs="+", type=int, help="pin server and references, e.g. 0")
    add("--client_cpus", nargs="+", type=int, help="pin the load generator, e.g. 1")
    return parser


def check_args(args: argparse.Namespace) -> None:
    """Reject combinations that cannot give a measurement."""
    if args.baseline and args.skip_closed_loop:
        raise ConfigError("--baseline compares closed-loop runs: drop --skip_closed_loop")
    if not args.skip_closed_loop and shutil.which(args.wrk) is None:
        raise ConfigError(f"{args.wrk}: not found (the closed loop needs wrk: apt-get install wrk)")
    for name in ("server_cpus", "client_cpus"):
        if not set(getattr(args, name) or ()) <= os.sched_getaffinity(0):
            raise ConfigError(f"--{name}: not all in the CPUs {sorted(os.sched_getaffinity(0))}")


def service_configs(args: argparse.Namespace) -> list[ServiceConfig]:
    """The grid ``--workers`` x ``--batching`` x ``--server_threads`` x ``--server_args``."""
    tokens = {"requests": 0, "tokens": args.max_batch_tokens}
    batching, extras = dict.fromkeys(args.batching), dict.fromkeys(args.server_args)
    grid = itertools.product(args.workers, batching, args.server_threads, extras)
    return [ServiceConfig(w, tokens[b], t, e) for w, b, t, e in grid]


def closed_loop(args: argparse.Namespace, server: Server, tmp: Path) -> list[tuple[int, Row]]:
    """``(clients, wrk's raw results with :func:`histogram_means`)`` per ``--clients``."""
    out, url, pid, bodies = [], server.url, server.proc.pid, tmp / "bodies.jsonl"

    for clients in args.clients:
        if round(args.warmup) > 0:
            run_wrk(f"{url}/predict", bodies, clients, round(args.warmup), args, pid)
        before = histogram_totals(server)
        raw = run_wrk(f"{url}/predict", bodies, clients, max(1, round(args.duration)), args, pid)
        check_alive(server.proc, server.log)
        out.append((clients, raw | histogram_means(before, histogram_totals(server))))
    return out


def measure_service(
    report: Row,
    args: argparse.Namespace,
    backend: str,
    config: ServiceConfig,
    tweets: Sequence[Tweet],
    tmp: Path,
    repeat: int = 0,
) -> None:
    """One configuration: closed-loop rows, their matched references and the open loop."""
    bodies, result = [predict_body(tweet) for tweet in tweets], None

    def server(max_queue: int | None = None) -> contextlib.AbstractContextManager[Server]:
        def command(port: int) -> list[str]:
            extra = args.overload_args if max_queue else ""
            database = f"sqlite:///{tmp}/requests-{next(_SERVERS)}.db"
            return serve_command(args.model, backend, port, database, extra, config, max_queue)

        return running_server(command, args, tmp, config.workers)

    rows: list[Row] = []
    reference = report["reference_best"].get(backend, {}).get("tweets_per_s")
    with server() as main:
        for clients, raw in [] if args.skip_closed_loop else closed_loop(args, main, tmp):
            rows.append(load_result(backend, config, clients, raw, reference) | {"repeat": repeat})
        if args.open_loop and repeat == 0:
            drive = functools.partial(main.drive, args, bodies)
            report["open_loop"].append(result := open_loop(backend, config.label, drive, args))
    report["load"] += rows
    if not args.skip_reference and (matched := [r for r in rows if r["mean_batch"] is not None]):
        progress(f"matched reference {backend} {config.label}")
        from tweetcls.serving.command import worker_settings
        from tweetcls.serving.settings import ServeSettings

        cpus = len(args.server_cpus or os.sched_getaffinity(0))
        served = ServeSettings.model_construct(workers=config.workers, threads=config.threads)
        threads = worker_settings(served, cpus).threads  # the service's own rule
        cells = [[r["mean_batch"], False, config.max_batch_tokens] for r in matched]
        with pinned(args.server_cpus):
            groups, clients = [(config.workers, threads)], [r["clients"] for r in matched]
            found = measure(args, backend, tweets, groups, cells, clients)
        report["matched"] += found
        for row, cell in zip(matched, found, strict=True):
            match(row, cell)
    if result is not None and result["capacity_rate"] > 0:
        with server(args.server_max_queue) as bounded:
            overload(result, functools.partial(bounded.drive, args, bodies), args)


def predict_body(tweet: Tweet) -> bytes:
    """The JSON body of a single-tweet ``POST /predict``."""
    return json.dumps(tweet_body(tweet)).encode()


def run(args: argparse.Namespace) -> Row:
    """The report of everything the arguments ask for."""
    check_args(args)
    version = load_bundle(args.model).version
    tweets = read_tweets(args.data, args.tweets, name=f"--data {args.data}")
    settings = vars(args) | {"model_version": version, "tweets": len(tweets)}  # paths: str in JSON
    settings |= {"configs": [c.label for c in service_configs(args)]}
    settings |= {k: sorted(getattr(args, k) or []) or None for k in ("server_cpus", "client_cpus")}
    report = {"settings": settings, "machine": host_info(VERSIONS), "targets": TARGETS}
    report |= {"model_latency": [], "int8_speedup": None, "int8_speedup_rounds": []}
    report |= {"reference": [], "matched": [], "reference_best": {}, "load": [], "minimal": []}
    report |= {"baseline": [], "open_loop": [], "batch_cost_ms": {}, "latency_bound": []}
    with tempfile.TemporaryDirectory(prefix="bench_serve.") as name:
        tmp = Path(name)
        (tmp / "bodies.jsonl").write_bytes(b"".join(predict_body(t) + b"\n" for t in tweets))
        with pinned(args.server_cpus):
            if not args.skip_latency:
                progress("batch-1 model latency")
                report |= model_latency(args, tweets)
            cells = [[b, True, 0] for b in args.reference_batches]
            cells += [[b, False, 0] for b in args.reference_unsorted]
            groups = [(1, None), (len(os.sched_getaffinity(0)), 1)]  # one per server CPU
            for backend in [] if args.skip_reference else args.backends:
                progress(f"reference {backend}: 1 process, then {groups[1][0]} processes")
                report["reference"] += measure(args, backend, tweets, groups, cells)
        report["reference_best"] = best(report["reference"])
        for repeat in range(args.repeats if not args.skip_closed_loop or args.open_loop else 0):
            for backend, config in itertools.product(args.backends, service_configs(args)):
                measure_service(report, args, backend, config, tweets, tmp, repeat)
            if args.baseline:
                with running_server(baseline_command, args, tmp) as app:
                    for clients, raw in closed_loop(args, app, tmp):
                        row = load_result("minimal", ServiceConfig(), clients, raw)
                        report["minimal"].append(row | {"config": "minimal app", "repeat": repeat})
    report["baseline"] = baseline_rows(report["load"], report["minimal"])
    report |= latency_bounds(args, tweets, report["open_loop"]) if args.latency_bound else {}
    return report


#: The printed tables: the JSON's lists and their columns (``_bench_common.print_table``).
SUMMARY = {
    "model_latency": "backend reps:d median_ms:.2f p90_ms:.2f",
    "reference": "backend processes:d threads batch:g sorted tweets_per_s:.1f padding:.2f",
    "load": "backend config repeat:d clients:d req_per_s:.1f p50_ms:.1f p99_ms:.1f errors:d "
    "server_cpu:.2f client_cpu:.3f mean_batch:.1f ratio:.3f matched_ratio:.3f cpu_ratio:.3f "
    "meets_target",
    "baseline": "backend config repeat:d clients:d service_req_per_s:.1f minimal_req_per_s:.1f "
    "ratio:.3f meets_target",
    "open_loop": "backend config label rate:.1f outcome sent:d late:d dropped:d req_per_s:.1f "
    "p50_ms:.1f p99_ms:.1f p50_first_third_ms:.1f p50_last_third_ms:.1f errors:d shed:d "
    "meets_target",
    "latency_bound": "backend cap:d capacity:.1f at rate:.1f p50_ms:.1f p99_ms:.1f speedup:.2f",
}


def print_summary(report: Row) -> None:
    """Print the tables of :data:`SUMMARY` that have rows (the open loop: every step and run)."""
    runs = [o | r for o in report["open_loop"] for r in o["steps"] + o["runs"]]
    tables = report | {"open_loop": runs}
    for key, columns in SUMMARY.items():
        if tables[key]:
            print(f"\n{key}:")
            print_table(tables[key], columns)


def main(argv: list[str] | None = None) -> Row:
    """Run the benchmark, print its tables, write the report as JSON to ``--json``; return it."""
    args = build_parser().parse_args(argv)
    try:
        report = run(args)
    except TweetclsError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print_summary(report)
    if args.json is not None:
        plain = json.loads(json.dumps(report, default=str), parse_constant=lambda _: None)
        write_text(args.json, json.dumps(plain, indent=2) + "\n")  # NaN above: null
    return report


if __name__ == "__main__":
    main()
