"""What the service serves: the bundle, its backend and its drift reference, loaded and checked.

:func:`load_model` is the one way to load them: ``tweetcls serve`` calls it before uvicorn
starts (so a missing, corrupt or incomplete bundle is one ``error:`` line, exit code 2) and hands
the result to the app; an app built without one (tests) loads it in its lifespan.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tweetcls.core.bundle import TOKENIZER_FILE
from tweetcls.core.errors import ConfigError

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from tweetcls.core.bundle import Bundle
    from tweetcls.inference.base import Backend
    from tweetcls.serving.settings import ServeSettings


@dataclass(frozen=True)
class LoadedModel:
    """A loaded bundle and backend.

    Args:
        bundle: The bundle (threshold, version, provenance).
        backend: The inference backend, ready to predict.
        reference: The bundle's drift reference; ``None`` when it has none (drift off).
        self_check: What the start-up self-check found (``/ready`` shows it): ``passed``,
            ``skipped: ...`` or ``fallback: ...``.
    """

    bundle: Bundle
    backend: Backend
    reference: dict[str, Any] | None
    self_check: str = "skipped: not run"

    @property
    def fell_back(self) -> bool:
        """Whether the self-check replaced the configured backend."""
        return self.self_check.startswith("fallback")

    def label(self, probability: float) -> int:
        """1 (disaster) when ``probability`` reaches the bundle's threshold, else 0."""
        return int(probability >= self.bundle.threshold)


def _check_files(bundle: Bundle, backend: str) -> None:
    """The tokenizer and the backend's model file exist (its SHA-256 is checked by
    :func:`~tweetcls.inference.backends.load_backend`, once)."""
    tokenizer = bundle.path / TOKENIZER_FILE
    if not tokenizer.is_file():
        raise ConfigError(f"{tokenizer}: not found (the model's tokenizer; re-export the bundle)")
    model_file = bundle.backend_file(backend)
    if not model_file.is_file():
        available = ", ".join(bundle.available_backends()) or "none"
        raise ConfigError(
            f"--backend {backend}: {model_file} not found (available: {available}; "
            "build a bundle with `tweetcls export`)"
        )


def _load_backend(bundle: Bundle, kind: str, threads: int | None) -> Backend:
    from tweetcls.inference.backends import load_backend

    _check_files(bundle, kind)
    try:
        return load_backend(bundle, kind, threads)
    except ConfigError:
        raise
    except Exception as err:  # a missing tokenizer file, an unreadable model, ...
        reason = (str(err).strip().splitlines() or [""])[0][:300]
        raise ConfigError(
            f"--model {bundle.path}: the {kind} backend does not load "
            f"({type(err).__name__}: {reason})"
        ) from None


def _self_checked(bundle: Bundle, backend: Backend, settings: ServeSettings) -> tuple[Backend, str]:
    """The backend to serve after the self-check, and what the check found.

    On a difference over ``--self_check_tolerance``, ``onnx-int8`` falls back to ``onnx`` (if
    that one passes); any other backend refuses to start.
    """
    from tweetcls.inference.self_check import SELF_CHECK_KEY, self_check_difference

    record = bundle.info.get(SELF_CHECK_KEY)
    if not record:
        return backend, "skipped: the bundle records no self-check (export it again)"
    tolerance = settings.self_check_tolerance
    difference = self_check_difference(backend, record)
    if difference is None:
        return backend, f"skipped: no recorded probabilities of {backend.name}"
    if difference <= tolerance:
        return backend, "passed"
    found = f"{backend.name} differs by up to {difference:.4f} (> {tolerance})"
    if backend.name == "onnx-int8":
        fallback = _load_backend(bundle, "onnx", settings.threads)
        fallback_difference = self_check_difference(fallback, record)
        if fallback_difference is not None and fallback_difference <= tolerance:
            status = f"fallback: {found} on this CPU; serving onnx (fp32)"
            logger.warning("self-check: %s", status.removeprefix("fallback: "))
            return fallback, status
    raise ConfigError(
        f"--model {bundle.path}: self-check failed: {found} from the probabilities export "
        "recorded; this CPU scores the bundle differently (re-export it on this kind of host)"
    )


def load_model(settings: ServeSettings) -> LoadedModel:
    """Load and check what ``settings`` serve (blocking: seconds for a large model).

    The backend scores the bundle's self-check tweets (:mod:`tweetcls.inference.self_check`)
    before anything is served: see :func:`_self_checked`.

    Raises:
        ConfigError: one line: the bundle is missing or malformed, its tokenizer is missing,
            the backend's model file is missing or corrupt, the tokenizer or model does not
            load, the self-check fails, or the drift reference is not a JSON object.
    """
    from tweetcls.core.bundle import DRIFT_REFERENCE_FILE, load_bundle, read_json

    bundle = load_bundle(settings.model)
    backend = _load_backend(bundle, settings.backend, settings.threads)
    backend, self_check = _self_checked(bundle, backend, settings)
    reference_path = bundle.path / DRIFT_REFERENCE_FILE
    reference = read_json(reference_path) if reference_path.is_file() else None
    return LoadedModel(bundle, backend, reference, self_check)
