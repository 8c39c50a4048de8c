"""The HTTP service on the tiny bundle: predictions, ops routes, metrics, log, batching, errors."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tweetcls.core.bundle import BACKENDS, load_bundle
from tweetcls.inference.backends import load_backend
from tweetcls.inference.base import Backend
from tweetcls.monitoring.requestlog import RequestLog
from tweetcls.serving.app import create_app
from tweetcls.serving.batcher import STAGES, BatcherClosed, BatcherOverloaded, MicroBatcher
from tweetcls.serving.limits import body_limits
from tweetcls.serving.settings import ServeSettings
from tweetcls.serving.state import Service

TWEETS = [
    ("Forest fire near La Ronge Sask. Canada", "wildfire"),
    ("I love fruits", None),
    ("Flooding on the highway, stay safe everyone", "flood"),
    ("What a goooooooaaaaaal!!!!!!", None),
]
BATCH = {"items": [{"text": t, "keyword": k} for t, k in TWEETS]}
CONTRACT_METRICS = (
    "tweetcls_http_requests_total",
    "tweetcls_http_request_duration_seconds",
    "tweetcls_batch_size",
    "tweetcls_inference_duration_seconds",
    "tweetcls_predictions_total",
    "tweetcls_prediction_probability",
    "tweetcls_model_info",
    "tweetcls_drift_detected",
    "tweetcls_drift_share",
    "tweetcls_request_log_dropped_total",
    "tweetcls_stage_duration_seconds",
    "tweetcls_self_check_fallback",
)


@pytest.fixture
def settings(tiny_bundle: Path, tmp_path: Path) -> ServeSettings:
    """Settings on the tiny bundle with a private SQLite request log, no periodic drift."""
    return ServeSettings(
        model=tiny_bundle,
        database_url=f"sqlite:///{tmp_path / 'requests.db'}",
        drift_interval_s=0,
        threads=1,
    )


def replace(settings: ServeSettings, **changes) -> ServeSettings:
    """``settings`` with ``changes``, validated again."""
    return ServeSettings(**{**settings.model_dump(), **changes})


def metric_values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(sample name, sorted labels): value}`` of a Prometheus exposition."""
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def expected(bundle_dir: Path, kind: str = "onnx-int8", one_by_one: bool = False) -> np.ndarray:
    """The backend's own probabilities of TWEETS, as one batch or one call per tweet.

    int8 models quantize activations per call, so batch composition moves the 4th decimal.
    """
    backend = load_backend(load_bundle(bundle_dir), kind, threads=1)
    if one_by_one:
        return np.concatenate([backend.predict_proba([t], [k]) for t, k in TWEETS])
    return backend.predict_proba([t for t, _ in TWEETS], [k for _, k in TWEETS])


def test_predict_one_and_batch_match_the_backend(settings: ServeSettings) -> None:
    bundle = load_bundle(settings.model)
    want = expected(settings.model)
    want_one = expected(settings.model, one_by_one=True)[0]
    with TestClient(create_app(settings)) as client:
        one = client.post("/predict", json={"text": TWEETS[0][0], "keyword": TWEETS[0][1]})
        batch = client.post(
            "/predict", json={"items": [{"text": t, "keyword": k} for t, k in TWEETS]}
        )
    assert one.status_code == 200, one.text
    assert batch.status_code == 200, batch.text
    answers = [one.json(), *batch.json()["predictions"]]
    assert len(answers) == 1 + len(TWEETS)
    for answer, probability in zip(answers, [want_one, *want], strict=True):
        assert answer["probability"] == pytest.approx(float(probability), abs=1e-5)
        assert answer["label"] == int(answer["probability"] >= bundle.threshold)
        assert answer["label_name"] == ("disaster" if answer["label"] else "not_disaster")
        assert answer["model_version"] == bundle.version


