"""Settings of the prediction service: the ``tweetcls serve`` flags and ``TWEETCLS_*`` variables.

:class:`ServeSettings` is declared once: its fields are the flags (``--max_batch_size``), also
read from ``--config FILE`` and the environment (``TWEETCLS_MAX_BATCH_SIZE``; a flag beats its
variable); see :mod:`tweetcls.monitoring.settings`. The request-log and drift fields it shares with
``tweetcls drift`` come from :class:`~tweetcls.monitoring.settings.RequestLogSettings`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator

from tweetcls.core.bundle import BACKENDS
from tweetcls.monitoring.settings import SECRET, UNECHOED, RequestLogSettings

#: uvicorn's log levels, most severe first.
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
#: Fewest characters of an API key (``secrets.token_urlsafe(32)`` gives 43).
MIN_KEY_LENGTH = 16
#: An API key: the characters of an RFC 6750 bearer token.
_KEY = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
#: A CORS origin: scheme and host (and port), no path, not even a trailing slash.
_ORIGIN = re.compile(r"https?://[^/\s?#]+")


def _key_problem(key: str) -> str | None:
    """Why ``key`` cannot be an API key (never quoting it), or ``None``."""
    if not _KEY.fullmatch(key):
        return "has characters other than A-Z a-z 0-9 - . _ ~ + / (and = at its end)"
    if len(key) < MIN_KEY_LENGTH:
        return f"shorter than {MIN_KEY_LENGTH} characters"
    return None


def read_key_file(path: Path) -> tuple[str, ...]:
    """The API keys in ``path``: one per line, ``#`` to the end of a line is a comment.

    Raises:
        ValueError: ``--api_key_file 'PATH': reason`` (missing, unreadable, no keys, a bad
            key's line number); never a key itself.
    """

    def problem(reason: str) -> ValueError:
        return ValueError(f"--api_key_file '{path}': {reason}")

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise problem("not found") from None
    except UnicodeDecodeError:
        raise problem("not UTF-8 text") from None
    except OSError as err:
        raise problem(f"cannot be read ({err.strerror or type(err).__name__})") from None
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        key = line.split("#", 1)[0].strip()
        if key:
            reason = _key_problem(key)
            if reason:
                raise problem(f"line {number}: {reason}")
            keys.append(key)
    if not keys:
        raise problem("no keys in it (one per line; '#' starts a comment)")
    return tuple(keys)


class ServeSettings(RequestLogSettings):
    """Serve a model over HTTP: POST /predict (one tweet or a batch), POST /explain, POST
    /predict/csv, POST /feedback, GET /health, /ready, /version, /metrics (Prometheus), /drift,
    the web page at / and the API docs at /docs. Each flag can also be set by its environment
    variable (TWEETCLS_MODEL, ...)."""

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
    max_batch_tokens: int = Field(512, ge=0)
    """Padded tokens per model run: a micro-batch is sorted by length and run in chunks of at
    most this many (rows x longest row), so that short tweets are not padded to long ones;
    0: one run per micro-batch."""
    workers: int = Field(1, ge=1)
    """Server processes sharing the port, each with its own model and batcher (uvicorn
    workers); with several, ``--threads`` defaults to the CPUs divided among them."""
    max_wait_ms: float = Field(0.0, ge=0, le=1000)
    """Longest a tweet waits for others to join its micro-batch while the model is idle, in
    milliseconds; 0: a lone tweet runs at once (batches still form from the tweets that
    arrive while the model runs)."""
    max_items: int = Field(64, ge=1)
    """Most tweets in one POST /predict request."""
    max_chars: int = Field(1000, ge=1)
    """Most characters of one tweet text."""
    max_queue: int = Field(4096, ge=1)
    """Most tweets waiting for the model; more are answered 503 (overload)."""
    max_queue_ms: float = Field(0.0, ge=0)
    """Answer 503 (overload) while the oldest waiting tweet has waited longer than this, in
    milliseconds: sheds load by queueing time, so that the tweets served stay fast; 0: off."""
    log_text: bool = False
    """Store the tweet texts in the request log (off: lengths and counts only)."""
    threads: int | None = Field(None, ge=1)
    """Intra-op threads of the backend; None lets the runtime choose."""
    max_csv_rows: int = Field(10000, ge=1)
    """Most rows of a POST /predict/csv upload."""
    max_csv_bytes: int = Field(10_000_000, ge=1)
    """Largest POST /predict/csv upload (the request body, file and form), in bytes."""
    drift_interval_s: float = Field(300.0, ge=0)
    """Seconds between background drift checks; 0 disables them."""
    drift_window_h: float = Field(24.0, gt=0)
    """Hours of logged traffic a drift check (and GET /drift by default) looks at."""
    self_check_tolerance: float = Field(0.05, ge=0)
    """At start, the backend scores the bundle's self-check tweets (recorded by export) again;
    when a probability differs by more than this (a CPU on which 8-bit models lose accuracy),
    onnx-int8 falls back to the fp32 onnx backend (one warning, /ready and the
    tweetcls_self_check_fallback metric say so) and any other backend refuses to start."""
    shutdown_timeout_s: float = Field(30.0, gt=0)
    """On SIGTERM/SIGINT: seconds the accepted requests get to finish before the connections
    are closed (the queued tweets are answered and the request log flushed after that)."""
    access_log: bool = False
    """Let uvicorn log every request (off by default: it costs throughput)."""
    log_level: Literal[LOG_LEVELS] = "info"
    """uvicorn's log level (also of this package's messages)."""
    # access control (tweetcls.serving.auth, .ratelimit, .headers)
    api_keys: list[SecretStr] = Field([], json_schema_extra=SECRET)
    """API keys, comma-separated; with keys (or --api_key_file), /predict, /explain,
    /predict/csv, /feedback, /drift and /metrics need 'Authorization: Bearer KEY' (/health,
    /ready, /version, / stay open).
    Each 16+ characters of A-Z a-z 0-9 - . _ ~ + / (then = padding); prefer the variable or
    the file to the flag, which other users can see in the process list."""
    api_key_file: Path | None = None
    """File of API keys, one per line ('#' starts a comment), added to --api_keys."""
    rate_limit: str | None = None
    """Requests each API key (without keys: each client IP) may make to the protected routes,
    in the notation of the limits library: '20/second', '100 per minute', several joined by ';'
    ('20/second;1000/hour'), over a moving window; more are answered 429 with Retry-After.
    None: no limit."""
    rate_limit_storage: str = Field("memory://", json_schema_extra=SECRET)
    """Where --rate_limit counts: memory:// (this process: --workers N or R replicas admit N or
    R times the limit) or redis://[:PASSWORD@]HOST:PORT[/DB] (also rediss://,
    redis+sentinel://), one store that every process and replica shares."""
    cors_origins: list[str] = Field([], json_schema_extra=UNECHOED)
    """Origins whose web pages may call the API (CORS), comma-separated, e.g.
    https://app.example.org; '*': any; none (the default): CORS off."""

    @model_validator(mode="after")
    def _queue_holds_a_request(self) -> ServeSettings:
        if self.max_queue < self.max_items:
            raise ValueError(
                f"--max_queue {self.max_queue}: must be >= --max_items ({self.max_items})"
            )
        return self

    # access control: the keys of --api_key_file, read once, at validation
    _file_keys: tuple[str, ...] = PrivateAttr(())

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """``a,b`` (the variable, or the flag once or repeated) is ``[a, b]``."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("api_keys")
    @classmethod
    def _valid_keys(cls, keys: list[SecretStr]) -> list[SecretStr]:
        for number, key in enumerate(keys, 1):
            reason = _key_problem(key.get_secret_value())
            if reason:
                raise ValueError(f"key {number} of {len(keys)}: {reason}")
        return keys

    @field_validator("cors_origins")
    @classmethod
    def _valid_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                # the field is unechoed: the message quotes the one bad origin itself
                raise ValueError(f"{origin!r} is not an origin (http(s)://host[:port], no path)")
        return origins

    @field_validator("rate_limit")
    @classmethod
    def _valid_rate_limit(cls, value: str | None) -> str | None:
        from tweetcls.serving.ratelimit import parse_limits

        if value is not None:
            parse_limits(value)  # ValueError names the problem
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _known_storage(cls, value: str) -> str:
        from tweetcls.serving.ratelimit import storage_for

        storage_for(value)  # ValueError names the scheme, never the URI (it may hold a password)
        return value

    @model_validator(mode="after")
    def _access_control(self) -> ServeSettings:
        if self.rate_limit is None and self.rate_limit_storage != "memory://":
            raise ValueError("--rate_limit_storage: needs --rate_limit")
        if self.api_key_file is not None:
            self._file_keys = read_key_file(self.api_key_file)
        return self

    def access_keys(self) -> tuple[str, ...]:
        """Every API key (``--api_keys``, then ``--api_key_file``'s), each once; none: off."""
        keys = [key.get_secret_value() for key in self.api_keys]
        return tuple(dict.fromkeys([*keys, *self._file_keys]))
