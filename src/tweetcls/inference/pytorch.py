"""The ``pytorch`` backend: the bundle's Hugging Face model in eager PyTorch.

The only backend that needs torch; :func:`tweetcls.inference.backends.load_backend` imports
this module only when that backend is asked for, so ONNX serving runs without torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tweetcls.core.bundle import Bundle
from tweetcls.core.errors import ConfigError
from tweetcls.inference.base import Backend


class PytorchBackend(Backend):
    """The Hugging Face model in eager PyTorch (``eval()``, ``inference_mode``).

    Args:
        bundle: The loaded bundle (or plain model directory).
        name: ``pytorch``.
        threads: ``torch.set_num_threads`` (process-wide); ``None`` keeps PyTorch's default.
    """

    def __init__(self, bundle: Bundle, name: str = "pytorch", threads: int | None = None) -> None:
        try:
            import torch

            from tweetcls.inference.networks import load_network
        except ImportError as err:
            raise ConfigError(
                f"the pytorch backend needs torch ({err}); install `.[train]` or use an ONNX "
                "backend"
            ) from None
        super().__init__(bundle, name, threads)
        if threads is not None:
            torch.set_num_threads(threads)
        self._torch = torch
        self.model = load_network(bundle.path)

    def _logits(self, encoded: Any) -> np.ndarray:
        torch = self._torch
        inputs = {name: torch.from_numpy(array) for name, array in encoded.items()}
        with torch.inference_mode():
            return self.model(**inputs).logits.float().numpy()
