"""Inference backends: the bundle's model behind one interface (:class:`.base.Backend`).

* ``onnx-int8``: ``onnx/model.int8.onnx`` in ONNX Runtime (default, fastest on CPU);
* ``onnx``: ``onnx/model.onnx`` (fp32) in ONNX Runtime (:mod:`tweetcls.inference.onnx_runtime`);
* ``pytorch``: the Hugging Face model in eager PyTorch (:mod:`tweetcls.inference.pytorch`;
  needs torch, which the serving image does not install).

:func:`load_backend` imports a backend's module only when that backend is built, so ONNX
serving never imports torch (the import contracts check that no module imports torch's
backend statically).
"""

from __future__ import annotations

from importlib import import_module

from tweetcls.core.bundle import BACKENDS, Bundle, file_sha256
from tweetcls.core.errors import ConfigError
from tweetcls.inference.base import Backend

#: The class of each backend, as ``module:class`` (imported when that backend is built).
BACKEND_CLASSES: dict[str, str] = {
    "onnx-int8": "tweetcls.inference.onnx_runtime:OnnxBackend",
    "onnx": "tweetcls.inference.onnx_runtime:OnnxBackend",
    "pytorch": "tweetcls.inference.pytorch:PytorchBackend",
}


def verify_model_file(bundle: Bundle, kind: str) -> None:
    """Check that backend ``kind``'s model file has the SHA-256 ``serving.json`` records.

    A plain model directory records none, and a missing file is left to the caller's own
    "not found" message.

    Raises:
        ConfigError: the file's hash differs (a corrupt or edited bundle).
    """
    path = bundle.backend_file(kind)
    expected = bundle.info.get("model_sha256", {}).get(kind)
    if expected is not None and path.is_file() and file_sha256(path) != expected:
        raise ConfigError(f"{path}: SHA-256 differs from serving.json (corrupt bundle?)")


def load_backend(bundle: Bundle, kind: str = "onnx-int8", threads: int | None = None) -> Backend:
    """Build backend ``kind`` (one of ``BACKENDS``) of ``bundle``.

    Args:
        bundle: The loaded bundle.
        kind: ``onnx-int8`` (default), ``onnx`` or ``pytorch``.
        threads: Intra-op threads; ``None`` lets the runtime choose.

    Raises:
        ConfigError: unknown kind, missing or corrupt model file, or torch not installed.
    """
    if kind not in BACKENDS:
        raise ConfigError(f"unknown backend {kind!r}; choose one of {', '.join(BACKENDS)}")
    if threads is not None and threads < 1:
        raise ConfigError(f"threads: must be >= 1, got {threads}")
    verify_model_file(bundle, kind)
    module, _, name = BACKEND_CLASSES[kind].partition(":")
    backend: type[Backend] = getattr(import_module(module), name)
    return backend(bundle, kind, threads)
