"""The service as deployed (a real ``tweetcls serve`` process) when its surroundings fail:
the request-log database down at start and mid-traffic, SIGTERM during a burst, and two
replicas sharing one PostgreSQL log; ``--workers`` processes on one port."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest
import sqlalchemy as sa
from helpers.polling import eventually
from helpers.postgres import PostgresServer, postgres_server  # noqa: F401  (fixture)
from helpers.servers import running_server
from prometheus_client.parser import text_string_to_metric_families

from tweetcls.cli import main as cli_main
from tweetcls.monitoring.logtable import TABLE_NAME

TWEET = {"text": "Forest fire near La Ronge Sask. Canada", "keyword": "wildfire"}


def metric(url: str, name: str) -> float:
    """The value of an unlabelled sample of the service's ``/metrics``."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise AssertionError(f"{name} not in /metrics")


def logged_rows(database_url: str) -> int:
    """Rows in the request log, 0 while the database or the table is missing."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text(f"SELECT count(*) FROM {TABLE_NAME}")).scalar_one()
    except sa.exc.SQLAlchemyError:
        return 0
    finally:
        engine.dispose()


class Traffic:
    """Single-tweet ``POST /predict`` requests in a loop on a thread, until stopped."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.statuses: Counter[int] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                self.statuses[client.post("/predict", json=TWEET).status_code] += 1

    def answered(self) -> int:
        return self.statuses[200]

    def stop(self) -> Counter[int]:
        self._stop.set()
        self._thread.join(60)
        return self.statuses


def ready_log_status(url: str) -> str:
    answer = httpx.get(f"{url}/ready", timeout=10)
    assert answer.status_code == 200  # ready all along: predictions do not need the log
    return answer.json()["request_log"]


def test_postgres_down_at_start_and_mid_traffic_loses_no_prediction(
    tiny_bundle: Path,
    tmp_path: Path,
    postgres_server: PostgresServer,  # noqa: F811
) -> None:
    postgres_server.stop()
    with running_server(
        tmp_path / "serve.log", model=tiny_bundle, database_url=postgres_server.url, threads=1
    ) as server:
        url = server.url
        assert ready_log_status(url) == "degraded"  # the log is down, the service is up
        assert metric(url, "tweetcls_request_log_up") == 0
        traffic = Traffic(url)
        eventually(lambda: traffic.answered() >= 20, what="20 answers with the log down")
        postgres_server.start()
        eventually(lambda: ready_log_status(url) == "ok", what="the log reconnects")
        eventually(lambda: traffic.answered() >= 60, what="40 more answers")
        postgres_server.stop()  # mid-traffic
        eventually(lambda: ready_log_status(url) == "degraded", what="the outage is noticed")
        during = traffic.answered()
        eventually(lambda: traffic.answered() >= during + 30, what="answers during the outage")
        drift = httpx.get(f"{url}/drift", timeout=30)
        assert drift.status_code == 503 and "request log" in drift.json()["detail"]
        postgres_server.start()
        eventually(lambda: ready_log_status(url) == "ok", what="the log reconnects again")
        statuses = traffic.stop()
        assert set(statuses) == {200}, statuses  # every request answered
        eventually(
            lambda: logged_rows(postgres_server.url) == statuses[200],
            what=f"{statuses[200]} rows logged",
        )
        assert metric(url, "tweetcls_request_log_dropped_total") == 0
        assert metric(url, "tweetcls_request_log_up") == 1
        assert server.terminate() == 0
    assert "Traceback" not in server.output()


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_answers_every_accepted_request_and_logs_exactly_those(
    tiny_bundle: Path, tmp_path: Path, workers: int
) -> None:
    database = tmp_path / "requests.db"
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    with running_server(
        tmp_path / "serve.log",
        model=tiny_bundle,
        database_url=f"sqlite:///{database}",
        threads=1,
        workers=workers,  # 2: two processes writing one SQLite log
        max_wait_ms=20,  # requests wait in micro-batches when the signal comes
    ) as server:

        def client() -> None:
            """Requests until the server refuses one; a refusal ends the client."""
            while True:
                try:
                    answer = httpx.post(f"{server.url}/predict", json=TWEET, timeout=60)
                except httpx.TransportError:  # refused or closed before it was accepted
                    with lock:
                        outcomes["refused"] += 1
                    return
                with lock:
                    outcomes[str(answer.status_code)] += 1

        with ThreadPoolExecutor(16) as pool:
            for _ in range(16):
                pool.submit(client)
            eventually(lambda: outcomes["200"] >= 100, what="100 answers before SIGTERM")
            started = time.monotonic()
            code = server.terminate(timeout=40)
            stopped_in = time.monotonic() - started
    assert code == 0, server.output()
    assert stopped_in < 40
    assert set(outcomes) <= {"200", "refused"}, outcomes  # no 5xx, no answer cut off
    assert outcomes["refused"] == 16  # every client ended on a refusal
    with sqlite3.connect(database) as connection:
        (rows,) = connection.execute(f"SELECT count(*) FROM {TABLE_NAME}").fetchone()
    assert rows == outcomes["200"]  # exactly the answered requests were logged
    assert "Traceback" not in server.output()