def test_health_ready_version_before_and_after_loading(settings: ServeSettings) -> None:
    app = create_app(settings)
    cold = TestClient(app)  # no `with`: the lifespan (model loading) has not run
    assert cold.get("/health").json() == {"status": "ok"}
    assert cold.get("/ready").status_code == 503
    assert cold.get("/version").status_code == 503
    refused = cold.post("/predict", json={"text": "fire"})
    assert refused.status_code == 503
    assert "not loaded" in refused.json()["detail"]
    with TestClient(app) as client:
        ready = {"status": "ready", "request_log": "ok", "self_check": "passed"}
        assert client.get("/ready").json() == ready
        version = client.get("/version").json()
    bundle = load_bundle(settings.model)
    assert version == {**bundle.versions(), "backend": "onnx-int8"}
    assert len(version["version"]) == 12
    assert version["model_sha256"]["onnx-int8"]


@pytest.mark.parametrize("kind", BACKENDS)
def test_each_backend_loads_and_answers_like_itself(settings: ServeSettings, kind: str) -> None:
    want = expected(settings.model, kind)
    with TestClient(create_app(replace(settings, backend=kind))) as client:
        answer = client.post(
            "/predict", json={"items": [{"text": t, "keyword": k} for t, k in TWEETS]}
        )
        version = client.get("/version").json()
    assert answer.status_code == 200, answer.text
    got = [p["probability"] for p in answer.json()["predictions"]]
    assert got == pytest.approx(want.tolist(), abs=1e-5)
    assert version["backend"] == kind


def test_metrics_count_requests_and_predictions(settings: ServeSettings) -> None:
    with TestClient(create_app(settings)) as client:
        before = metric_values(client.get("/metrics").text)
        for text, keyword in TWEETS:
            assert (
                client.post("/predict", json={"text": text, "keyword": keyword}).status_code == 200
            )
        assert client.post("/predict", json={"text": "  "}).status_code == 422
        client.app.state.service.batcher.wait_for_bookkeeping()
        response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    for name in CONTRACT_METRICS:
        assert f"# TYPE {name} " in response.text, name
    after = metric_values(response.text)
    ok = (
        "tweetcls_http_requests_total",
        (("method", "POST"), ("route", "/predict"), ("status", "200")),
    )
    bad = (
        "tweetcls_http_requests_total",
        (("method", "POST"), ("route", "/predict"), ("status", "422")),
    )
    assert after[ok] - before.get(ok, 0) == len(TWEETS)
    assert after[bad] == 1
    predicted = sum(
        v for (name, _), v in after.items() if name == "tweetcls_predictions_total"
    ) - sum(v for (name, _), v in before.items() if name == "tweetcls_predictions_total")
    assert predicted == len(TWEETS)
    assert after[("tweetcls_prediction_probability_count", ())] == len(TWEETS)
    assert after[("tweetcls_batch_size_sum", ())] == len(TWEETS)
    assert after[("tweetcls_inference_duration_seconds_count", ())] >= 1
    # the stages inside the service: one queue wait per tweet, the others once per batch
    batches = after[("tweetcls_batch_size_count", ())]
    for stage in STAGES:
        count = after[("tweetcls_stage_duration_seconds_count", (("stage", stage),))]
        assert count == (len(TWEETS) if stage == "queue" else batches), stage
        assert after[("tweetcls_stage_duration_seconds_sum", (("stage", stage),))] >= 0
    assert after[("tweetcls_http_request_duration_seconds_count", (("route", "/predict"),))] == 5
    bundle = load_bundle(settings.model)
    info = ("tweetcls_model_info", (("backend", "onnx-int8"), ("version", bundle.version)))
    assert after[info] == 1


@pytest.mark.parametrize("log_text", [False, True])
def test_request_log_rows_are_written(settings: ServeSettings, log_text: bool) -> None:
    settings = replace(settings, log_text=log_text)
    start = datetime.now(timezone.utc) - timedelta(seconds=1)
    want = expected(settings.model, one_by_one=True)
    with TestClient(create_app(settings)) as client:
        for text, keyword in TWEETS:
            assert (
                client.post("/predict", json={"text": text, "keyword": keyword}).status_code == 200
            )
    # the lifespan's shutdown flushed and closed the log
    log = RequestLog(settings.database_url)
    try:
        rows = log.read(start)
    finally:
        log.close()
    assert len(rows) == len(TWEETS)
    assert rows["probability"].tolist() == pytest.approx(want.tolist(), abs=1e-5)
    assert rows["text_length"].tolist() == [len(t) for t, _ in TWEETS]
    assert [None if pd.isna(k) else k for k in rows["keyword"]] == [k for _, k in TWEETS]
    assert (rows["token_count"] > 2).all()
    assert (rows["latency_ms"] > 0).all()
    assert set(rows["model_version"]) == {load_bundle(settings.model).version}
    assert set(rows["backend"]) == {"onnx-int8"}
    if log_text:
        assert rows["text"].tolist() == [t for t, _ in TWEETS]
    else:
        assert rows["text"].isna().all()


