"""The ONNX Runtime backends: ``onnx`` (``onnx/model.onnx``, fp32) and ``onnx-int8``
(``onnx/model.int8.onnx``, the default and fastest on CPU)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tweetcls.core.bundle import Bundle
from tweetcls.core.errors import ConfigError
from tweetcls.inference.base import Backend


class OnnxBackend(Backend):
    """An ONNX file of the bundle in one ONNX Runtime session.

    The session's intra-op threads sleep between runs instead of spin-waiting for the next
    (ONNX Runtime's default), so that the CPU a service uses follows its load, which is what
    CPU-based autoscaling reads: measured on 2 cores, one worker at half its capacity used
    1.57 cores spinning and 0.96 sleeping, with the same capacity (docs/results.md, *Serving
    levers*).

    Args:
        bundle: The loaded bundle.
        name: ``onnx`` (fp32) or ``onnx-int8``.
        threads: Intra-op threads of the session; ``None`` lets ONNX Runtime choose (one per
            physical core).
    """

    def __init__(self, bundle: Bundle, name: str, threads: int | None = None) -> None:
        import onnxruntime as ort

        super().__init__(bundle, name, threads)
        path = bundle.backend_file(name)
        if not path.is_file():
            raise ConfigError(f"{path}: not found (build the bundle with `tweetcls export`)")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        if threads is not None:
            options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [node.name for node in self.session.get_inputs()]
        self.output_names = [self.session.get_outputs()[0].name]
        missing = [n for n in self.input_names if n not in self.tokenizer.model_input_names]
        if missing:
            raise ConfigError(f"{path}: inputs {missing} are not produced by the bundle tokenizer")

    def _logits(self, encoded: Any) -> np.ndarray:
        feed = {name: encoded[name] for name in self.input_names}
        return self.session.run(self.output_names, feed)[0]