def test_two_replicas_share_one_postgres_log_and_drift_covers_both(
    tiny_bundle: Path,
    tmp_path: Path,
    postgres_server: PostgresServer,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    flags = {"model": tiny_bundle, "database_url": postgres_server.url, "threads": 1}
    flags["drift_min_samples"] = 10
    with (
        running_server(tmp_path / "a.log", **flags) as first,
        running_server(tmp_path / "b.log", **flags) as second,
    ):
        for server, count in ((first, 30), (second, 20)):
            with httpx.Client(base_url=server.url, timeout=30) as client:
                for _ in range(count):
                    assert client.post("/predict", json=TWEET).status_code == 200
        eventually(lambda: logged_rows(postgres_server.url) == 50, what="50 rows")
        for server in (first, second):
            report = httpx.get(f"{server.url}/drift", params={"since": "1h"}, timeout=30)
            assert report.status_code == 200
            assert report.json()["traffic_samples"] == 50  # both replicas' rows
    out = tmp_path / "drift"
    cli_main(
        [
            "drift",
            "--database_url",
            postgres_server.url,
            "--since",
            "1h",
            "--reference",
            str(tiny_bundle),
            "--out",
            str(out),
            "--drift_min_samples",
            "10",
        ]
    )
    assert "over 50 predictions" in capsys.readouterr().out


def test_workers_share_the_port_and_a_dead_worker_is_replaced(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    database_url = f"sqlite:///{tmp_path / 'requests.db'}"
    with running_server(
        tmp_path / "serve.log", model=tiny_bundle, database_url=database_url, workers=2
    ) as server:
        supervisor = psutil.Process(server.process.pid)

        def workers() -> list[psutil.Process]:  # not multiprocessing's resource tracker
            found = []
            for child in supervisor.children():
                with contextlib.suppress(psutil.Error):  # a zombie not yet reaped
                    if "spawn_main" in " ".join(child.cmdline()):
                        found.append(child)
            return found

        eventually(lambda: len(workers()) == 2, what="two workers")
        first, second = workers()
        first.kill()  # a worker crashes
        eventually(
            lambda: {p.pid for p in workers()} - {first.pid, second.pid} != set(),
            what="a replacement worker",
        )
        server.wait_ready()  # refused while no worker listens (the other may still be loading)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for _ in range(20):
                assert client.post("/predict", json=TWEET).status_code == 200
        assert server.terminate() == 0
    assert "restarting" in server.output()


def test_a_taken_port_is_one_error_line_with_several_workers(
    tiny_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:  # listening, without SO_REUSEPORT
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as info:
            cli_main(["serve", "--model", str(tiny_bundle), "--workers", "2", "--port", str(port)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: --port {port}: Address already in use"
