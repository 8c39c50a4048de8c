"""The HTTP service: FastAPI app with micro-batched predictions, metrics, drift and a web page.

Routes: ``POST /predict`` (one tweet or a batch), ``POST /predict/csv`` (a CSV upload, answered
with a predictions CSV), ``GET /health`` (alive), ``GET /ready`` (503 until the model is
loaded and while shutting down), ``GET /version``, ``GET /metrics`` (Prometheus), ``GET /drift``
(JSON or HTML), ``GET /`` (the web page), ``/docs`` and ``/openapi.json``.

The lifespan loads the bundle and backend, opens the request log, starts the micro-batcher and
the periodic drift check; on shutdown it answers the queued tweets and flushes the log. Every
bad input gets a 4xx with one message naming the field; never a 500.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import Body, FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from tweetcls.core.errors import ConfigError
from tweetcls.serving.batcher import BatcherClosed, BatcherOverloaded, Job, MicroBatcher
from tweetcls.serving.metrics import CONTENT_TYPE, MetricsMiddleware, ServiceMetrics
from tweetcls.serving.schemas import (
    BODY_TAGS,
    LABEL_NAMES,
    BatchPrediction,
    CsvError,
    ErrorBody,
    Health,
    Prediction,
    build_request_model,
    read_upload,
    write_predictions,
)
from tweetcls.serving.settings import Settings

logger = logging.getLogger(__name__)

STATIC_DIR = resources.files("tweetcls.serving") / "static"
#: Shown at most per 422 answer; the rest are counted.
MAX_SHOWN_ERRORS = 3
#: JSON bytes one item of ``POST /predict`` may take per character (``\\uXXXX`` escapes).
_BYTES_PER_CHAR = 6
#: Body limit of the routes that take no body (checked on Content-Length). No app-wide
#: ``max_body_size``: its plain-text 413 would replace the JSON one of ContentLengthLimit.
OTHER_BODY_LIMIT = 65536
_ERRORS = {
    400: {"model": ErrorBody, "description": "Malformed body (not JSON, not UTF-8)."},
    413: {"model": ErrorBody, "description": "Body too large."},
    422: {"model": ErrorBody, "description": "Invalid input; the message names the field."},
    503: {"model": ErrorBody, "description": "Model not loaded, shutting down or overloaded."},
}


@dataclass
class Service:
    """What the lifespan loads; ``None``/``False`` until then.

    Args:
        settings: The app's settings.
        metrics: The app's Prometheus metrics.
    """

    settings: Settings
    metrics: ServiceMetrics
    bundle: Any = None
    backend: Any = None
    log: Any = None
    batcher: MicroBatcher | None = None
    reference: dict[str, Any] | None = None
    ready: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def after_batch(
        self, jobs: Sequence[Job], probabilities: Sequence[float], seconds: float, answered: float
    ) -> None:
        """Worker-thread bookkeeping of one model call: metrics and request-log records."""
        from tweetcls.monitoring.requestlog import PredictionRecord

        threshold = self.bundle.threshold
        labels = [int(p >= threshold) for p in probabilities]
        self.metrics.observe_batch(probabilities, labels, seconds)
        texts = [job.text for job in jobs]
        keywords = [job.keyword for job in jobs]
        tokens = self.backend.count_tokens(texts, keywords)
        now = datetime.now(timezone.utc)
        version, backend = self.bundle.version, self.backend.name
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
            )
            for job, count, probability, label in zip(
                jobs, tokens, probabilities, labels, strict=True
            )
        )

    def check_drift(self, since: datetime, until: datetime | None = None) -> Any:
        """Compare logged traffic since ``since`` with the reference; set the drift gauges."""
        from tweetcls.monitoring.drift import compare

        if self.batcher is not None and self.ready:
            self.batcher.wait_for_bookkeeping()  # answered predictions reach the log queue
        self.log.flush()
        frame = self.log.read(since, until)
        report = compare(
            self.reference,
            frame,
            min_samples=self.settings.drift_min_samples,
            since=since,
            until=until,
        )
        self.metrics.set_drift(report.drift_detected, report.share)
        return report


def _load(service: Service) -> None:
    """Load bundle, backend, drift reference and request log (blocking; run in a thread)."""
    from tweetcls.core.bundle import DRIFT_REFERENCE_FILE, load_bundle, read_json
    from tweetcls.inference.backends import load_backend
    from tweetcls.monitoring.requestlog import RequestLog

    settings = service.settings
    service.bundle = load_bundle(settings.model)
    service.backend = load_backend(service.bundle, settings.backend, settings.threads)
    reference_path = service.bundle.path / DRIFT_REFERENCE_FILE
    if reference_path.is_file():
        service.reference = read_json(reference_path)
    else:
        logger.warning("%s: not found; /drift and the drift check are off", reference_path)
    service.log = RequestLog(settings.database_url, log_text=settings.log_text)


async def _drift_loop(service: Service) -> None:
    interval = service.settings.drift_interval_s
    window = timedelta(hours=service.settings.drift_window_h)
    while True:
        await asyncio.sleep(interval)
        try:
            since = datetime.now(timezone.utc) - window
            report = await run_in_threadpool(service.check_drift, since)
            logger.info("drift check: %s", report.summary())
        except Exception:
            logger.exception("periodic drift check failed")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the model and open the log; on shutdown drain the queue and flush the log."""
    service: Service = app.state.service
    settings = service.settings
    await run_in_threadpool(_load, service)
    service.batcher = MicroBatcher(
        service.backend.predict_proba,
        max_batch_size=settings.max_batch_size,
        max_wait_ms=settings.max_wait_ms,
        max_queue=settings.max_queue,
        after_batch=service.after_batch,
    )
    service.batcher.start()
    service.metrics.set_model(service.bundle.version, service.backend.name)
    if settings.drift_interval_s > 0 and service.reference is not None:
        service.tasks.append(asyncio.create_task(_drift_loop(service), name="drift-check"))
    service.ready = True
    logger.info(
        "serving model %s (%s backend) from %s",
        service.bundle.version,
        service.backend.name,
        service.bundle.path,
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
        await run_in_threadpool(service.log.close)


def _location(loc: Sequence[Any]) -> str:
    parts: list[str] = []
    for index, part in enumerate(loc):
        if index == 1 and loc[0] == "body" and part in BODY_TAGS:
            continue  # the union tag of the /predict body
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts) or "request"


