"""Dynamic int8 quantization of the ONNX model (ONNX Runtime's ``quantize_dynamic``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tweetcls.core.logs import quiet_loggers

#: quantize_dynamic settings: QInt8 weights in 7 bits (``reduce_range``), one scale per output
#: channel, for the encoder's ``MatMul``s except the feed-forward down-projections (the
#: ``MatMul``s fed by ``Gelu``, whose long-tailed activations lose the most); those, the ``Gemm``
#: head and the ``Gather`` embeddings stay fp32. 7-bit weights are what make int8 hold on every
#: x86 CPU: without VNNI, ONNX Runtime multiplies uint8 activations by int8 weights with
#: ``vpmaddubsw``, whose 16-bit pair sums saturate for 8-bit weights (255 * 127 * 2 > 32767) but
#: not for 7-bit ones (255 * 64 * 2 < 32767), so AVX2-only and VNNI CPUs compute the same
#: integers. Measured natively on an AVX2-only AMD EPYC (F1 against fp32, label agreement):
#: MPNet (300 held-out tweets) 8-bit 0.2278 against 0.7838 (0.587), 7-bit 0.7964 (0.977);
#: MiniLM (691 validation tweets) 8-bit 0.7964 against 0.7942 (0.9855), 7-bit 0.7904 (0.9855);
#: batch-1 latency +1-2% (docs/serving.md, "Why 7 bits").
QUANTIZATION = {
    "weight_type": "QInt8",
    "op_types_to_quantize": ["MatMul"],
    "per_channel": True,
    "reduce_range": True,
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


def exact_integers(int8_path: Path, out_path: Path) -> Path:
    """``int8_path`` as a CPU with VNNI computes it, on any CPU: each ``MatMulInteger`` becomes
    float64 ``(A - a0) @ (B - b0)`` cast to int32, the exact sums that VNNI's ``vpdpbusd``
    accumulates (and that AVX2's 16-bit pair sums reach only with 7-bit weights). For checking
    a bundle on the kind of CPU it is not on (``scripts/int8_parity.py``'s ``exact``)."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(int8_path))
    nodes, made = [], set()

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        if output not in made:  # one input may feed several products (Q, K and V)
            nodes.append(helper.make_node(op, inputs, [output], **attrs))
            made.add(output)
        return output

    for original in model.graph.node:
        if original.op_type != "MatMulInteger":
            nodes.append(original)
            continue
        centred = []
        for value, zero in zip(original.input[:2], [*original.input[2:], "", ""][:2], strict=True):
            wide = node("Cast", [value], f"{value}:f64", to=TensorProto.DOUBLE)
            if zero:
                zero_wide = node("Cast", [zero], f"{zero}:f64", to=TensorProto.DOUBLE)
                wide = node("Sub", [wide, zero_wide], f"{value}-{zero}:f64")
            centred.append(wide)
        product = node("MatMul", centred, f"{original.output[0]}:f64")
        node("Cast", [product], original.output[0], to=TensorProto.INT32)
    model.graph.ClearField("node")
    model.graph.node.extend(nodes)
    onnx.save(model, str(out_path))
    return out_path
