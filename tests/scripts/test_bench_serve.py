"""scripts/bench_serve.py: the full benchmark on the tiny bundle (one backend and configuration,
every section, a second or less each), its ratios and verdicts, its error accounting, and wrk
with scripts/wrk_predict.lua (skipped without wrk, as the Redis tests skip without
redis-server); then its parts that need no server: the open-loop capacity search and step
verdicts, Poisson arrivals, the ideal server of --latency_bound against queueing theory, the
reference batches, wrk's result line, the configuration grid, the baseline ratios and the
minimal FastAPI app of --baseline (_serve_workers.py). Last, scripts/bench_models.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from fastapi.testclient import TestClient
from helpers.scripts import import_script
from helpers.servers import free_port

from tweetcls.core.bundle import BACKENDS, load_bundle
from tweetcls.inference import backends
from tweetcls.monitoring.settings import parse_command_line
from tweetcls.serving.command import serve_argv
from tweetcls.serving.schemas import Prediction
from tweetcls.serving.settings import ServeSettings

LOAD_FIELDS = {
    "backend", "config", "clients", "requests", "errors", "error_kinds", "duration_s",
    "req_per_s", "p50_ms", "p95_ms", "p99_ms", "server_cpu", "client_cpu",
    "reference_tweets_per_s", "ratio", "meets_target", "mean_batch", "server_cpu_s_per_request",
    "matched_tweets_per_s", "matched_ratio", "backend_cpu_s_per_tweet", "cpu_ratio", "repeat",
    "stage_ms",
}  # fmt: skip
needs_wrk = pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk not found (apt-get install wrk; install.sh does)"
)


def wrk_raw(requests: int, seconds: float = 1.0, http_errors: int = 0, **errors: int) -> dict:
    """What ``run_wrk`` returns for a run of ``requests`` answers."""
    raw = {"requests": requests, "duration_us": int(seconds * 1e6), "http_errors": http_errors}
    raw |= {"connect": 0, "read": 0, "write": 0, "timeout": 0, **errors}
    raw |= {"p50_ms": 10.0, "p95_ms": 12.0, "p99_ms": 15.0}
    return raw | {"server_cpu_s": 1.5 * seconds, "client_cpu_s": 0.2 * seconds, "wall_s": seconds}


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """The script, imported as a module."""
    return import_script("bench_serve")


@pytest.fixture(scope="module")
def workers(bench: ModuleType) -> ModuleType:
    """The processes' module the script imported."""
    return sys.modules["_serve_workers"]


def test_backends_and_server_command_are_the_service_s(bench: ModuleType, tmp_path) -> None:
    backend_flag = next(a for a in bench.build_parser()._actions if a.dest == "backends")
    assert tuple(backend_flag.choices) == BACKENDS and backend_flag.default == list(BACKENDS)

    database_url = f"sqlite:///{tmp_path / 'r.db'}"
    config = bench.ServiceConfig(workers=2, max_batch_tokens=512, threads=1)
    command = bench.serve_command(
        tmp_path, "onnx", 8123, database_url, "--max_wait_ms 5", config, max_queue=64
    )
    assert command[:4] == serve_argv()  # python -m tweetcls serve, from the one function
    settings = parse_command_line(ServeSettings, command[4:], "tweetcls serve")
    assert (settings.model, settings.backend, settings.port) == (tmp_path, "onnx", 8123)
    assert (settings.threads, settings.max_wait_ms, settings.host) == (1, 5.0, "127.0.0.1")
    assert (settings.workers, settings.max_batch_tokens, settings.max_queue) == (2, 512, 64)
    assert settings.database_url == database_url
    plain = bench.serve_command(tmp_path, "onnx", 1, database_url)
    assert "--threads" not in plain and "--max_queue" not in plain
    settings = parse_command_line(ServeSettings, plain[4:], "tweetcls serve")
    assert (settings.workers, settings.max_batch_tokens) == (1, 0)  # given explicitly
    assert "--max_batch_tokens" in plain and "--workers" in plain
    # a --server_args entry: its leading NAME=value words are the server's environment
    lever = bench.ServiceConfig(extra="TOKENIZERS_PARALLELISM=false A_B=x=1 --max_wait_ms 3")
    command = bench.serve_command(tmp_path, "onnx", 1, database_url, "--max_queue 99", lever)
    assert command[:3] == ["env", "TOKENIZERS_PARALLELISM=false", "A_B=x=1"]
    assert command[3:7] == serve_argv()
    settings = parse_command_line(ServeSettings, command[7:], "tweetcls serve")
    assert (settings.max_wait_ms, settings.max_queue) == (3.0, 99)


