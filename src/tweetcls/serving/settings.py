"""Settings of the prediction service (``python -m tweetcls serve`` flags, checked once)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tweetcls.core.errors import ConfigError

#: Backend names accepted by ``--backend`` (kept in step with ``backends.BACKENDS``, which
#: this module does not import so that ``--help`` stays fast).
BACKEND_CHOICES = ("onnx-int8", "onnx", "pytorch")
DEFAULT_DATABASE_URL = "sqlite:///runs/serving/requests.db"
#: Fewest logged predictions for a drift verdict (service and ``tweetcls drift``).
DRIFT_MIN_SAMPLES = 100


@dataclass(frozen=True)
class Settings:
    """Everything :func:`tweetcls.serving.app.create_app` needs; validated on creation.

    Args:
        model: Serving bundle (``tweetcls export``) or plain model directory.
        backend: ``onnx-int8`` (default), ``onnx`` or ``pytorch``.
        host: Interface uvicorn binds to.
        port: TCP port uvicorn listens on.
        max_batch_size: Most tweets per model call.
        max_wait_ms: Longest a tweet waits for others to join its micro-batch.
        max_items: Most tweets in one ``POST /predict`` request.
        max_chars: Most characters of one tweet text.
        max_queue: Most tweets waiting for the model; more are answered 503 (overload).
        database_url: Request log database (SQLite file or PostgreSQL URL).
        log_text: Store the tweet texts in the request log (off: lengths and counts only).
        threads: Intra-op threads of the backend; ``None`` lets the runtime choose.
        max_csv_rows: Most rows of a ``POST /predict/csv`` upload.
        max_csv_bytes: Largest ``POST /predict/csv`` upload, in bytes.
        drift_interval_s: Seconds between background drift checks; 0 disables them.
        drift_window_h: Hours of logged traffic a drift check looks at by default.
        drift_min_samples: Fewest logged predictions for a drift verdict.
        access_log: Let uvicorn log every request (off by default: it costs throughput).
        log_level: uvicorn's log level.
    """

    model: Path
    backend: str = "onnx-int8"
    host: str = "127.0.0.1"
    port: int = 8000
    max_batch_size: int = 32
    max_wait_ms: float = 2.0
    max_items: int = 64
    max_chars: int = 1000
    max_queue: int = 4096
    database_url: str = DEFAULT_DATABASE_URL
    log_text: bool = False
    threads: int | None = None
    max_csv_rows: int = 10000
    max_csv_bytes: int = 10_000_000
    drift_interval_s: float = 300.0
    drift_window_h: float = 24.0
    drift_min_samples: int = DRIFT_MIN_SAMPLES
    access_log: bool = False
    log_level: str = "info"

    def __post_init__(self) -> None:
        object.__setattr__(self, "model", Path(self.model))
        if self.backend not in BACKEND_CHOICES:
            raise ConfigError(
                f"--backend {self.backend!r}: choose one of {', '.join(BACKEND_CHOICES)}"
            )
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port {self.port}: must lie in [0, 65535]")
        for flag, value in (
            ("--max-batch-size", self.max_batch_size),
            ("--max-items", self.max_items),
            ("--max-chars", self.max_chars),
            ("--max-queue", self.max_queue),
            ("--max-csv-rows", self.max_csv_rows),
            ("--max-csv-bytes", self.max_csv_bytes),
            ("--drift-min-samples", self.drift_min_samples),
        ):
            if value < 1:
                raise ConfigError(f"{flag} {value}: must be >= 1")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads {self.threads}: must be >= 1")
        if not 0 <= self.max_wait_ms <= 1000:
            raise ConfigError(f"--max-wait-ms {self.max_wait_ms}: must lie in [0, 1000]")
        if self.drift_interval_s < 0:
            raise ConfigError(f"--drift-interval {self.drift_interval_s}: must be >= 0")
        if self.drift_window_h <= 0:
            raise ConfigError(f"--drift-window {self.drift_window_h}: must be > 0")
        if self.max_queue < self.max_items:
            raise ConfigError(
                f"--max-queue {self.max_queue}: must be >= --max-items ({self.max_items})"
            )
