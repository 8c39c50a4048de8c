"""Prometheus metrics of the service, in a registry of its own per app.

The names are those ``monitoring/alerts.yml`` queries. HTTP requests are counted and timed by
:class:`MetricsMiddleware`, a pure ASGI middleware (it never touches the bodies); the batcher's
worker thread reports batch sizes, inference times and predictions (prometheus_client is
thread-safe).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tweetcls.core.labels import LABEL_NAMES
from tweetcls.serving.batcher import STAGES

__all__ = ["CONTENT_TYPE", "MetricsMiddleware", "ServiceMetrics"]

#: Route label of requests that matched no route (keeps the label set bounded).
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
#: A stage takes from tens of microseconds (dispatch, answer) to a model run.
_STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_PROBABILITY_BUCKETS = tuple(i / 10 for i in range(1, 11))


class ServiceMetrics:
    """The service's metrics, registered in ``self.registry``.

    Args:
        registry: Registry to register in; a new one by default (one per app, so that apps
            built in one process, e.g. in tests, do not collide).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.requests = Counter(
            "tweetcls_http_requests_total",
            "HTTP requests by method, route template and status code.",
            ("method", "route", "status"),
            registry=reg,
        )
        self.request_duration = Histogram(
            "tweetcls_http_request_duration_seconds",
            "HTTP request duration in seconds by route template.",
            ("route",),
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self.batch_size = Histogram(
            "tweetcls_batch_size",
            "Tweets per model call (micro-batch size).",
            buckets=_BATCH_BUCKETS,
            registry=reg,
        )
        self.inference_duration = Histogram(
            "tweetcls_inference_duration_seconds",
            "Duration of one model call (cleaning, tokenization, inference) in seconds.",
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self.stage_duration = Histogram(
            "tweetcls_stage_duration_seconds",
            "Time in one stage of a prediction inside the service, in seconds: queue (per "
            "tweet, batch formation included), dispatch, tokenize, model, answer, bookkeeping "
            "(per micro-batch).",
            ("stage",),
            buckets=_STAGE_BUCKETS,
            registry=reg,
        )
        self._stages = {stage: self.stage_duration.labels(stage) for stage in STAGES}
        self.predictions = Counter(
            "tweetcls_predictions_total", "Predictions by label.", ("label",), registry=reg
        )
        self.probability = Histogram(
            "tweetcls_prediction_probability",
            "Predicted probability of 'disaster'.",
            buckets=_PROBABILITY_BUCKETS,
            registry=reg,
        )
        self.model_info = Gauge(
            "tweetcls_model_info",
            "The served model: 1 for its version and backend.",
            ("version", "backend"),
            registry=reg,
        )
        self.self_check_fallback = Gauge(
            "tweetcls_self_check_fallback",
            "1 when the start-up self-check replaced the configured backend (int8 scored the "
            "bundle's check tweets wrongly on this CPU; fp32 serves).",
            registry=reg,
        )
        self.drift_detected = Gauge(
            "tweetcls_drift_detected", "1 if the last drift check detected drift.", registry=reg
        )
        self.drift_share = Gauge(
            "tweetcls_drift_share", "Share of drifted features in the last check.", registry=reg
        )
        self.log_dropped = Counter(
            "tweetcls_request_log_dropped_total",
            "Predictions the request log could not store (queue full or database error).",
            registry=reg,
        )
        self.log_up = Gauge(
            "tweetcls_request_log_up",
            "1 while the request-log database is reachable, 0 while the log is degraded.",
            registry=reg,
        )
        self._label_counters = [self.predictions.labels(name) for name in LABEL_NAMES]
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._dropped_seen = 0

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count and time one HTTP request (label children cached: this is the hot path)."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.request_duration.labels(route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_batch(
        self, probabilities: Sequence[float], labels: Sequence[int], seconds: float, size: int
    ) -> None:
        """Record one model call: its size (tweets scored), its duration and its predictions
        (an explanation's variants are scored but are not predictions)."""
        self.batch_size.observe(size)
        self.inference_duration.observe(seconds)
        positives = sum(labels)
        if positives:
            self._label_counters[1].inc(positives)
        if len(labels) - positives:
            self._label_counters[0].inc(len(labels) - positives)
        for probability in probabilities:
            self.probability.observe(probability)

    def observe_stage(self, stage: str, seconds: float) -> None:
        """Record ``seconds`` spent in ``stage`` (one of the batcher's ``STAGES``)."""
        self._stages[stage].observe(seconds)

    def set_model(self, version: str, backend: str, fell_back: bool = False) -> None:
        """Publish the served model's version and backend, and whether the self-check
        replaced the configured backend."""
        self.model_info.labels(version, backend).set(1)
        self.self_check_fallback.set(int(fell_back))

    def watch_log(self, is_up: Callable[[], bool]) -> None:
        """Read ``tweetcls_request_log_up`` from ``is_up()`` at every scrape."""
        self.log_up.set_function(lambda: 1.0 if is_up() else 0.0)

    def set_drift(self, detected: bool, share: float) -> None:
        """Publish the result of a drift check."""
        self.drift_detected.set(1 if detected else 0)
        self.drift_share.set(share)

    def sync_log_dropped(self, total: int) -> None:
        """Bring the dropped-records counter up to the request log's running ``total``."""
        if total > self._dropped_seen:
            self.log_dropped.inc(total - self._dropped_seen)
            self._dropped_seen = total

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware: counts and times every HTTP request by its route template.

    Args:
        app: The wrapped ASGI app.
        metrics: Where to record.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or UNMATCHED
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            self.metrics.observe_request(method, path, status, time.perf_counter() - start)