def _message(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "json_invalid":
        reason = error.get("ctx", {}).get("error", "malformed")
        return f"body: invalid JSON ({reason} at position {error['loc'][-1]})"
    if kind == "missing" and tuple(error.get("loc", ())) == ("body",):
        return "body: required (send JSON with Content-Type: application/json)"
    if isinstance(error.get("input"), bytes) and tuple(error.get("loc", ())) == ("body",):
        return "body: expected JSON (Content-Type: application/json)"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{_location(error.get('loc', ()))}: {message}"


async def validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one line per problem (at most ``MAX_SHOWN_ERRORS``), each naming its field."""
    messages = list(dict.fromkeys(_message(error) for error in exc.errors()))
    detail = "; ".join(messages[:MAX_SHOWN_ERRORS])
    if len(messages) > MAX_SHOWN_ERRORS:
        detail += f" (and {len(messages) - MAX_SHOWN_ERRORS} more)"
    status = 400 if "invalid JSON" in detail and len(messages) == 1 else 422
    return JSONResponse({"detail": detail}, status_code=status)


async def http_error_handler(request: Request, exc: StarletteHTTPException) -> Response:
    """``{"detail": "..."}``; a body that is not UTF-8 says so."""
    detail = exc.detail
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        detail = f"body: not valid UTF-8 (byte {cause.object[cause.start]:#04x} at {cause.start})"
    elif isinstance(cause, RecursionError):
        detail = "body: JSON nested too deeply"
    headers = getattr(exc, "headers", None)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=headers)
    return JSONResponse({"detail": str(detail)}, status_code=exc.status_code, headers=headers)


class ContentLengthLimit:
    """Pure ASGI: answer 413 with a JSON message when ``Content-Length`` exceeds the limit.

    FastAPI's route ``max_body_size`` (also set, for bodies sent without a length) answers in
    plain text; this gives the usual ``{"detail": ...}`` first, for the common case.

    Args:
        app: The wrapped ASGI app.
        limits: Byte limit per exact path.
        default: Byte limit of every other path.
    """

    def __init__(self, app: ASGIApp, limits: dict[str, int], default: int) -> None:
        self.app = app
        self.limits = limits
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length":
                    limit = self.limits.get(scope["path"], self.default)
                    if value.isdigit() and int(value) > limit:
                        detail = f"body: {int(value)} bytes, more than the limit of {limit}"
                        await _error(413, detail)(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)


def _error(status: int, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers or None)


def _parse_since(value: str | None, window_h: float) -> datetime:
    from tweetcls.monitoring.command import parse_time

    now = datetime.now(timezone.utc)
    if value is None:
        return now - timedelta(hours=window_h)
    try:
        return parse_time(value, "since", now)
    except (ConfigError, OverflowError, ValueError) as err:
        raise ValueError(str(err)) from None


def create_app(settings: Settings) -> FastAPI:
    """The service for ``settings``; the model loads when the app's lifespan starts.

    Args:
        settings: Model directory, backend, batching and input limits, database URL.
    """
    from tweetcls import __version__ as package_version

    metrics = ServiceMetrics()
    service = Service(settings=settings, metrics=metrics)
    tweet_model, _, body_type = build_request_model(settings.max_chars, settings.max_items)
    predict_body_limit = 4096 + settings.max_items * _BYTES_PER_CHAR * (settings.max_chars + 200)
    csv_body_limit = settings.max_csv_bytes + 65536  # the file plus multipart overhead
    app = FastAPI(
        title="tweetcls",
        version=package_version,
        summary="Is this tweet about a real disaster? A fine-tuned encoder, served.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(
        ContentLengthLimit,
        limits={"/predict": predict_body_limit, "/predict/csv": csv_body_limit},
        default=OTHER_BODY_LIMIT,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: counts every answer
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)

    def running() -> MicroBatcher:
        if not service.ready or service.batcher is None:
            raise BatcherClosed("the model is not loaded yet (see GET /ready)")
        return service.batcher

    def prediction(probability: float) -> dict[str, Any]:
        label = int(probability >= service.bundle.threshold)
        return {
            "label": label,
            "label_name": LABEL_NAMES[label],
            "probability": probability,
            "model_version": service.bundle.version,
        }

    async def probabilities(texts: list[str], keywords: list[str | None]) -> list[float] | Any:
        try:
            return await running().predict(texts, keywords)
        except BatcherClosed as err:
            return _error(503, str(err), **{"Retry-After": "5"})
        except BatcherOverloaded as err:
            return _error(503, f"overloaded: {err}; retry shortly", **{"Retry-After": "1"})
        except Exception as err:
            return _error(503, f"inference failed ({type(err).__name__}); retry or report it")

    @app.post(
        "/predict",
        response_model=Prediction | BatchPrediction,
        responses=_ERRORS,
        summary="Classify one tweet or a batch",
        tags=["predict"],
        max_body_size=predict_body_limit,
    )
    async def predict(body: Annotated[body_type, Body()]) -> Any:
        """``{"text", "keyword"?}`` gives one prediction; ``{"items": [...]}`` a list in order.

        Each prediction has ``label`` (1 = disaster), ``label_name``, ``probability`` (of
        disaster) and ``model_version``.
        """
        if isinstance(body, tweet_model):
            result = await probabilities([body.text], [body.keyword])
            if isinstance(result, Response):
                return result
            return JSONResponse(prediction(result[0]))
        items = body.items
        result = await probabilities([i.text for i in items], [i.keyword for i in items])
        if isinstance(result, Response):
            return result
        return JSONResponse({"predictions": [prediction(p) for p in result]})

    @app.post(
        "/predict/csv",
        responses={
            200: {"content": {"text/csv": {}}, "description": "Predictions CSV."},
            **_ERRORS,
        },
        response_class=Response,
        summary="Classify a CSV upload (columns text[,keyword][,id])",
        tags=["predict"],
        max_body_size=csv_body_limit,
    )
    async def predict_csv(
        file: Annotated[UploadFile, File(description="UTF-8 CSV with a 'text' column.")],
    ) -> Response:
        """Answer with a CSV: the upload's ``id`` (if any), ``text``, ``keyword`` (if any),
        then ``label``, ``label_name``, ``probability`` and ``model_version`` per row."""
        raw = await file.read(settings.max_csv_bytes + 1)
        if len(raw) > settings.max_csv_bytes:
            return _error(413, f"file: larger than {settings.max_csv_bytes} bytes")
        try:
            frame = await run_in_threadpool(
                read_upload, raw, settings.max_csv_rows, settings.max_chars
            )
        except CsvError as err:
            return _error(err.status, f"file: {err}")
        keywords = frame["keyword"].tolist() if "keyword" in frame else [None] * len(frame)
        texts = frame["text"].tolist()
        values: list[float] = []
        step = settings.max_items
        for start in range(0, len(texts), step):
            result = await probabilities(
                texts[start : start + step], keywords[start : start + step]
            )
            if isinstance(result, Response):
                return result
            values.extend(result)
        content = await run_in_threadpool(
            write_predictions,
            frame,
            values,
            service.bundle.threshold,
            service.bundle.version,
        )
        name = (file.filename or "tweets.csv").rsplit("/", 1)[-1].removesuffix(".csv")
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80] or "tweets"
        return Response(
            content,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{safe}-predictions.csv"'},
        )

    @app.get("/health", response_model=Health, tags=["ops"], summary="Liveness")
    async def health() -> JSONResponse:
        """200 while the process serves HTTP (the model may still be loading)."""
        return JSONResponse({"status": "ok"})

    @app.get(
        "/ready",
        response_model=Health,
        responses={503: {"model": Health, "description": "Not ready."}},
        tags=["ops"],
        summary="Readiness",
    )
    async def ready() -> JSONResponse:
        """200 once the model is loaded; 503 before and while shutting down."""
        if service.ready:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready"}, status_code=503)

    @app.get("/version", responses={503: _ERRORS[503]}, tags=["ops"], summary="Model version")
    async def version() -> JSONResponse:
        """Model version, input settings, file and data hashes, provenance and backend."""
        if not service.ready:
            return _error(503, "the model is not loaded yet (see GET /ready)")
        return JSONResponse({**service.bundle.versions(), "backend": service.backend.name})

    @app.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE.split(";")[0]: {}}}},
        tags=["ops"],
        summary="Prometheus metrics",
    )
    async def metrics_text() -> Response:
        """Metrics in the Prometheus text format."""
        if service.log is not None:
            metrics.sync_log_dropped(service.log.dropped)
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get(
        "/drift",
        responses={
            200: {"content": {"application/json": {}, "text/html": {}}},
            404: {"model": ErrorBody, "description": "The bundle has no drift reference."},
            **_ERRORS,
        },
        tags=["ops"],
        summary="Drift of logged traffic against the training data",
    )
    async def drift(
        request: Request,
        since: Annotated[
            str | None,
            Query(description="ISO 8601 time or a duration back from now (30m, 24h, 7d)."),
        ] = None,
        format: Annotated[
            Literal["json", "html"] | None,
            Query(description="json (default) or html; Accept: text/html also gives html."),
        ] = None,
    ) -> Response:
        """Drift report of the predictions logged since ``since`` (default: the window)."""
        if not service.ready:
            return _error(503, "the model is not loaded yet (see GET /ready)")
        if service.reference is None:
            return _error(404, "drift: the bundle has no drift_reference.json (re-export it)")
        try:
            start = _parse_since(since, settings.drift_window_h)
        except ValueError as err:
            return _error(422, str(err))
        if start >= datetime.now(timezone.utc):
            return _error(422, f"since: {start.isoformat()} is not in the past")
        try:
            report = await run_in_threadpool(service.check_drift, start)
        except ConfigError as err:
            return _error(422, f"drift: {err}")
        wants_html = format == "html" or (
            format is None and "text/html" in request.headers.get("accept", "")
        )
        if wants_html:
            return HTMLResponse(report.to_html())
        return JSONResponse(report.to_dict())

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(str(STATIC_DIR / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    return app