def test_concurrent_requests_share_micro_batches(settings: ServeSettings) -> None:
    settings = replace(settings, max_wait_ms=300, max_batch_size=32)
    app = create_app(settings)

    async def scenario() -> tuple[list[httpx.Response], str]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                answers = await asyncio.gather(
                    *(client.post("/predict", json={"text": f"fire number {i}"}) for i in range(20))
                )
                # metrics are bookkept on the worker thread after the answers go out (so they
                # never delay one): wait, boundedly, until every answered tweet is counted
                for _ in range(200):
                    metrics = (await client.get("/metrics")).text
                    if metric_values(metrics).get(("tweetcls_batch_size_sum", ())) == 20:
                        break
                    await asyncio.sleep(0.025)
        return answers, metrics

    answers, metrics = asyncio.run(scenario())
    assert [a.status_code for a in answers] == [200] * 20
    values = metric_values(metrics)
    calls = values[("tweetcls_batch_size_count", ())]
    assert values[("tweetcls_batch_size_sum", ())] == 20
    assert calls < 20  # some model calls took several requests
    assert values[("tweetcls_batch_size_bucket", (("le", "1.0"),))] < calls


def test_batcher_drains_on_close_and_propagates_errors() -> None:
    def slow(texts, keywords):
        time.sleep(0.01)
        return np.full(len(texts), 0.25, dtype=np.float32), np.full(len(texts), 3)

    def broken(texts, keywords):
        raise RuntimeError("model exploded")

    async def scenario() -> None:
        batcher = MicroBatcher(slow, max_batch_size=4, max_wait_ms=50)
        batcher.start()
        jobs = batcher.submit([f"t{i}" for i in range(10)], [None] * 10)
        await batcher.close()  # before any batch ran: close must answer all ten
        assert [job.future.result() for job in jobs] == [0.25] * 10
        with pytest.raises(BatcherClosed):
            batcher.submit(["late"], [None])
        failing = MicroBatcher(broken, max_wait_ms=0)
        failing.start()
        with pytest.raises(RuntimeError, match="model exploded"):
            await failing.predict(["a", "b"], [None, None])
        assert await asyncio.wait_for(asyncio.shield(asyncio.sleep(0, "alive")), 1) == "alive"
        await failing.close()

    asyncio.run(scenario())


def test_batcher_sheds_by_queueing_time() -> None:
    release = threading.Event()

    def blocked(texts, keywords):
        release.wait(10)  # the model is busy until the test releases it
        return np.full(len(texts), 0.5, dtype=np.float32), np.full(len(texts), 3)

    async def scenario() -> None:
        batcher = MicroBatcher(blocked, max_batch_size=1, max_queue_ms=50)
        batcher.start()
        running = batcher.submit(["in the model"], [None])
        await asyncio.sleep(0.05)  # the collector hands it to the model, which blocks
        waiting = batcher.submit(["queued"], [None])  # the queue was empty: accepted
        await asyncio.sleep(0.2)  # it has now waited 4x the bound
        with pytest.raises(BatcherOverloaded, match=r"waited \d+ ms for the model"):
            batcher.submit(["shed"], [None])
        release.set()
        assert await asyncio.gather(running[0].future, waiting[0].future) == [0.5, 0.5]
        assert await batcher.predict(["after"], [None]) == [0.5]  # empty queue: accepted
        await batcher.close()

    asyncio.run(scenario())


