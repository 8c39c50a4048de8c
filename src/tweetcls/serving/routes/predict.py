"""``POST /predict`` (one tweet or a batch) and ``POST /predict/csv`` (a CSV upload).

The request models carry the settings' limits, so the router is built per app
(:func:`build_router`). No ``from __future__ import annotations`` here: FastAPI must see the
body type, a local of :func:`build_router`, as an object, not as a name.
"""

import asyncio
from typing import Annotated, Any
from uuid import uuid4

from fastapi import APIRouter, Body, File, UploadFile
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from tweetcls.inference.explain import EXPLANATIONS_KEY, MAX_WORDS, attributions, occlusions
from tweetcls.serving.deps import ServiceDep
from tweetcls.serving.errors import ERROR_RESPONSES, ApiError
from tweetcls.serving.schemas import (
    BatchPrediction,
    CsvError,
    ErrorBody,
    Explanation,
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


def _new_ids(count: int) -> list[str]:
    """Fresh prediction ids: chosen here, before the request log writes its rows (in batches,
    off the request's thread), so the answer can carry the id the row will hold."""
    return [str(uuid4()) for _ in range(count)]


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
        disaster), ``model_version`` and ``prediction_id`` (for ``POST /feedback``).
        """
        if isinstance(body, tweet_model):
            ids = _new_ids(1)
            (probability,) = await service.probabilities([body.text], [body.keyword], ids=ids)
            return JSONResponse({**service.prediction(probability), "prediction_id": ids[0]})
        items = body.items
        ids = _new_ids(len(items))
        result = await service.probabilities(
            [i.text for i in items], [i.keyword for i in items], ids=ids
        )
        return JSONResponse(
            {
                "predictions": [
                    {**service.prediction(p), "prediction_id": i}
                    for p, i in zip(result, ids, strict=True)
                ]
            }
        )

    @router.post(
        "/explain",
        response_model=Explanation,
        responses={
            404: {"model": ErrorBody, "description": "This model's explanations are off."},
            **ERROR_RESPONSES,
        },
        summary="Classify one tweet and say why, word by word",
    )
    async def explain(body: Annotated[tweet_model, Body()], service: ServiceDep) -> Any:
        """The prediction of ``{"text", "keyword"?}`` with each word's attribution: how much
        the probability of "disaster" falls when the word is left out (the tweet and its
        variants scored together; only the tweet is logged as a prediction). Available when
        the bundle's attributions passed export's faithfulness check; 404 otherwise.
        """
        bundle = service.loaded().bundle
        if not bundle.info.get(EXPLANATIONS_KEY, {}).get("faithful"):
            raise ApiError(
                404,
                "explain: off for this model: its word attributions did not pass export's "
                "faithfulness check (reports/export.json), or it was exported before the check",
            )
        words, variants = occlusions(body.text, MAX_WORDS)
        ids = _new_ids(1)
        (probability,), scored = await asyncio.gather(
            service.probabilities([body.text], [body.keyword], ids=ids),
            service.probabilities(variants, [body.keyword] * len(variants), logged=False),
        )
        shares = attributions(words, probability, scored)
        return JSONResponse(
            {
                **service.prediction(probability),
                "prediction_id": ids[0],
                "method": "occlusion",
                "words": [
                    {"word": w, "attribution": a} for w, a in zip(words, shares, strict=True)
                ],
            }
        )

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
