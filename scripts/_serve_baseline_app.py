"""The minimal app of ``bench_serve.py --baseline``: what HTTP + FastAPI cost without tweetcls.

``POST /predict`` validates its body with the service's own request model
(:func:`tweetcls.serving.schemas.build_request_model` with the service's default limits) and
answers a constant prediction-shaped JSON (a list of them for a batch); ``GET /ready`` answers
200. No model, batcher, middleware, metrics or request log. uvicorn serves it as the service
is served: uvloop, httptools, access log off::

    python scripts/_serve_baseline_app.py --port 8001

No ``from __future__ import annotations`` here: FastAPI must see the body type, a local of
:func:`build_app`, as an object.
"""

import argparse
from typing import Annotated, Any

from fastapi import Body, FastAPI
from fastapi.responses import JSONResponse

from tweetcls.core.labels import LABEL_NAMES
from tweetcls.serving.schemas import build_request_model
from tweetcls.serving.settings import ServeSettings

#: The answer to every tweet.
PREDICTION = {
    "label": 0,
    "label_name": LABEL_NAMES[0],
    "probability": 0.125,
    "model_version": "baseline",
    "prediction_id": "00000000-0000-4000-8000-000000000000",
}


def build_app(max_chars: int, max_items: int) -> FastAPI:
    """The minimal app with the request limits ``max_chars`` and ``max_items``."""
    tweet_model, _, body_type = build_request_model(max_chars, max_items)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/ready")
    async def ready() -> Any:
        return JSONResponse({"status": "ready"})

    @app.post("/predict")
    async def predict(body: Annotated[body_type, Body()]) -> Any:
        if isinstance(body, tweet_model):
            return JSONResponse(PREDICTION)
        return JSONResponse({"predictions": [PREDICTION] * len(body.items)})

    return app


def main(argv: list[str] | None = None) -> None:
    """Serve the minimal app until interrupted."""
    fields = ServeSettings.model_fields
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max_chars", type=int, default=fields["max_chars"].default)
    parser.add_argument("--max_items", type=int, default=fields["max_items"].default)
    args = parser.parse_args(argv)

    import uvicorn

    uvicorn.run(
        build_app(args.max_chars, args.max_items),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