def test_tweets_are_distinct_non_empty_and_limited(bench: ModuleType, tmp_path) -> None:
    data = tmp_path / "tweets.csv"
    data.write_text(
        'id,keyword,text\n1,fire,"Forest fire, near"\n2,, \n3,,Forest fire\n'
        '4, ,"Forest fire, near"\n5,flood%20warning,Rain\n',
        encoding="utf-8",
    )
    assert bench.read_tweets(data, 10) == [
        {"text": "Forest fire, near", "keyword": "fire"},
        {"text": "Forest fire", "keyword": None},
        {"text": "Rain", "keyword": "flood%20warning"},
    ]
    assert len(bench.read_tweets(data, 2)) == 2
    assert bench.predict_body({"text": "Rain", "keyword": None}) == b'{"text": "Rain"}'
    data.write_text("id,tweet\n1,hello\n", encoding="utf-8")
    with pytest.raises(bench.ConfigError, match=r"--data .*: no 'text' column"):
        bench.read_tweets(data, 10, name=f"--data {data}")


@needs_wrk
def test_benchmark_runs_on_the_tiny_bundle(
    bench: ModuleType, tiny_bundle: Path, processed_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    """Every section once, on the tiny bundle, with a second or less per run: stdout shows
    each table, the JSON holds them, and each ratio is computed from the figures next to it."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setitem(bench.FIXED, "bound_seconds", 5.0)  # simulated per rate
    monkeypatch.setitem(bench.FIXED, "bound_rounds", 2)  # rounds of the batch costs
    out = tmp_path / "bench.json"
    returned = bench.main(
        [
            "--model", str(tiny_bundle), "--data", str(processed_dir / "val.csv"),
            "--json", str(out),
            "--backends", "onnx-int8", "--server_threads", "1",
            "--skip_latency",  # model_latency: test_latency_rounds_interleave_the_backends
            "--clients", "2", "--duration", "1", "--warmup", "1",
            "--reference_batches", "1", "8", "--reference_unsorted", "8",
            "--reference_duration", "0.3", "--reference_warmup", "0.1",
            "--baseline",
            "--open_loop", "--start_rate", "40", "--max_rate", "80", "--bisect_steps", "1",
            "--step_duration", "0.3", "--step_warmup", "0.1", "--latency_bound", "1", "3",
        ]
    )  # fmt: skip
    printed, report = capsys.readouterr().out, json.loads(out.read_text())
    assert report["load"] == returned["load"] and report["settings"]["json"] == str(out)
    for table in ("reference:", "load:", "baseline:", "open_loop:", "latency_bound:"):
        assert f"\n{table}\n" in printed
    assert "onnx-int8  w1 requests t1" in printed and "p50_last_third_ms" in printed

    assert report["settings"]["model_version"] == load_bundle(tiny_bundle).version
    assert report["settings"]["tweets"] > 100  # distinct real tweets of val.csv
    assert report["settings"]["configs"] == ["w1 requests t1"]
    machine = report["machine"]
    assert machine["cpu_model"] and isinstance(machine["cpu_flags"], list)
    assert machine["cpus_usable"] == len(os.sched_getaffinity(0))
    assert machine["versions"]["onnxruntime"] and machine["versions"]["fastapi"]

    # reference: 1 process x all threads and one 1-thread process per CPU, 3 cells each
    reference = report["reference"]
    layouts = [(r["processes"], r["threads"]) for r in reference]
    assert layouts == [(1, None)] * 3 + [(len(os.sched_getaffinity(0)), 1)] * 3
    assert [(r["batch"], r["sorted"]) for r in reference] == [(1, True), (8, True), (8, False)] * 2
    for r in reference:
        assert r["tweets"] > 0 and r["tweets_per_s"] == sum(r["process_tweets_per_s"])
        assert r["padding"] == 1.0 if r["batch"] == 1 else r["padding"] >= 1.0
        assert r["max_batch_tokens"] == 0 and r["clients"] is None and r["cpu_s_per_tweet"] > 0
    best = report["reference_best"]["onnx-int8"]
    assert best["tweets_per_s"] == max(r["tweets_per_s"] for r in reference)

    # closed loop (wrk): service / ideal and / matched reference, CPU per answer
    (row,) = report["load"]
    assert set(row) == LOAD_FIELDS
    assert (row["backend"], row["config"], row["clients"]) == ("onnx-int8", "w1 requests t1", 2)
    assert row["errors"] == 0 and row["error_kinds"] == {}, row
    assert row["requests"] > 0 and row["req_per_s"] > 0 and 0.9 < row["duration_s"] < 1.5
    assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
    assert row["server_cpu"] > 0 and row["client_cpu"] > 0
    assert row["reference_tweets_per_s"] == best["tweets_per_s"]
    assert row["ratio"] == row["req_per_s"] / best["tweets_per_s"]
    assert 1 <= row["mean_batch"] <= 2  # 2 clients: micro-batches of 1 or 2 tweets
    stages = row["stage_ms"]  # the service's own histograms over the run, mean ms per stage
    assert {"queue", "dispatch", "tokenize", "model", "answer"} <= set(stages), stages
    assert all(ms >= 0 for ms in stages.values()) and stages["model"] > 0
    (matched,) = report["matched"]
    assert (matched["processes"], matched["threads"], matched["clients"]) == (1, 1, 2)
    assert (matched["batch"], matched["sorted"], matched["max_batch_tokens"]) == (
        row["mean_batch"], False, 0,
    )  # fmt: skip
    assert row["matched_tweets_per_s"] == matched["tweets_per_s"] > 0
    assert row["matched_ratio"] == row["req_per_s"] / matched["tweets_per_s"]
    assert row["backend_cpu_s_per_tweet"] == matched["cpu_s_per_tweet"] > 0
    assert row["server_cpu_s_per_request"] > 0
    assert row["cpu_ratio"] == row["server_cpu_s_per_request"] / row["backend_cpu_s_per_tweet"]
    assert row["meets_target"] is None and row["repeat"] == 0  # judged at 32 clients only

    # --baseline: the minimal app at the same client count
    (minimal,) = report["minimal"]
    assert (minimal["backend"], minimal["clients"], minimal["errors"]) == ("minimal", 2, 0)
    assert minimal["mean_batch"] is None and minimal["stage_ms"] == {}  # it has no /metrics
    (base,) = report["baseline"]
    assert base["service_req_per_s"] == row["req_per_s"]
    assert base["minimal_req_per_s"] == minimal["req_per_s"] > 0
    assert base["ratio"] == row["req_per_s"] / minimal["req_per_s"]
    assert base["meets_target"] == (base["ratio"] >= 0.5)

    # --open_loop: capacity search, 50/80% on the same server, 150% on a bounded queue
    (open_loop,) = report["open_loop"]
    steps = open_loop["steps"]
    assert steps[0]["rate"] == 40 and all(s["label"] == "step" for s in steps)
    assert {s["outcome"] for s in steps} <= {"pass", "fail", "generator-limited"}
    capacity = open_loop["capacity_rate"]
    assert capacity == max((s["rate"] for s in steps if s["outcome"] == "pass"), default=0.0)
    assert open_loop["limited_by"] in {"service", "generator", "max-rate"}
    for step in steps:  # each run with the server's histograms over it
        assert step["mean_batch"] >= 1 and step["stage_ms"]["model"] > 0
    if capacity > 0:
        runs, runs_labels = open_loop["runs"], ["50%", "80%", "150%"]
        assert [r["label"] for r in runs] == runs_labels
        assert [r["rate"] for r in runs] == [0.5 * capacity, 0.8 * capacity, 1.5 * capacity]
        assert [r["max_queue"] for r in runs] == [None, None, 64]
        assert runs[1]["meets_target"] == (runs[1]["errors"] == 0 and runs[1]["p99_ms"] <= 50)
        over = runs[2]
        assert open_loop["overload_max_queue"] == 64
        assert open_loop["overload_other_errors"] == over["errors"] - over["shed"]
        finished = over["requests"] + over["errors"]
        assert open_loop["shed_share"] == (over["shed"] / finished if finished else None)
        assert open_loop["overload_p99_ms"] == over["p99_ms"]

    # --latency_bound: an ideal server on the mean cost of each batch size, at 50/80% of its
    # capacity and at the open loop's rates up to 100%
    costs = report["batch_cost_ms"]["onnx-int8"]
    assert len(costs) == 3 and min(costs) > 0
    served = [f"w1 requests t1 {r['label']}" for r in open_loop["runs"] if r["max_queue"] is None]
    for cap in (1, 3):
        rows = [r for r in report["latency_bound"] if r["cap"] == cap]
        capacity = max(1000 * b / ms for b, ms in enumerate(costs[:cap], 1))
        assert [r["at"] for r in rows] == [0.5, 0.8, *served]
        assert all(r["capacity"] == pytest.approx(capacity) for r in rows)
        assert [r["rate"] for r in rows[:2]] == pytest.approx([0.5 * capacity, 0.8 * capacity])
        assert all(r["p99_ms"] >= r["p50_ms"] >= min(costs[:cap]) * (1 - 1e-9) for r in rows)
        assert {r["speedup"] for r in rows} == {rows[1]["p99_ms"] / 50}

    assert report["model_latency"] == [] and report["int8_speedup"] is None
    assert report["targets"]["ratio_to_reference"] == 0.95
    assert report["targets"]["ratio_to_minimal"] == 0.5


def test_latency_rounds_interleave_the_backends(
    bench: ModuleType, tiny_bundle: Path, processed_dir: Path, monkeypatch
) -> None:
    tweets = bench.read_tweets(processed_dir / "val.csv", 50)
    calls: list[str] = []
    real_load = backends.load_backend

    def recording_load(bundle, backend, threads):
        engine = real_load(bundle, backend, threads)
        real_predict = engine.predict_proba

        def predict(texts, keywords):
            calls.append(backend)
            return real_predict(texts, keywords)

        engine.predict_proba = predict
        return engine

    monkeypatch.setattr(backends, "load_backend", recording_load)
    args = bench.build_parser().parse_args(
        ["--model", str(tiny_bundle), "--backends", "onnx-int8", "pytorch", "--latency_reps", "6"]
    )
    args.latency_rounds, args.server_threads = 3, [1]
    latency = bench.model_latency(args, tweets, warmup=2)
    results = latency["model_latency"]
    assert [r["backend"] for r in results] == ["onnx-int8", "pytorch"]
    for r in results:
        assert r["reps"] == 6 and len(r["round_medians_ms"]) == 3
        assert 0 < r["median_ms"] <= r["p90_ms"]
    timed = calls[4:]  # after 2 warm-up calls each
    assert timed == ["onnx-int8"] * 2 + ["pytorch"] * 4 + ["onnx-int8"] * 4 + ["pytorch"] * 2

    int8, eager = (r["round_medians_ms"] for r in results)
    assert latency["int8_speedup"] == results[1]["median_ms"] / results[0]["median_ms"]
    assert latency["int8_speedup_rounds"] == [e / i for e, i in zip(eager, int8, strict=True)]
    args.backends, args.latency_reps = ["onnx-int8"], 2
    assert bench.model_latency(args, tweets, warmup=0).keys() == {"model_latency"}  # no ratio


def test_ratio_and_verdict_at_32_clients(bench: ModuleType) -> None:
    config = bench.ServiceConfig(workers=2, max_batch_tokens=512)
    fast = wrk_raw(700)
    row = bench.load_result("onnx-int8", config, 32, fast, 720.0)
    assert set(row) == LOAD_FIELDS
    assert row["config"] == "w2 tokens512 t=auto"
    assert row["req_per_s"] == 700.0 and row["ratio"] == 700.0 / 720.0
    assert row["meets_target"] is True
    assert (row["server_cpu"], row["client_cpu"]) == (1.5, 0.2)
    assert row["server_cpu_s_per_request"] == 1.5 / 700
    assert bench.load_result("onnx-int8", config, 8, fast, 720.0)["meets_target"] is None
    unreferenced = bench.load_result("onnx-int8", config, 32, fast, None)
    assert unreferenced["ratio"] is None and unreferenced["meets_target"] is None
    slow = bench.load_result("onnx-int8", config, 32, fast, 800.0)
    assert slow["meets_target"] is False
    # the matched reference decides once it is known; the ideal stays beside it
    bench.match(slow, {"tweets_per_s": 720.0, "cpu_s_per_tweet": 0.001})
    assert slow["matched_ratio"] == 700.0 / 720.0 and slow["meets_target"] is True
    assert slow["ratio"] == 700.0 / 800.0 and slow["cpu_ratio"] == (1.5 / 700) / 0.001
    one_error = bench.load_result("onnx-int8", config, 32, wrk_raw(700, http_errors=1), 700.0)
    assert one_error["meets_target"] is False and one_error["requests"] == 699
    assert one_error["error_kinds"] == {"http_errors": 1}


@needs_wrk
def test_failed_requests_count_as_errors(bench: ModuleType) -> None:
    """Nothing listens on the port: wrk fails at once (it connects first); in the open loop
    every request fails and none is timed."""
    args = bench.build_parser().parse_args(["--model", "m"])
    args.request_timeout = 2.0
    url = f"http://127.0.0.1:{free_port()}/predict"
    with pytest.raises(RuntimeError, match=r"wrk failed \(1\):\nunable to connect"):
        bench.run_wrk(url, Path(__file__), 2, 1, args, os.getpid())
    timing = {"rate": 100.0, "warmup": 0.0, "duration": 0.2, "seed": 3}
    with subprocess.Popen(["sleep", "30"]) as proc:  # a live "server" listening nowhere
        try:
            server = bench.Server(proc, url.removesuffix("/predict"), Path(__file__))
            raw = server.drive(args, [b'{"text": "fire"}'], **timing)
        finally:
            proc.kill()
    assert raw["latencies_ms"] == [] and raw["dropped"] == 0 and raw["shed"] == 0
    assert raw["sent"] == sum(raw["failures"].values()) > 0


def test_a_live_server_that_refuses_fails_with_its_log(bench: ModuleType, tmp_path: Path) -> None:
    """``GET /metrics`` refused while the server process lives: one ServerError that quotes
    the server's log, not a traceback of urllib."""
    args = bench.build_parser().parse_args(["--model", "m", "--clients", "2", "--warmup", "0"])
    log = tmp_path / "server.log"
    log.write_text("INFO: started\nERROR: worker 7 exited (-9): restarting\n")
    with subprocess.Popen(["sleep", "30"]) as proc:  # alive, listening nowhere
        server = bench.Server(proc, f"http://127.0.0.1:{free_port()}", log, workers=2)
        try:
            with pytest.raises(bench.ServerError, match=r"(?s)/metrics: .*worker 7 exited"):
                bench.closed_loop(args, server, tmp_path)
        finally:
            proc.kill()


#: ``/metrics`` of a server whose one worker made 4 model calls of 12 tweets in 20 ms.
METRICS = b"""# TYPE tweetcls_batch_size histogram
tweetcls_batch_size_bucket{le="+Inf"} 4.0
tweetcls_batch_size_count 4.0
tweetcls_batch_size_sum 12.0
# TYPE tweetcls_stage_duration_seconds histogram
tweetcls_stage_duration_seconds_bucket{le="+Inf",stage="model"} 4.0
tweetcls_stage_duration_seconds_count{stage="model"} 4.0
tweetcls_stage_duration_seconds_sum{stage="model"} 0.02
"""


@needs_wrk
def test_wrk_rotates_over_the_bodies_and_metrics_give_the_batch_size(
    bench: ModuleType, tmp_path: Path
) -> None:
    """A short real wrk run against a recording server: every body is sent, in turn, as JSON;
    wrk's counts match what the server got, its 503s are errors; ``/metrics`` gives the
    batch-size totals."""
    seen: Counter[bytes] = Counter()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            assert self.headers["Content-Type"] == "application/json"
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen[body] += 1
            self.answer(b'{"label": 1}', 503 if body == b'{"text": "a"}' else 200)

        def do_GET(self) -> None:
            self.answer(METRICS)

        def answer(self, body: bytes, status: int = 200) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    bodies = [b'{"text": "Forest fire"}', b'{"text": "Rain", "keyword": "flood"}', b'{"text": "a"}']
    (tmp_path / "bodies.jsonl").write_bytes(b"\n".join(bodies) + b"\n")
    args = bench.build_parser().parse_args(["--model", "m"])
    try:
        raw = bench.run_wrk(f"{url}/predict", tmp_path / "bodies.jsonl", 2, 1, args, os.getpid())
        totals = bench.histogram_totals(bench.Server(None, url, tmp_path / "log", workers=1))
        assert totals == {"batch_sum": 12, "batch_count": 4, "model_sum": 0.02, "model_count": 4}
        twice = bench.Server(None, url, tmp_path / "log", workers=2)  # one worker, seen 16 times
        assert bench.histogram_totals(twice) == totals
        means = bench.histogram_means(Counter({"batch_sum": 2.0, "batch_count": 1.0}), totals)
        assert means == {"mean_batch": 10 / 3, "stage_ms": {"model": 5.0}}
    finally:
        server.shutdown()
        server.server_close()
    row = bench.load_result("onnx", bench.ServiceConfig(), 2, raw)
    answered, errors = row["requests"] + row["errors"], row["errors"]
    assert row["error_kinds"] == {"http_errors": errors} and errors > 0
    assert 0 < answered <= sum(seen.values()) <= answered + 2
    assert set(seen) == set(bodies) and max(seen.values()) - min(seen.values()) <= 2
    assert abs(errors - seen[bodies[2]]) <= 2  # the 503s
    assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"] and 0.9 < row["duration_s"] < 1.5
    assert row["client_cpu"] > 0 and raw["wall_s"] >= 1


def test_bad_data_file_is_one_clear_error(
    bench: ModuleType, tiny_bundle: Path, tmp_path: Path, capsys
) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--model", str(tiny_bundle), "--data", str(missing)])
    assert exit_info.value.code == 2
    assert f"error: --data {missing}: not found" in capsys.readouterr().err


def raw_run(
    p99_ms: float = 10.0, errors: int = 0, late: int = 0, dropped: int = 0, growth_ms: float = 0.0
) -> dict:
    """Load-generator results of 100 requests: 98 at 5 ms, two at ``p99_ms``; the answers come
    back out of order, and arrival ``i`` waits ``i * growth_ms / 100`` ms more (a growing queue)."""
    base = [5.0] * 49 + [p99_ms] + [5.0] * 49 + [p99_ms]
    due = [(i * 37 % 100) / 100 for i in range(100)]  # a permutation of the arrival times
    latencies = [b + d * growth_ms for b, d in zip(base, due, strict=True)]
    raw = {"latencies_ms": latencies, "due_s": due, "failures": {"503": errors} if errors else {}}
    raw |= {"duration_s": 1.0, "server_cpu": 1.0, "client_cpu": 0.1, "sent": 100 + errors}
    return raw | {"late": late, "dropped": dropped, "shed": errors, "retry_after": errors}


def test_one_tweet_per_batch_is_a_single_server_queue(
    bench: ModuleType, workers: ModuleType
) -> None:
    times = np.array(workers.arrival_offsets(80.0, 2500.0, seed=0))  # the open loop's schedule
    service = 0.01  # load 0.8
    latency = bench.simulate(times, np.array([0.0, service]), cap=1)
    done = np.empty_like(times)
    free = 0.0
    for i, t in enumerate(times):  # Lindley: each starts when it arrives or the last one ends
        free = done[i] = max(free, t) + service
    np.testing.assert_allclose(latency, done - times)
    # M/D/1: mean wait = load * service / (2 * (1 - load)) = 20 ms, so 30 ms in all
    assert latency.mean() == pytest.approx(0.030, rel=0.05)


def test_batches_grow_with_load_and_beat_one_at_a_time(
    bench: ModuleType, workers: ModuleType
) -> None:
    cost = np.array([0.0, 0.010, 0.012, 0.014, 0.016])  # a batch of 4 costs 1.6x one tweet
    times = np.array(workers.arrival_offsets(95.0, 500.0, seed=0))  # load 0.95 one at a time
    batched, single = bench.simulate(times, cost, cap=4), bench.simulate(times, cost, cap=1)
    assert np.percentile(batched, 99) < np.percentile(single, 99) / 2
    assert np.all(batched >= cost[1] - 1e-12)  # nothing answers faster than the model runs


def test_step_outcomes(bench: ModuleType) -> None:
    def outcome(**kwargs) -> str:
        return bench.open_run("step", 10, None, raw_run(**kwargs))["outcome"]

    assert outcome() == "pass" and outcome(late=5) == "pass"  # 5% slack
    assert outcome(p99_ms=1500) == "fail" and outcome(errors=1) == "fail"
    assert outcome(late=6) == "generator-limited" and outcome(dropped=1) == "generator-limited"
    # a queue that grows: the last third's median over 1.5x the first third's + 5 ms
    assert outcome(growth_ms=6) == "pass" and outcome(growth_ms=20) == "fail"
    run = bench.open_run("step", 10, None, raw_run(growth_ms=20))
    assert run["p50_first_third_ms"] < 9 < 15 < run["p50_last_third_ms"]
    empty = raw_run() | {"latencies_ms": [], "due_s": [], "sent": 0}
    run = bench.open_run("step", 10, None, empty)
    assert run["outcome"] == "fail" and run["requests"] == 0 and run["p99_ms"] != run["p99_ms"]
    run = bench.open_run("150%", 15, 64, raw_run(errors=3))
    assert (run["shed"], run["errors"], run["max_queue"]) == (3, 3, 64)
    assert run["error_kinds"] == {"503": 3}
    assert run["p50_ms"] == 5.0 and run["req_per_s"] == 100.0 and run["meets_target"] is None


def fake_service(bench: ModuleType, capacity: float, generator_limit: float = 1e9):
    """A step function: passes up to ``capacity``, generator late above ``generator_limit``."""
    rates: list[float] = []

    def step(rate: float):
        rates.append(rate)
        if rate > generator_limit:
            return bench.open_run("step", rate, None, raw_run(late=50))
        return bench.open_run("step", rate, None, raw_run(p99_ms=5 if rate <= capacity else 2e3))

    return step, rates


def test_capacity_search_ramps_up_then_bisects(bench: ModuleType) -> None:
    step, rates = fake_service(bench, capacity=300)
    capacity, limited_by, steps = bench.search_capacity(step, start=25, bisect_steps=4)
    assert rates[:6] == [25, 50, 100, 200, 400, pytest.approx((200 * 400) ** 0.5)]
    assert len(rates) == 5 + 4 and [s["rate"] for s in steps] == rates
    assert limited_by == "service" and 200 < capacity <= 300
    assert capacity == max(s["rate"] for s in steps if s["outcome"] == "pass")
    assert all(s["outcome"] == "fail" for s in steps if s["rate"] > 300)
    # bisection stops once within 5%
    step, rates = fake_service(bench, capacity=300)
    capacity, *_ = bench.search_capacity(step, start=25, bisect_steps=50)
    assert len(rates) < 5 + 50 and 300 / 1.05 <= capacity <= 300


def test_capacity_search_down_capped_and_generator_bound(bench: ModuleType) -> None:
    step, rates = fake_service(bench, capacity=7)
    capacity, limited_by, _ = bench.search_capacity(step, start=25, bisect_steps=0)
    assert rates == [25, 12.5, 6.25] and capacity == 6.25 and limited_by == "service"
    step, rates = fake_service(bench, capacity=0.5)
    capacity, limited_by, _ = bench.search_capacity(step, start=4, bisect_steps=3)
    assert rates == [4, 2, 1] and capacity == 0.0 and limited_by == "service"
    step, rates = fake_service(bench, capacity=1e9)
    capacity, limited_by, _ = bench.search_capacity(step, start=25, max_rate=150)
    assert rates == [25, 50, 100, 150] and (capacity, limited_by) == (150, "max-rate")
    step, _ = fake_service(bench, capacity=1e9, generator_limit=120)
    capacity, limited_by, _ = bench.search_capacity(step, start=25, bisect_steps=0)
    assert (capacity, limited_by) == (100, "generator")


def test_poisson_arrivals_are_seeded_and_in_the_window(workers: ModuleType) -> None:
    offsets = workers.arrival_offsets(200.0, 10.0, seed=7)
    assert offsets == workers.arrival_offsets(200.0, 10.0, seed=7)
    assert offsets != workers.arrival_offsets(200.0, 10.0, seed=8)
    assert offsets == sorted(offsets) and offsets[0] > 0 and offsets[-1] < 10.0
    assert 1800 < len(offsets) < 2200  # 2000 expected; exponential gaps, fixed seed
    gaps = [b - a for a, b in zip([0.0, *offsets], offsets, strict=False)]
    assert 0.0045 < sum(gaps) / len(gaps) < 0.0055


def test_reference_batches_sorted_or_random_full_only(
    bench: ModuleType, workers: ModuleType
) -> None:
    tokens = [30, 10, 50, 20, 40, 60, 70]
    batches = workers.make_batches(tokens, 3, True, seed=1)
    assert sorted(batches) == [[1, 3, 0], [4, 2, 5]]  # consecutive by length, no partial batch
    assert batches == workers.make_batches(tokens, 3, True, seed=1)
    shuffled = workers.make_batches(tokens, 3, False, seed=1)
    assert len(shuffled) == 2 and all(len(b) == 3 for b in shuffled)
    assert len({i for b in shuffled for i in b}) == 6
    assert workers.make_batches(tokens, 10, True, seed=0) == [[1, 3, 0, 4, 2, 5, 6]]
    # matched: random draws, sizes floor and ceil of a fractional mean, mixed to that mean
    pool = list(range(10_000))
    drawn = workers.make_batches([1] * len(pool), 2.25, False, seed=3)
    sizes = [len(b) for b in drawn]
    assert set(sizes) == {2, 3} and abs(sum(sizes) / len(sizes) - 2.25) < 0.03
    assert len({i for b in drawn for i in b}) == sum(sizes) > 9_990  # each tweet at most once

    keys = ("backend", "processes", "threads", "batch", "sorted", "tweets_per_s", "padding")
    rows = [
        dict(zip(keys, ("onnx", 1, None, 32, True, 90.0, 1.1), strict=True)),
        dict(zip(keys, ("onnx", 2, 1, 8, True, 120.0, 1.1), strict=True)),
        dict(zip(keys, ("onnx-int8", 2, 1, 1, True, 200.0, 1.0), strict=True)),
    ]
    assert bench.best(rows) == {
        "onnx": {"tweets_per_s": 120.0, "processes": 2, "threads": 1, "batch": 8, "sorted": True},
        "onnx-int8": {
            "tweets_per_s": 200.0, "processes": 2, "threads": 1, "batch": 1, "sorted": True,
        },
    }  # fmt: skip


def test_configuration_grid_and_baseline_ratios(bench: ModuleType, tmp_path) -> None:
    grid = ["--workers", "1", "2", "--batching", "requests", "tokens", "--max_batch_tokens"]
    grid += ["256", "--server_threads", "auto", "1"]
    args = bench.build_parser().parse_args(["--model", str(tmp_path), *grid])
    labels = [c.label for c in bench.service_configs(args)]
    assert labels == [
        "w1 requests t=auto", "w1 requests t1", "w1 tokens256 t=auto", "w1 tokens256 t1",
        "w2 requests t=auto", "w2 requests t1", "w2 tokens256 t=auto", "w2 tokens256 t1",
    ]  # fmt: skip
    levers = ["--server_args", "", "X=1 --max_wait_ms 1", "", "--workers", "2"]
    args = bench.build_parser().parse_args(["--model", str(tmp_path), *levers])
    labels = [c.label for c in bench.service_configs(args)]
    assert labels == ["w2 requests t=auto", "w2 requests t=auto X=1 --max_wait_ms 1"]
    assert args.server_max_queue == 64 and args.clients == [1, 8, 32] and args.pool == 1024
    with pytest.raises(SystemExit):
        bench.build_parser().parse_args(["--model", "m", "--server_threads", "0"])
    args.skip_closed_loop, args.baseline = True, True
    with pytest.raises(bench.ConfigError, match="--baseline"):
        bench.check_args(args)

    config = bench.ServiceConfig()
    service = [bench.load_result("onnx-int8", config, c, wrk_raw(300)) for c in (1, 32)]
    minimal = bench.load_result("minimal", config, 32, wrk_raw(500))
    (row,) = bench.baseline_rows(service, [minimal])  # no minimal run at 1 client
    assert (row["clients"], row["service_req_per_s"], row["minimal_req_per_s"]) == (32, 300, 500)
    assert row["ratio"] == 300.0 / 500.0 and row["meets_target"] is True and row["repeat"] == 0
    service[1]["repeat"] = 1  # --repeats: each repeat against the minimal app of the same repeat
    assert bench.baseline_rows(service, [minimal]) == []


def test_wrk_result_line_is_parsed(bench: ModuleType) -> None:
    """The line ``wrk_predict.lua``'s ``done()`` prints, among wrk's own summary."""
    out = (
        "Running 1s test @ http://127.0.0.1:1/predict\n  4130 requests in 1.00s\n"
        'wrk_result {"requests": 4130, "duration_us": 1003419, "http_errors": 3, "connect": 0, '
        '"read": 1, "write": 0, "timeout": 2, "p50_ms": 0.4280, "p95_ms": 4.1790, '
        '"p99_ms": 27.6420}\n'
    )
    raw = bench.parse_wrk(out)
    assert raw["requests"] == 4130 and raw["p99_ms"] == 27.642
    raw |= {"server_cpu_s": 1.0, "client_cpu_s": 0.5, "wall_s": 1.25}
    row = bench.load_result("onnx", bench.ServiceConfig(), 8, raw)
    assert (row["requests"], row["errors"]) == (4127, 6)
    assert row["error_kinds"] == {"http_errors": 3, "read": 1, "timeout": 2}
    assert row["req_per_s"] == 4127 / 1.003419
    assert (row["server_cpu"], row["client_cpu"]) == (0.8, 0.4)
    assert row["server_cpu_s_per_request"] == 1.0 / 4127
    with pytest.raises(RuntimeError, match="no result line"):
        bench.parse_wrk("unable to connect\n")
    lua = Path(bench.WRK_SCRIPT).read_text()
    assert all(f'"{key}"' in lua for key in raw if not key.endswith(("_s", "_cpu_s")))


def test_minimal_app_uses_the_service_request_model(bench: ModuleType, workers: ModuleType) -> None:
    client = TestClient(workers.build_app(max_chars=20, max_items=2))
    assert client.get("/ready").status_code == 200
    answer = client.post("/predict", json={"text": "Forest fire", "keyword": "fire"})
    assert answer.status_code == 200
    Prediction.model_validate(answer.json())
    batch = client.post("/predict", json={"items": [{"text": "a"}, {"text": "b"}]})
    assert [Prediction.model_validate(p) for p in batch.json()["predictions"]]
    assert client.post("/predict", json={"text": "x" * 21}).status_code == 422
    assert client.post("/predict", json={"text": "  "}).status_code == 422
    assert client.post("/predict", json={"items": [{"text": "a"}] * 3}).status_code == 422
    command = bench.baseline_command(8001)  # uvicorn serves build_app as the service is served
    assert command[1:5] == ["-m", "uvicorn", "--factory", "_serve_workers:build_app"]
    assert command[command.index("--app-dir") + 1] == str(bench.HERE)
    assert {"--port", "8001", "uvloop", "httptools", "--no-access-log"} <= set(command)


def test_bench_models_compares_bundles_side_by_side(tiny_bundle, processed_dir, tmp_path, capsys):
    bench_models = import_script("bench_models")
    out = tmp_path / "bench_models.json"
    results = bench_models.main(
        [
            "--bundle", f"a={tiny_bundle}", "--bundle", f"b={tiny_bundle}",
            "--data", str(processed_dir / "val.csv"), "--reps", "20", "--rounds", "2",
            "--json", str(out),
        ]
    )  # fmt: skip
    assert json.loads(out.read_text()) == results
    assert results["bundles"]["a"]["ratio_to_first"] == 1.0
    for row in results["bundles"].values():
        assert len(row["round_medians_ms"]) == 2 and row["tweets_per_s_batched"] > 0
        assert row["size_mb"] > 0
        assert 0 < row["explain_median_ms"] <= row["explain_p95_ms"]
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("CPU: ") and [line.split()[0] for line in printed[2:]] == [
        "a",
        "b",
    ]
