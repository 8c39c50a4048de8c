"""``scripts/latency_bound.py``: the simulated server against queueing theory (one tweet per
batch: Lindley's recursion exactly, the Pollaczek-Khinchine mean), batching under load, the
whole script on the tiny bundle, and its message on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.paths import ROOT
from helpers.scripts import import_script


@pytest.fixture(scope="module")
def bound() -> Any:
    return import_script("latency_bound")


def arrivals(rate: float, count: int, seed: int = 0) -> np.ndarray:
    return np.cumsum(np.random.default_rng(seed).exponential(1 / rate, count))


def test_one_tweet_per_batch_is_a_single_server_queue(bound: Any) -> None:
    times, service = arrivals(80.0, 200_000), 0.01  # load 0.8
    latency = bound.simulate(times, np.array([0.0, service]), cap=1)
    done = np.empty_like(times)
    free = 0.0
    for i, t in enumerate(times):  # Lindley: each starts when it arrives or the last one ends
        free = done[i] = max(free, t) + service
    np.testing.assert_allclose(latency, done - times)
    # M/D/1: mean wait = load * service / (2 * (1 - load)) = 20 ms, so 30 ms in all
    assert latency.mean() == pytest.approx(0.030, rel=0.05)


def test_batches_grow_with_load_and_beat_one_at_a_time(bound: Any) -> None:
    cost = np.array([0.0, 0.010, 0.012, 0.014, 0.016])  # a batch of 4 costs 1.6x one tweet
    times = arrivals(95.0, 50_000)  # load 0.95 one at a time
    batched, single = bound.simulate(times, cost, cap=4), bound.simulate(times, cost, cap=1)
    assert np.percentile(batched, 99) < np.percentile(single, 99) / 2
    assert np.all(batched >= cost[1] - 1e-12)  # nothing answers faster than the model runs


def test_script_on_the_tiny_bundle(
    run_script: Callable[..., Any], tiny_bundle: Path, processed_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bound.json"
    proc = run_script(
        "latency_bound", "--model", str(tiny_bundle), "--data", str(processed_dir / "val.csv"),
        "--max_batch_size", "1", "3", "--reps", "3", "--rates", "20", "--seconds", "20",
        "--json", str(out),
    )  # fmt: skip
    report = json.loads(out.read_text())
    costs = {int(size): ms for size, ms in report["batch_ms"].items()}
    assert list(costs) == [1, 2, 3] and min(costs.values()) > 0
    by_cap = {row["max_batch_size"]: row for row in report["bounds"]}
    assert list(by_cap) == [1, 3]
    assert by_cap[1]["capacity"] == pytest.approx(1000 / costs[1])
    assert by_cap[3]["capacity"] == pytest.approx(max(1000 * b / costs[b] for b in costs))
    for row in by_cap.values():
        loads = [at.get("load") for at in row["at"]]
        assert loads == [0.5, 0.8, None]  # --loads, then --rates
        assert row["at"][2]["rate"] == 20
        at_target = row["at"][1]
        assert at_target["rate"] == pytest.approx(0.8 * row["capacity"])
        assert row["speedup_needed"] == pytest.approx(at_target["p99_ms"] / 50)
        floor = min(costs.values()) * (1 - 1e-9)  # arrival + cost - arrival: rounded
        assert all(at["p99_ms"] >= at["p50_ms"] >= floor for at in row["at"])
    assert report["machine"]["cpu_model"] and "max_batch_size" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "missing-bundle"], "missing-bundle: model directory not found"),
        (["--model", "m", "--loads", "0"], "argument --loads: invalid PositiveFloat value: '0'"),
    ],
)
def test_bad_input_is_one_message_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "latency_bound.py"), *args, "--json", "out.json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == f"latency_bound.py: error: {message}"
    assert not (tmp_path / "out.json").exists()
