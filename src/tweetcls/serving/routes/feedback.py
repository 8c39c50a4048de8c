"""``POST /feedback``: mark a logged prediction as wrong, with the right label.

The prediction is named by the ``prediction_id`` its answer carried (``/predict``,
``/explain``); the correction goes to the request-log database's ``prediction_feedback`` table
(:meth:`~tweetcls.monitoring.requestlog.RequestLog.add_feedback`), from where
``tweetcls feedback`` exports it for review. Nothing reaches training unreviewed: ``tweetcls
preprocess --reviewed_feedback FILE`` reads only a file a person has checked.

Answers: 201 stored; 200 the same correction was already stored (idempotent: nothing changes,
the first note is kept); 404 no logged prediction has this id (a record the log dropped, or an
id of another database); 409 the label is the one the model gave (nothing to correct) or the
prediction was already corrected to the other label; 422 a malformed id or a label other than
0/1; 503 the service is not loaded or the request-log database is unreachable.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from tweetcls.core.labels import LABEL_NAMES
from tweetcls.monitoring.logtable import Feedback, FeedbackConflict, UnknownPrediction
from tweetcls.monitoring.requestlog import RequestLogUnavailable
from tweetcls.serving.deps import ServiceDep
from tweetcls.serving.errors import ERROR_RESPONSES, NOT_LOADED, ApiError
from tweetcls.serving.schemas import ErrorBody, FeedbackRecord, FeedbackRequest
from tweetcls.serving.state import FLUSH_TIMEOUT_S, Service

router = APIRouter(tags=["feedback"])

#: OpenAPI descriptions of every answer of ``POST /feedback``.
FEEDBACK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": FeedbackRecord,
        "description": "The same correction was already stored; nothing changed (idempotent).",
    },
    404: {
        "model": ErrorBody,
        "description": "No logged prediction has this id (dropped by the log, or unknown).",
    },
    409: {
        "model": ErrorBody,
        "description": "The label is the model's own (nothing to correct), or the prediction "
        "was already corrected to the other label.",
    },
    **ERROR_RESPONSES,
    503: {
        "model": ErrorBody,
        "description": "Model not loaded, shutting down, or request-log database unreachable.",
    },
}


def _store(service: Service, body: FeedbackRequest) -> Feedback:
    """In a worker thread: store the correction; a prediction answered a moment ago may still
    wait in the log's queue, so an unknown id is looked up again once the queue is written."""
    log = service.log
    assert log is not None
    prediction_id = str(body.prediction_id)
    try:
        return log.add_feedback(prediction_id, body.label, body.note)
    except UnknownPrediction:
        if service.batcher is not None and service.ready:
            service.batcher.wait_for_bookkeeping()  # answered predictions reach the queue
        if not log.flush(timeout=FLUSH_TIMEOUT_S):
            raise RequestLogUnavailable(
                "request log: the predictions waiting to be written did not reach the database "
                f"within {FLUSH_TIMEOUT_S:g} s; retry later"
            ) from None
        return log.add_feedback(prediction_id, body.label, body.note)


@router.post(
    "/feedback",
    status_code=201,
    response_model=FeedbackRecord,
    responses=FEEDBACK_RESPONSES,
    summary="Correct a logged prediction: its id and the right label",
)
async def feedback(body: FeedbackRequest, service: ServiceDep) -> Any:
    """``{"prediction_id", "label", "note"?}``: the prediction with this id (from a /predict or
    /explain answer) was wrong and ``label`` is right. Stored for review in the request-log
    database (``tweetcls feedback`` exports it); never used for training unreviewed.

    201: stored. 200: the same correction was already stored (nothing changes; the first
    note is kept). 404: no logged prediction has this id. 409: ``label`` is the model's own
    label, or the prediction was already corrected to the other label. 503: the request-log
    database cannot be reached (retry later).
    """
    if not service.ready or service.log is None:
        raise ApiError(503, NOT_LOADED)
    try:
        stored = await run_in_threadpool(_store, service, body)
    except UnknownPrediction as err:
        raise ApiError(404, str(err)) from None
    except FeedbackConflict as err:
        raise ApiError(409, str(err)) from None
    except RequestLogUnavailable as err:
        raise ApiError(503, f"{err}; retry later") from None
    content = {
        "prediction_id": stored.prediction_id,
        "label": stored.label,
        "label_name": LABEL_NAMES[stored.label],
        "note": stored.note,
        "time": stored.time.isoformat(),
        "predicted_label": stored.predicted_label,
        "probability": stored.probability,
        "model_version": stored.model_version,
    }
    return JSONResponse(content, status_code=201 if stored.created else 200)