def test_inference_failure_is_a_503_with_a_message(
    settings: ServeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self, texts, keywords, **options):
        raise RuntimeError("session lost")

    monkeypatch.setattr(Backend, "score", broken)
    with TestClient(create_app(settings)) as client:
        response = client.post("/predict", json={"text": "fire"})
        assert client.get("/health").status_code == 200
    assert response.status_code == 503
    assert response.json() == {"detail": "inference failed (RuntimeError); retry or report it"}


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b'{"text": ""}', JSON, 422, "body.text: String should have at least 1 character"),
        (b'{"text": " \\n\\t "}', JSON, 422, "body.text: must not be empty or whitespace only"),
        (b'{"text": "' + b"a" * 1001 + b'"}', JSON, 422, "body.text: String should have at most"),
        (b'{"text": 5}', JSON, 422, "body.text: Input should be a valid string"),
        (b'{"text": "ok", "keyword": 3}', JSON, 422, "body.keyword: Input should be a valid"),
        (b'{"keyword": "fire"}', JSON, 422, "body.text: Field required"),
        (b'{"text": "ok", "extra": 1}', JSON, 422, "body.extra: Extra inputs are not permitted"),
        (b'{"items": []}', JSON, 422, "body.items: List should have at least 1 item"),
        (
            b'{"items": [' + b",".join([b'{"text": "a"}'] * 65) + b"]}",
            JSON,
            422,
            "body.items: List should have at most 64 items",
        ),
        (b'{"items": [{"text": "a"}, {"text": ""}]}', JSON, 422, "body.items[1].text:"),
        (b'{"items": "nope"}', JSON, 422, "body.items: Input should be a valid list"),
        (b"[1, 2]", JSON, 422, "body: expected a JSON object with 'text'"),
        (b'{"text": "\\ud800"}', JSON, 422, "body.text: "),
        (b'{"text": "unterminated', JSON, 400, "body: invalid JSON"),
        (b'{"text": "caf\xe9"}', JSON, 400, "body: not valid UTF-8 (byte 0xe9"),
        (b"", JSON, 422, "body: required"),
        (b'{"text": "ok"}', {"content-type": "text/plain"}, 422, "body: expected JSON"),
        (b'{"text": "' + b"a" * 500_000 + b'"}', JSON, 413, "body: 500012 bytes, more than"),
    ],
    ids=lambda v: v.decode("latin-1")[:30] if isinstance(v, bytes) else None,
)
def test_bad_predict_input_is_a_4xx_naming_the_field(
    settings: ServeSettings, body: bytes, headers: dict, status: int, message: str
) -> None:
    with TestClient(create_app(settings)) as client:
        response = client.post("/predict", content=body, headers=headers)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    assert detail.startswith(message), detail


@pytest.mark.parametrize("path", ["/predict", "/predict/csv"])
def test_a_body_without_a_length_is_cut_at_the_limit(settings: ServeSettings, path: str) -> None:
    """A chunked body (no Content-Length) is counted as it is read: 413 once past the limit,
    the same one check as a declared length (serving.limits.BodyLimit)."""
    settings = settings.model_copy(update={"max_csv_bytes": 100_000})
    limit = body_limits(settings)[path]

    def chunks():
        for _ in range(limit // 65536 + 2):
            yield b"a" * 65536

    with TestClient(create_app(settings)) as client:
        kind = JSON if path == "/predict" else {"content-type": "multipart/form-data; boundary=b"}
        response = client.post(path, content=chunks(), headers=kind)
    assert response.status_code == 413, response.text
    assert response.json()["detail"] == f"body: over {limit} bytes, more than the limit of {limit}"


def test_csv_upload_returns_a_predictions_csv(settings: ServeSettings) -> None:
    upload = pd.DataFrame(
        {
            "id": [10, 11, 12, 13],
            "text": [t for t, _ in TWEETS],
            "keyword": [k or "" for _, k in TWEETS],
        }
    )
    want = expected(settings.model)
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/predict/csv",
            files={"file": ("my tweets.csv", upload.to_csv(index=False).encode(), "text/csv")},
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="my_tweets-predictions.csv"' in response.headers["content-disposition"]
    out = pd.read_csv(io.BytesIO(response.content), keep_default_na=False)
    assert list(out.columns) == [
        "id",
        "text",
        "keyword",
        "label",
        "label_name",
        "probability",
        "model_version",
    ]
    assert out["id"].tolist() == [10, 11, 12, 13]
    assert out["text"].tolist() == [t for t, _ in TWEETS]
    assert out["probability"].tolist() == pytest.approx(want.tolist(), abs=1e-5)
    threshold = load_bundle(settings.model).threshold
    assert out["label"].tolist() == [int(p >= threshold) for p in out["probability"]]


@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        (b"text\ncaf\xe9\n", 422, "file: line 2: not UTF-8 (byte 0xe9 at offset 8)"),
        (b"tweet,keyword\nfire,\n", 422, "file: no 'text' column (columns: 'tweet', 'keyword')"),
        (b"text\na\nb\nc\nd\n", 413, "file: 4 rows, more than the limit of 3"),
        (b'text,keyword\nfine,a\n"  ",b\nok,c\n', 422, "file: empty text on line(s) 3"),
        (b"text\n", 422, "file: no rows below the header"),
        (b"", 422, "file: empty"),
        (b'text\n"unclosed\n', 422, "file: line 2: a quoted field is never closed"),
    ],
)
def test_bad_csv_upload_is_a_4xx_with_a_clear_message(
    settings: ServeSettings, content: bytes, status: int, message: str
) -> None:
    with TestClient(create_app(replace(settings, max_csv_rows=3))) as client:
        response = client.post("/predict/csv", files={"file": ("t.csv", content, "text/csv")})
        missing = client.post("/predict/csv", data={"other": "x"})
    assert response.status_code == status, response.text
    assert response.json()["detail"].startswith(message), response.json()
    assert missing.status_code == 422
    assert missing.json()["detail"].startswith("body.file: Field required")


