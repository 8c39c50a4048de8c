"""The state of one app: settings, metrics, the loaded model, the request log and the batcher.

:class:`Service` lives on ``app.state.service`` (routes get it through
:data:`tweetcls.serving.deps.ServiceDep`); the lifespan fills it in and empties it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from tweetcls.core.labels import LABEL_NAMES
from tweetcls.serving.batcher import BatcherClosed, BatcherOverloaded, Job, MicroBatcher
from tweetcls.serving.errors import NOT_LOADED, ApiError, InferenceError
from tweetcls.serving.loading import LoadedModel
from tweetcls.serving.metrics import ServiceMetrics
from tweetcls.serving.settings import ServeSettings

#: Longest a drift check waits for the request log to write what is queued (an outage lasts
#: longer: the check then reports the log unavailable).
FLUSH_TIMEOUT_S = 5.0

if TYPE_CHECKING:
    from tweetcls.monitoring.drift import DriftReport
    from tweetcls.monitoring.requestlog import RequestLog


@dataclass
class Service:
    """What the lifespan loads; ``None``/``False`` until then.

    Args:
        settings: The app's settings.
        metrics: The app's Prometheus metrics.
        model: Bundle, backend and drift reference.
        log: The request log.
        batcher: The micro-batcher in front of the backend.
        ready: Loaded and not shutting down.
        tasks: Background tasks (the periodic drift check).
    """

    settings: ServeSettings
    metrics: ServiceMetrics
    model: LoadedModel | None = None
    log: RequestLog | None = None
    batcher: MicroBatcher | None = None
    ready: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def loaded(self) -> LoadedModel:
        """The model; :class:`ApiError` 503 while it is not loaded (or shutting down)."""
        if not self.ready or self.model is None:
            raise ApiError(503, NOT_LOADED)
        return self.model

    async def probabilities(
        self,
        texts: list[str],
        keywords: list[str | None],
        logged: bool = True,
        ids: list[str] | None = None,
    ) -> list[float]:
        """Probability of "disaster" per tweet, through the micro-batcher (``logged``: counted
        in the metrics and the request log as predictions; not an explanation's variants;
        ``ids``: the prediction id each is logged under, for ``POST /feedback``).

        Raises:
            BatcherClosed: not loaded yet or shutting down.
            BatcherOverloaded: the queue is full.
            InferenceError: the model call failed.
        """
        if not self.ready or self.batcher is None:
            raise BatcherClosed(NOT_LOADED)
        try:
            return await self.batcher.predict(texts, keywords, logged, ids)
        except (BatcherClosed, BatcherOverloaded):
            raise
        except Exception as err:
            raise InferenceError(type(err).__name__) from err

    def prediction(self, probability: float) -> dict[str, Any]:
        """The answer for one tweet (:class:`~tweetcls.serving.schemas.Prediction`); also
        while shutting down, when the batcher answers the tweets still queued."""
        model = self.model
        assert model is not None
        label = model.label(probability)
        return {
            "label": label,
            "label_name": LABEL_NAMES[label],
            "probability": probability,
            "model_version": model.bundle.version,
        }

    def after_batch(
        self,
        jobs: Sequence[Job],
        probabilities: Sequence[float],
        tokens: Sequence[int],
        seconds: float,
        answered: float,
    ) -> None:
        """Worker-thread bookkeeping of one model call: metrics and request-log records."""
        from tweetcls.monitoring.logtable import PredictionRecord

        model = self.model
        assert model is not None and self.log is not None
        size = len(jobs)
        kept = [i for i, job in enumerate(jobs) if job.logged]
        if len(kept) < size:  # an explanation's variants are not predictions
            jobs = [jobs[i] for i in kept]
            probabilities = [probabilities[i] for i in kept]
            tokens = [tokens[i] for i in kept]
        labels = [model.label(p) for p in probabilities]
        self.metrics.observe_batch(probabilities, labels, seconds, size)
        if not jobs:
            return
        now = datetime.now(timezone.utc)
        version, backend = model.bundle.version, model.backend.name
        self.log.record(
            PredictionRecord(
                time=now,
                text_length=len(job.text),
                token_count=count,
                keyword=job.keyword,
                probability=probability,
                label=label,
                latency_ms=(answered - job.received) * 1000.0,
                model_version=version,
                backend=backend,
                text=job.text,
                prediction_id=job.prediction_id,
            )
            for job, count, probability, label in zip(
                jobs, tokens, probabilities, labels, strict=True
            )
        )

    def check_drift(self, since: datetime, until: datetime | None = None) -> DriftReport:
        """Compare logged traffic since ``since`` with the reference; set the drift gauges
        (left as they are by a report without enough data: it has no verdict)."""
        from tweetcls.monitoring.drift import compare

        assert self.model is not None and self.log is not None
        if self.batcher is not None and self.ready:
            self.batcher.wait_for_bookkeeping()  # answered predictions reach the log queue
        self.log.flush(timeout=FLUSH_TIMEOUT_S)  # during an outage read() says so
        frame = self.log.read(since, until)
        report = compare(
            self.model.reference or {},
            frame,
            min_samples=self.settings.drift_min_samples,
            since=since,
            until=until,
        )
        if report.status == "ok":
            self.metrics.set_drift(report.drift_detected, report.share)
        return report
