"""Dynamic int8 quantization of the ONNX model (ONNX Runtime's ``quantize_dynamic``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tweetcls.core.logs import quiet_loggers

#: quantize_dynamic settings: QInt8 weights, one scale per output channel, for the encoder's
#: ``MatMul``s except the feed-forward down-projections (the ``MatMul``s fed by ``Gelu``, whose
#: long-tailed activations lose the most in per-tensor uint8); those, the ``Gemm`` head and the
#: ``Gather`` embeddings stay fp32. Validation F1 of int8 on the pipeline's MiniLM (PyTorch
#: 0.8020, threshold 0.610, 750 tweets): per-channel + reduce_range 0.7900, per-channel 0.7954,
#: uint8 weights per-channel 0.7953, per-tensor uint8 0.7915, per-channel with the last layer
#: in fp32 0.7887, per-channel with the down-projections in fp32 0.8000 (chosen; agreement
#: 0.9947, 70 MB instead of 59 MB, same batch-1 latency on this AVX2 CPU).
QUANTIZATION = {
    "weight_type": "QInt8",
    "op_types_to_quantize": ["MatMul"],
    "per_channel": True,
    "reduce_range": False,
    "fp32_matmuls_fed_by": ["Gelu"],
}


def fp32_matmuls(model_path: Path, fed_by: list[str]) -> list[str]:
    """Names of the ``MatMul`` nodes of ``model_path`` fed by an op whose type is in ``fed_by``."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    producer = {output: node.op_type for node in graph.node for output in node.output}
    return [
        node.name
        for node in graph.node
        if node.op_type == "MatMul" and producer.get(node.input[0]) in fed_by
    ]


def quantize(
    fp32_path: Path, int8_path: Path, settings: Mapping[str, Any] = QUANTIZATION
) -> dict[str, Any]:
    """Dynamically quantize ``fp32_path`` (int8 weights, activations quantized at run time).

    Args:
        fp32_path: The fp32 ONNX model.
        int8_path: Where to write the int8 model.
        settings: Keys as :data:`QUANTIZATION` (the bundle's; ``scripts/int8_parity.py`` varies
            them).

    Returns the settings, with the names of the nodes kept in fp32.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    excluded = fp32_matmuls(fp32_path, settings["fp32_matmuls_fed_by"])
    with quiet_loggers("root"):
        quantize_dynamic(
            fp32_path,
            int8_path,
            weight_type=QuantType[settings["weight_type"]],
            op_types_to_quantize=settings["op_types_to_quantize"],
            per_channel=settings["per_channel"],
            reduce_range=settings["reduce_range"],
            nodes_to_exclude=excluded,
            extra_options={"MatMulConstBOnly": True},
        )
    return {**settings, "fp32_nodes": excluded}
