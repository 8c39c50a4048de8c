"""``POST /predict`` (one tweet or a batch) and ``POST /predict/csv`` (a CSV upload).

The request models carry the settings' limits, so the router is built per app
(:func:`build_router`). No ``from __future__ import annotations`` here: FastAPI must see the
body type, a local of :func:`build_router`, as an object, not as a name.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Body, File, UploadFile
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from tweetcls.serving.deps import ServiceDep
from tweetcls.serving.errors import ERROR_RESPONSES, ApiError
from tweetcls.serving.schemas import (
    BatchPrediction,
    CsvError,
    Prediction,
    build_request_model,
    read_upload,
    write_predictions,
)
from tweetcls.serving.settings import ServeSettings


def _download_name(filename: str | None) -> str:
    """``<upload name>-predictions.csv``, with only safe characters."""
    name = (filename or "tweets.csv").rsplit("/", 1)[-1].removesuffix(".csv")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80] or "tweets"
    return f"{safe}-predictions.csv"


def build_router(settings: ServeSettings) -> APIRouter:
    """The prediction routes with the limits of ``settings`` (text length, batch, upload)."""
    tweet_model, _, body_type = build_request_model(settings.max_chars, settings.max_items)
    router = APIRouter(tags=["predict"])

    @router.post(
        "/predict",
        response_model=Prediction | BatchPrediction,
        responses=ERROR_RESPONSES,
        summary="Classify one tweet or a batch",
    )
    async def predict(body: Annotated[body_type, Body()], service: ServiceDep) -> Any:
        """``{"text", "keyword"?}`` gives one prediction; ``{"items": [...]}`` a list in order.

        Each prediction has ``label`` (1 = disaster), ``label_name``, ``probability`` (of
        disaster) and ``model_version``.
        """
        if isinstance(body, tweet_model):
            (probability,) = await service.probabilities([body.text], [body.keyword])
            return JSONResponse(service.prediction(probability))
        items = body.items
        result = await service.probabilities([i.text for i in items], [i.keyword for i in items])
        return JSONResponse({"predictions": [service.prediction(p) for p in result]})

    @router.post(
        "/predict/csv",
        responses={
            200: {"content": {"text/csv": {}}, "description": "Predictions CSV."},
            **ERROR_RESPONSES,
        },
        response_class=Response,
        summary="Classify a CSV upload (columns text[,keyword][,id])",
    )
    async def predict_csv(
        file: Annotated[UploadFile, File(description="UTF-8 CSV with a 'text' column.")],
        service: ServiceDep,
    ) -> Response:
        """Answer with a CSV: the upload's ``id`` (if any), ``text``, ``keyword`` (if any),
        then ``label``, ``label_name``, ``probability`` and ``model_version`` per row."""
        raw = await file.read()  # at most --max_csv_bytes: the body limit (serving.limits)
        try:
            frame = await run_in_threadpool(
                read_upload, raw, settings.max_csv_rows, settings.max_chars
            )
        except CsvError as err:
            raise ApiError(err.status, f"file: {err}") from None
        keywords = frame["keyword"].tolist() if "keyword" in frame else [None] * len(frame)
        texts = frame["text"].tolist()
        values: list[float] = []
        step = settings.max_items
        for start in range(0, len(texts), step):
            chunk = slice(start, start + step)
            values.extend(await service.probabilities(texts[chunk], keywords[chunk]))
        bundle = service.model.bundle
        content = await run_in_threadpool(
            write_predictions, frame, values, bundle.threshold, bundle.version
        )
        return Response(
            content,
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{_download_name(file.filename)}"'
            },
        )

    return router
