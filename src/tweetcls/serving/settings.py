"""Settings of the prediction service: the ``tweetcls serve`` flags and ``TWEETCLS_*`` variables.

:class:`ServeSettings` is declared once: its fields generate the flags (``--max_batch_size``)
and read the environment (``TWEETCLS_MAX_BATCH_SIZE``; a flag beats its variable); see
:mod:`tweetcls.monitoring.settings`. The request-log and drift fields it shares with
``tweetcls drift`` come from :class:`~tweetcls.monitoring.settings.RequestLogSettings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from tweetcls.core.bundle import BACKENDS
from tweetcls.monitoring.settings import RequestLogSettings

#: uvicorn's log levels, most severe first.
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


class ServeSettings(RequestLogSettings):
    """Serve a model over HTTP: POST /predict (one tweet or a batch), POST /predict/csv, GET
    /health, /ready, /version, /metrics (Prometheus), /drift, the web page at / and the API docs
    at /docs. Each flag can also be set by its environment variable (TWEETCLS_MODEL, ...)."""

    model: Path
    """Serving bundle (`tweetcls export`) or plain model directory."""
    backend: Literal[BACKENDS] = BACKENDS[0]
    """Inference backend."""
    host: str = "127.0.0.1"
    """Interface uvicorn binds to (0.0.0.0: all)."""
    port: int = Field(8000, ge=0, le=65535)
    """TCP port uvicorn listens on."""
    max_batch_size: int = Field(32, ge=1)
    """Most tweets per model call."""
    max_wait_ms: float = Field(2.0, ge=0, le=1000)
    """Longest a tweet waits for others to join its micro-batch, in milliseconds."""
    max_items: int = Field(64, ge=1)
    """Most tweets in one POST /predict request."""
    max_chars: int = Field(1000, ge=1)
    """Most characters of one tweet text."""
    max_queue: int = Field(4096, ge=1)
    """Most tweets waiting for the model; more are answered 503 (overload)."""
    log_text: bool = False
    """Store the tweet texts in the request log (off: lengths and counts only)."""
    threads: int | None = Field(None, ge=1)
    """Intra-op threads of the backend; None lets the runtime choose."""
    max_csv_rows: int = Field(10000, ge=1)
    """Most rows of a POST /predict/csv upload."""
    max_csv_bytes: int = Field(10_000_000, ge=1)
    """Largest POST /predict/csv upload, in bytes."""
    drift_interval_s: float = Field(300.0, ge=0)
    """Seconds between background drift checks; 0 disables them."""
    drift_window_h: float = Field(24.0, gt=0)
    """Hours of logged traffic a drift check (and GET /drift by default) looks at."""
    access_log: bool = False
    """Let uvicorn log every request (off by default: it costs throughput)."""
    log_level: Literal[LOG_LEVELS] = "info"
    """uvicorn's log level (also of this package's messages)."""

    @model_validator(mode="after")
    def _queue_holds_a_request(self) -> ServeSettings:
        if self.max_queue < self.max_items:
            raise ValueError(
                f"--max_queue {self.max_queue}: must be >= --max_items ({self.max_items})"
            )
        return self
