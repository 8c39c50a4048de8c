"""scripts/bench_serve.py: the full benchmark on the tiny bundle (one backend, 2 client counts,
fractions of a second each), its target verdict, and its error accounting."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from types import ModuleType

import pytest
from helpers.scripts import import_script

from tweetcls.core.bundle import BACKENDS, load_bundle
from tweetcls.core.ports import free_port
from tweetcls.inference import backends
from tweetcls.monitoring.settings import parse_command_line
from tweetcls.serving.command import serve_argv
from tweetcls.serving.settings import ServeSettings

LOAD_FIELDS = {
    "backend", "clients", "requests", "errors", "error_kinds", "duration_s", "req_per_s",
    "p50_ms", "p95_ms", "p99_ms", "server_cpu", "client_cpu", "meets_target",
}  # fmt: skip


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """The script, imported as a module."""
    return import_script("bench_serve")


def test_backends_and_server_command_are_the_service_s(bench: ModuleType, tmp_path) -> None:
    backend_flag = next(a for a in bench.build_parser()._actions if a.dest == "backends")
    assert tuple(backend_flag.choices) == BACKENDS and backend_flag.default == list(BACKENDS)

    database_url = f"sqlite:///{tmp_path / 'r.db'}"
    command = bench.serve_command(tmp_path, "onnx", 8123, 2, database_url, "--max_wait_ms 5")
    assert command[:4] == serve_argv()  # python -m tweetcls serve, from the one function
    settings = parse_command_line(ServeSettings, command[4:], "tweetcls serve")
    assert (settings.model, settings.backend, settings.port) == (tmp_path, "onnx", 8123)
    assert (settings.threads, settings.max_wait_ms, settings.host) == (2, 5.0, "127.0.0.1")
    assert settings.database_url == database_url
    assert "--threads" not in bench.serve_command(tmp_path, "onnx", 1, None, database_url, "")


def test_tweets_are_distinct_non_empty_and_limited(bench: ModuleType, tmp_path) -> None:
    data = tmp_path / "tweets.csv"
    data.write_text(
        'id,keyword,text\n1,fire,"Forest fire, near"\n2,, \n3,,Forest fire\n'
        '4, ,"Forest fire, near"\n5,flood%20warning,Rain\n',
        encoding="utf-8",
    )
    assert bench.load_tweets(data, 10) == [
        {"text": "Forest fire, near", "keyword": "fire"},
        {"text": "Forest fire", "keyword": None},
        {"text": "Rain", "keyword": "flood%20warning"},
    ]
    assert len(bench.load_tweets(data, 2)) == 2
    assert bench.predict_body({"text": "Rain", "keyword": None}) == b'{"text": "Rain"}'
    data.write_text("id,tweet\n1,hello\n", encoding="utf-8")
    with pytest.raises(bench.ConfigError, match=r"--data .*: no 'text' column"):
        bench.load_tweets(data, 10)


def test_benchmark_runs_on_the_tiny_bundle(
    bench: ModuleType, tiny_bundle: Path, processed_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "bench.json"
    bench.main(
        [
            "--model", str(tiny_bundle),
            "--backends", "onnx-int8",
            "--clients", "1", "2",
            "--duration", "0.5",
            "--warmup", "0.2",
            "--data", str(processed_dir / "val.csv"),
            "--latency-reps", "5",
            "--server-threads", "1",
            "--json", str(out),
        ]
    )  # fmt: skip
    table = capsys.readouterr().out
    report = json.loads(out.read_text())

    assert report["settings"]["model_version"] == load_bundle(tiny_bundle).version
    assert report["settings"]["tweets"] > 100  # distinct real tweets of val.csv
    rows = report["load"]
    assert [(r["backend"], r["clients"]) for r in rows] == [("onnx-int8", 1), ("onnx-int8", 2)]
    for row in rows:
        assert set(row) == LOAD_FIELDS
        assert row["errors"] == 0 and row["error_kinds"] == {}, row
        assert row["requests"] > 0 and row["req_per_s"] > 0 and row["duration_s"] > 0
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
        assert row["server_cpu"] > 0 and row["client_cpu"] > 0
        assert row["meets_target"] is None  # judged at 32 clients only
        assert f"| onnx-int8 | {row['clients']} | {row['requests']} |" in table

    (latency,) = report["model_latency"]
    assert latency["backend"] == "onnx-int8" and latency["reps"] == 5
    assert len(latency["round_medians_ms"]) == 5  # --latency-rounds default, one call each
    assert 0 < latency["median_ms"] <= latency["p90_ms"]
    assert f"| onnx-int8 | {latency['median_ms']:.2f} |" in table
    assert report["int8_speedup"] is None  # no pytorch run to compare with
    assert report["targets"] == {
        "clients": 32, "req_per_s": 600.0, "p99_ms": 50.0, "int8_speedup": 2.5,
    }  # fmt: skip
    assert ">= 600 req/s, p99 <= 50 ms, 0 errors" in table


def test_latency_rounds_interleave_the_backends(
    bench: ModuleType, tiny_bundle: Path, processed_dir: Path, monkeypatch
) -> None:
    tweets = bench.load_tweets(processed_dir / "val.csv", 50)
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
    results = bench.model_latency(
        tiny_bundle, ["onnx-int8", "pytorch"], tweets, reps=6, rounds=3, threads=1, warmup=2
    )
    assert [r.backend for r in results] == ["onnx-int8", "pytorch"]
    for r in results:
        assert r.reps == 6 and len(r.round_medians_ms) == 3
        assert 0 < r.median_ms <= r.p90_ms
    timed = calls[4:]  # after 2 warm-up calls each
    assert timed == ["onnx-int8"] * 2 + ["pytorch"] * 4 + ["onnx-int8"] * 4 + ["pytorch"] * 2

    speedup, rounds = bench.int8_speedup(results)
    assert speedup == results[1].median_ms / results[0].median_ms
    assert rounds == [
        e / i for e, i in zip(results[1].round_medians_ms, results[0].round_medians_ms, strict=True)
    ]
    assert bench.int8_speedup(results[:1]) == (None, [])


def test_target_verdict_at_32_clients(bench: ModuleType) -> None:
    fast = {"latencies_ms": [10.0] * 700, "failures": {}, "duration_s": 1.0}
    fast |= {"server_cpu": 1.5, "client_cpu": 0.2}
    assert bench.summarize("onnx-int8", 32, fast).meets_target is True
    assert bench.summarize("onnx-int8", 8, fast).meets_target is None
    one_error = fast | {"failures": {"503": 1}}
    assert bench.summarize("onnx-int8", 32, one_error).meets_target is False
    slow_tail = fast | {"latencies_ms": [10.0] * 690 + [80.0] * 10}
    assert bench.summarize("onnx-int8", 32, slow_tail).p99_ms > 50
    assert bench.summarize("onnx-int8", 32, slow_tail).meets_target is False
    too_few = fast | {"latencies_ms": [10.0] * 500}
    assert bench.summarize("onnx-int8", 32, too_few).meets_target is False


def test_failed_requests_count_as_errors(bench: ModuleType) -> None:
    """Nothing listens on the port: every request fails, none is timed."""
    args = argparse.Namespace(warmup=0.0, duration=0.2, request_timeout=2.0, http="auto")
    args.http, args.client_cpus = bench.http_library("auto"), None
    url = f"http://127.0.0.1:{free_port()}/predict"
    raw = bench.run_load(url, [b'{"text": "fire"}'], 2, args, os.getpid())
    row = bench.summarize("onnx", 2, raw)
    assert row.requests == 0 and row.errors > 0 and sum(row.error_kinds.values()) == row.errors


def test_bad_data_file_is_one_clear_error(
    bench: ModuleType, tiny_bundle: Path, tmp_path: Path, capsys
) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--model", str(tiny_bundle), "--data", str(missing)])
    assert exit_info.value.code == 2
    assert f"error: --data {missing}: not found" in capsys.readouterr().err


def test_bench_models_compares_bundles_side_by_side(tiny_bundle, processed_dir, tmp_path, capsys):
    bench_models = import_script("bench_models")
    out = tmp_path / "bench_models.json"
    results = bench_models.main(
        [
            "--bundle",
            f"a={tiny_bundle}",
            "--bundle",
            f"b={tiny_bundle}",
            "--data",
            str(processed_dir / "val.csv"),
            "--reps",
            "20",
            "--rounds",
            "2",
            "--json",
            str(out),
        ]
    )
    assert json.loads(out.read_text()) == results
    assert results["bundles"]["a"]["ratio_to_first"] == 1.0
    for row in results["bundles"].values():
        assert len(row["round_medians_ms"]) == 2 and row["tweets_per_s_batched"] > 0
        assert row["size_mb"] > 0
    printed = capsys.readouterr().out
    assert "| a |" in printed and "| b |" in printed and "CPU:" in printed