def test_drift_report_json_html_and_gauges(settings: ServeSettings) -> None:
    settings = replace(settings, drift_min_samples=5)
    with TestClient(create_app(settings)) as client:
        client.post("/predict", json={"items": [{"text": t, "keyword": k} for t, k in TWEETS * 2]})
        report = client.get("/drift")
        html = client.get("/drift", params={"format": "html"})
        accept = client.get("/drift", headers={"accept": "text/html"})
        old = client.get("/drift", params={"since": "2000-01-01T00:00:00Z"})
        bad = client.get("/drift", params={"since": "yesterday"})
        future = client.get("/drift", params={"since": "2999-01-01T00:00:00z"})
        naive = client.get("/drift", params={"since": "2999-01-01T00:00:00"})
        metrics = metric_values(client.get("/metrics").text)
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["status"] == "ok"
    assert body["traffic_samples"] == 2 * len(TWEETS)
    assert html.headers["content-type"].startswith("text/html")
    assert "<html" in html.text.lower()
    assert accept.headers["content-type"].startswith("text/html")
    assert old.json()["traffic_samples"] == 2 * len(TWEETS)
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("since 'yesterday': not an RFC 3339 time")
    assert future.status_code == 200  # an empty window
    assert future.json()["traffic_samples"] == 0  # and the gauges keep the last verdict
    assert naive.status_code == 422  # RFC 3339 has an offset
    assert metrics[("tweetcls_drift_share", ())] == pytest.approx(body["share"])
    assert metrics[("tweetcls_drift_detected", ())] == float(body["drift_detected"])


def test_periodic_drift_check_runs(
    settings: ServeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    original = Service.check_drift

    def counting(self, since, until=None):
        calls.append(since)
        return original(self, since, until)

    monkeypatch.setattr(Service, "check_drift", counting)
    with TestClient(create_app(replace(settings, drift_interval_s=0.05))) as client:
        deadline = time.monotonic() + 10
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/ready").status_code == 200
    assert len(calls) >= 2


def test_web_page_and_static_files_are_served(settings: ServeSettings) -> None:
    with TestClient(create_app(settings)) as client:
        page = client.get("/")
        script = client.get("/static/app.js")
        docs = client.get("/docs")
        schema = client.get("/openapi.json").json()
    assert page.status_code == 200
    assert '<textarea id="tweet-text"' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing remote
    assert script.status_code == 200
    assert docs.status_code == 200
    assert {
        "/predict",
        "/predict/csv",
        "/health",
        "/ready",
        "/version",
        "/metrics",
        "/drift",
    } <= set(schema["paths"])
