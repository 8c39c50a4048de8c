"""The parts of scripts/bench_serve.py that need no server: the open-loop capacity search and
step verdicts, Poisson arrivals, the reference batches (ideal and matched), wrk's result line,
the configuration grid, the baseline ratios, the summary, and the minimal FastAPI app of
--baseline (scripts/_serve_workers.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.testclient import TestClient
from helpers.scripts import import_script

from tweetcls.serving.schemas import Prediction


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """The script, imported as a module (its helpers come with it)."""
    return import_script("bench_serve")


@pytest.fixture(scope="module")
def workers(bench: ModuleType) -> ModuleType:
    """The processes' module the script imported."""
    return sys.modules["_serve_workers"]


def wrk_raw(requests: int) -> dict:
    """What ``run_wrk`` returns for 1 s of ``requests`` answers, no errors."""
    raw = {"requests": requests, "duration_us": 1_000_000, "http_errors": 0, "connect": 0}
    raw |= {"read": 0, "write": 0, "timeout": 0, "p50_ms": 1.0, "p95_ms": 1.0, "p99_ms": 1.0}
    return raw | {"server_cpu_s": 1.0, "client_cpu_s": 0.1, "wall_s": 1.0}


def raw_run(p99_ms: float = 10.0, errors: int = 0, late: int = 0, dropped: int = 0) -> dict:
    """Load-generator results of 100 requests: 99 at 5 ms, one at ``p99_ms``-ish."""
    latencies = [5.0] * 98 + [p99_ms] * 2
    return {
        "latencies_ms": latencies,
        "failures": {"503": errors} if errors else {},
        "duration_s": 1.0,
        "server_cpu": 1.0,
        "client_cpu": 0.1,
        "sent": 100 + errors,
        "late": late,
        "dropped": dropped,
        "shed": errors,
        "retry_after": errors,
    }


def test_step_outcomes(bench: ModuleType) -> None:
    def outcome(**kwargs) -> str:
        return bench.open_run("step", 10, None, raw_run(**kwargs))["outcome"]

    assert outcome() == "pass" and outcome(late=5) == "pass"  # 5% slack
    assert outcome(p99_ms=1500) == "fail" and outcome(errors=1) == "fail"
    assert outcome(late=6) == "generator-limited" and outcome(dropped=1) == "generator-limited"
    empty = raw_run() | {"latencies_ms": [], "sent": 0}
    run = bench.open_run("step", 10, None, empty)
    assert run["outcome"] == "fail" and run["requests"] == 0 and run["p99_ms"] != run["p99_ms"]
    run = bench.open_run("150%", 15, 64, raw_run(errors=3))
    assert (run["shed"], run["errors"], run["error_kinds"], run["max_queue"]) == (
        3,
        3,
        {"503": 3},
        64,
    )
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
    load = workers
    offsets = load.arrival_offsets(200.0, 10.0, seed=7)
    assert offsets == load.arrival_offsets(200.0, 10.0, seed=7)
    assert offsets != load.arrival_offsets(200.0, 10.0, seed=8)
    assert offsets == sorted(offsets) and offsets[0] > 0 and offsets[-1] < 10.0
    assert 1800 < len(offsets) < 2200  # 2000 expected; exponential gaps, fixed seed
    gaps = [b - a for a, b in zip([0.0, *offsets], offsets, strict=False)]
    assert 0.0045 < sum(gaps) / len(gaps) < 0.0055


def test_reference_batches_sorted_or_random_full_only(
    bench: ModuleType, workers: ModuleType
) -> None:
    reference = workers
    tokens = [30, 10, 50, 20, 40, 60, 70]
    batches = reference.make_batches(tokens, 3, True, seed=1)
    assert sorted(batches) == [[1, 3, 0], [4, 2, 5]]  # consecutive by length, no partial batch
    assert batches == reference.make_batches(tokens, 3, True, seed=1)
    shuffled = reference.make_batches(tokens, 3, False, seed=1)
    assert len(shuffled) == 2 and all(len(b) == 3 for b in shuffled)
    assert len({i for b in shuffled for i in b}) == 6
    assert reference.make_batches(tokens, 10, True, seed=0) == [[1, 3, 0, 4, 2, 5, 6]]
    # matched: random draws, sizes floor and ceil of a fractional mean, mixed to that mean
    pool = list(range(10_000))
    drawn = reference.make_batches([1] * len(pool), 2.25, False, seed=3)
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
    assert bench.baseline_command(8001)[-3:] == [str(bench.WORKERS), "minimal", "8001"]


def test_summary_shows_the_host_tables_and_int8_speedup(bench: ModuleType) -> None:
    latency = [
        {"backend": "onnx-int8", "reps": 4, "median_ms": 2.0, "p90_ms": 2.5},
        {"backend": "pytorch", "reps": 4, "median_ms": 6.0, "p90_ms": 7.0},
    ]
    latency[0]["round_medians_ms"], latency[1]["round_medians_ms"] = [2.0, 2.1], [6.0, 6.3]
    speedup, rounds = bench.int8_speedup(latency)
    settings = {"model": "m", "model_version": "v1", "tweets": 100, "data": "d.csv"}
    machine = sys.modules["_bench_common"].host_info(bench.VERSIONS)
    report = {key: [] for key in ("reference", "matched", "load", "baseline", "open_loop")}
    report |= {"settings": settings | {"server_cpus": [0], "client_cpus": None}}
    report |= {"machine": machine, "model_latency": latency, "reference_best": {}}
    report |= {"int8_speedup": speedup, "int8_speedup_rounds": rounds}
    summary = bench.summary(report)
    assert machine["cpu_model"] in summary and "server CPUs [0], client CPUs all" in summary
    assert "load:" not in summary and "open_loop runs:" not in summary
    latency_table = summary.split("model_latency:\n")[1].splitlines()
    assert latency_table[1].split() == ["onnx-int8", "4", "2", "2.5"]
    assert "int8 speed-up at batch 1: 3.00x (3.00-3.00)" in summary


def test_dashed_flags_still_work_with_a_deprecation_line(bench: ModuleType, capsys) -> None:
    parser = bench.build_parser()
    argv = ["--model", "m", "--skip-latency", "--max-batch-tokens=256", "--server-args=--a-b"]
    translated = bench.underscore_flags(parser, argv)
    assert translated == [
        "--model",
        "m",
        "--skip_latency",
        "--max_batch_tokens=256",
        "--server_args=--a-b",
    ]
    err = capsys.readouterr().err
    assert "--skip-latency is deprecated, use --skip_latency" in err and "--a-b" not in err
    args = parser.parse_args(translated)
    assert args.skip_latency and args.max_batch_tokens == 256 and args.server_args == "--a-b"
