"""The fitted Hugging Face model as an ONNX graph with dynamic batch and sequence axes."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from tweetcls.core.errors import ConfigError
from tweetcls.core.inputs import encode
from tweetcls.core.logs import quiet_loggers

#: ONNX opset of the exported graph. 20 is the dynamo exporter's native opset in torch 2.13
#: (no version conversion pass), has native ``Gelu`` and ``LayerNormalization`` kernels in
#: ONNX Runtime, and is supported by ``onnxruntime.quantization``.
DEFAULT_OPSET = 20


#: Sample tweets for tracing: two of different lengths (so no axis is specialised to 1).
_SAMPLE = (
    ["Forest fire near La Ronge Sask. Canada", "I love fruits"],
    ["wildfire", None],
)


def _logits_module(model: Any) -> Any:
    """``model`` as a module that returns only the ``logits`` tensor (for export)."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor | None = None,
        ) -> torch.Tensor:
            inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                inputs["token_type_ids"] = token_type_ids
            return self.model(**inputs).logits

    return LogitsOnly()


def strip_debug_metadata(model: Any) -> None:
    """Drop what the exporter records for debugging from an ``onnx_ir`` model, in place.

    The dynamo exporter gives every node the Python stack trace that created it and its
    module path (``pkg.torch.onnx.stack_trace``, ``namespace``, ...): about half of a MiniLM
    file, naming the builder's checkout and ``site-packages`` nearly two thousand times, so the
    file's bytes depended on where it was built. The graph, weights and names are untouched.
    """
    import onnx_ir as ir

    for graph in (model.graph, *model.functions.values()):
        for node in ir.traversal.RecursiveGraphIterator(graph):
            node.metadata_props.clear()
            node.doc_string = None


def export_onnx(model_dir: Path, path: Path, meta: dict[str, Any], opset: int) -> list[str]:
    """Export the Hugging Face model of ``model_dir`` to ONNX ``path``; return its input names.

    Uses the dynamo exporter (``torch.export``), the maintained path in torch 2.13 whose
    ``dynamic_shapes`` are checked symbolically: an export that silently specialised the batch
    or sequence length fails here instead of at serving time. The TorchScript exporter is
    deprecated and is not used. The graph outputs ``logits`` ``(batch, 2)``; inputs are the
    tokenizer's ``model_input_names`` (``token_type_ids`` only for BERT-like models).
    """
    import torch
    from transformers import AutoTokenizer

    from tweetcls.inference.networks import load_network

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = load_network(model_dir)
    sample = encode(
        tokenizer,
        _SAMPLE[0],
        _SAMPLE[1],
        [None] * len(_SAMPLE[0]),
        use_keyword=meta["use_keyword"],
        use_location=meta["use_location"],
        max_length=meta["max_length"],
        return_tensors="pt",
    )
    names = [name for name in tokenizer.model_input_names if name in sample]
    unsupported = set(names) - {"input_ids", "attention_mask", "token_type_ids"}
    if unsupported or not {"input_ids", "attention_mask"} <= set(names):
        raise ConfigError(f"{model_dir}: unsupported tokenizer inputs {names}")
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), quiet_loggers("torch.onnx", "torch.export"):
        # the exporter's internals warn about deprecations in torch itself, not about this model
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            _logits_module(model),
            (),
            kwargs={name: sample[name] for name in names},
            input_names=names,
            output_names=["logits"],
            dynamic_shapes={name: {0: batch, 1: sequence} for name in names},
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
        strip_debug_metadata(program.model)
        program.save(str(path), external_data=False)
    _check_dynamic_axes(path, names)
    return names


def _check_dynamic_axes(path: Path, names: list[str]) -> None:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    inputs = {node.name: node for node in graph.input}
    for name in names:
        dims = inputs[name].type.tensor_type.shape.dim
        if len(dims) != 2 or not all(dim.dim_param for dim in dims):
            raise ConfigError(f"{path}: input {name} has fixed axes {dims}; export not dynamic")
