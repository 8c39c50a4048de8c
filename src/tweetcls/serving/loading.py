"""What the service serves: the bundle, its backend and its drift reference, loaded and checked.

:func:`load_model` is the one way to load them: ``tweetcls serve`` calls it before uvicorn
starts (so a missing, corrupt or incomplete bundle is one ``error:`` line, exit code 2) and hands
the result to the app; an app built without one (tests) loads it in its lifespan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tweetcls.core.bundle import TOKENIZER_FILE
from tweetcls.core.errors import ConfigError

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
    """

    bundle: Bundle
    backend: Backend
    reference: dict[str, Any] | None

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


def load_model(settings: ServeSettings) -> LoadedModel:
    """Load and check what ``settings`` serve (blocking: seconds for a large model).

    Raises:
        ConfigError: one line: the bundle is missing or malformed, its tokenizer is missing,
            the backend's model file is missing or corrupt, the tokenizer or model does not
            load, or the drift reference is not a JSON object.
    """
    from tweetcls.core.bundle import DRIFT_REFERENCE_FILE, load_bundle, read_json
    from tweetcls.inference.backends import load_backend

    bundle = load_bundle(settings.model)
    _check_files(bundle, settings.backend)
    try:
        backend = load_backend(bundle, settings.backend, settings.threads)
    except ConfigError:
        raise
    except Exception as err:  # a missing tokenizer file, an unreadable model, ...
        reason = (str(err).strip().splitlines() or [""])[0][:300]
        raise ConfigError(
            f"--model {bundle.path}: the {settings.backend} backend does not load "
            f"({type(err).__name__}: {reason})"
        ) from None
    reference_path = bundle.path / DRIFT_REFERENCE_FILE
    reference = read_json(reference_path) if reference_path.is_file() else None
    return LoadedModel(bundle=bundle, backend=backend, reference=reference)
