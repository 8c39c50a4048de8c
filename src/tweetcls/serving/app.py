"""The HTTP service: FastAPI app with micro-batched predictions, metrics, drift and a web page.

Routes (:mod:`tweetcls.serving.routes`): ``POST /predict`` (one tweet or a batch),
``POST /explain`` (one tweet, each word's attribution), ``POST /predict/csv`` (a CSV upload,
answered with a predictions CSV), ``POST /feedback`` (a correction of a logged prediction),
``GET /health`` (alive), ``GET /ready`` (503 until the model
is loaded and while shutting down), ``GET /version``, ``GET /metrics`` (Prometheus),
``GET /drift`` (JSON or HTML), ``GET /`` (the web page), ``/docs`` and ``/openapi.json``.

The lifespan loads the bundle and backend (unless ``tweetcls serve`` loaded them already),
opens the request log, starts the micro-batcher and the periodic drift check; on shutdown it
answers the queued tweets and flushes the log. Every bad input gets a 4xx with one message
naming the field (:mod:`tweetcls.serving.errors`); never a 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import datetime, timedelta, timezone
from functools import partial

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from tweetcls.monitoring.requestlog import RequestLog, RequestLogUnavailable
from tweetcls.serving.auth import protection, warn_if_open
from tweetcls.serving.batcher import MicroBatcher
from tweetcls.serving.errors import add_exception_handlers
from tweetcls.serving.headers import add_browser_middleware
from tweetcls.serving.limits import OTHER_BODY_LIMIT, BodyLimit, body_limits
from tweetcls.serving.loading import LoadedModel, load_model
from tweetcls.serving.metrics import MetricsMiddleware, ServiceMetrics
from tweetcls.serving.routes import drift, feedback, health, predict, web
from tweetcls.serving.routes import metrics as metrics_route
from tweetcls.serving.settings import ServeSettings
from tweetcls.serving.state import Service

logger = logging.getLogger(__name__)

#: Longest shutdown waits for an unreachable request-log database before it drops (and
#: counts) the records it could not write.
LOG_CLOSE_TIMEOUT_S = 10.0


async def _drift_loop(service: Service) -> None:
    interval = service.settings.drift_interval_s
    window = timedelta(hours=service.settings.drift_window_h)
    while True:
        await asyncio.sleep(interval)
        try:
            since = datetime.now(timezone.utc) - window
            report = await run_in_threadpool(service.check_drift, since)
            logger.info("drift check: %s", report.summary())
        except RequestLogUnavailable as err:
            logger.warning("periodic drift check skipped: %s", err)
        except Exception:
            logger.exception("periodic drift check failed")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the model and open the log; on shutdown drain the queue and flush the log."""
    from tweetcls.core.bundle import DRIFT_REFERENCE_FILE

    service: Service = app.state.service
    settings = service.settings
    if service.model is None:
        service.model = await run_in_threadpool(load_model, settings)
    model = service.model
    if model.reference is None:
        path = model.bundle.path / DRIFT_REFERENCE_FILE
        logger.warning("%s: not found; /drift and the drift check are off", path)
    service.log = await run_in_threadpool(RequestLog, settings.database_url, settings.log_text)
    log = service.log
    service.metrics.watch_log(lambda: log.status == "ok")
    service.batcher = MicroBatcher(
        partial(model.backend.score, max_batch_tokens=settings.max_batch_tokens),
        max_batch_size=settings.max_batch_size,
        max_wait_ms=settings.max_wait_ms,
        max_queue=settings.max_queue,
        max_queue_ms=settings.max_queue_ms,
        after_batch=service.after_batch,
        observe=service.metrics.observe_stage,
    )
    service.batcher.start()
    service.metrics.set_model(model.bundle.version, model.backend.name, model.fell_back)
    if settings.drift_interval_s > 0 and model.reference is not None:
        service.tasks.append(asyncio.create_task(_drift_loop(service), name="drift-check"))
    service.ready = True
    logger.info(
        "serving model %s (%s backend) from %s",
        model.bundle.version,
        model.backend.name,
        model.bundle.path,
    )
    try:
        yield
    finally:
        service.ready = False
        for task in service.tasks:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        await service.batcher.close()
        await run_in_threadpool(service.log.close, LOG_CLOSE_TIMEOUT_S)


def create_app(settings: ServeSettings, model: LoadedModel | None = None) -> FastAPI:
    """The service for ``settings``.

    Access control (off by default): with API keys, ``/predict``, ``/explain``, ``/predict/csv``,
    ``/feedback``, ``/drift`` and ``/metrics`` need ``Authorization: Bearer <key>`` and may be
    rate limited (:mod:`tweetcls.serving.auth`); every answer carries security headers, and
    CORS is on for ``settings.cors_origins`` (:mod:`tweetcls.serving.headers`).

    Args:
        settings: Model directory, backend, batching and input limits, database URL.
        model: What :func:`~tweetcls.serving.loading.load_model` loaded for ``settings``;
            ``None``: the app's lifespan loads it.
    """
    from tweetcls import __version__ as package_version

    service = Service(settings=settings, metrics=ServiceMetrics(), model=model)
    app = FastAPI(
        title="tweetcls",
        version=package_version,
        summary="Is this tweet about a real disaster? A fine-tuned encoder, served.",
        lifespan=lifespan,
    )
    app.state.service = service
    routers = [  # (router, protected by the API keys and rate limit)
        (predict.build_router(settings), True),
        (feedback.router, True),  # corrections of logged predictions: as /predict
        (health.router, False),  # probes and rollout checks: never a key
        (metrics_route.router, True),
        (drift.router, True),
        (web.router, False),  # the page asks for the key itself
    ]
    guard = protection(settings)
    app.add_middleware(BodyLimit, limits=body_limits(settings), default=OTHER_BODY_LIMIT)
    guard.add_middleware(app, [router for router, protected in routers if protected])
    add_browser_middleware(app, settings)  # CORS, security headers: also on 401s and 413s
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)  # outermost: every answer
    add_exception_handlers(app)
    for router, protected in routers:
        if protected:
            app.include_router(router, dependencies=guard.dependencies, responses=guard.responses)
        else:
            app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(web.STATIC_DIR)), name="static")
    warn_if_open(settings)
    return app
