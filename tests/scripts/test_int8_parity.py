"""``scripts/int8_parity.py`` on the tiny bundle: every variant scored against fp32, the shipped
one being the bundle's own int8 file, and the CPU features the process sees; the ``exact``
variant's rewrite against numpy's integers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def test_int8_variants_are_scored_against_fp32(
    run_script: Callable[..., Any], tiny_bundle: Path, processed_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "parity.json"
    proc = run_script(
        "int8_parity",
        "--bundle", str(tiny_bundle), "--data", str(processed_dir / "val.csv"), "--limit", "24",
        "--reps", "2", "--variants", "shipped", "full_range", "exact", "--json", str(out),
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert report["tweets"] == 24
    assert list(report["variants"]) == ["fp32", "shipped", "full_range", "exact"]
    fp32 = report["variants"]["fp32"]
    assert fp32["agreement"] == 1.0 and fp32["max_abs_prob_diff"] == 0.0
    for row in report["variants"].values():
        assert 0 <= row["f1"] <= 1 and 0 <= row["agreement"] <= 1 and row["batch1_median_ms"] > 0
    # the shipped variant is the bundle's int8 file: it differs from fp32, as int8 does
    assert report["variants"]["shipped"]["max_abs_prob_diff"] > 0
    assert "AVX2" in report["simd_features"]  # every host this project supports has it
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("CPU features seen:")
    assert [line.split()[0] for line in lines[2:]] == ["fp32", "shipped", "full_range", "exact"]


def test_exact_integers_computes_the_products_without_saturation(tmp_path: Path) -> None:
    """One ``MatMulInteger`` whose 16-bit pair sums overflow (255 * 127 * 2 > 32767), its
    activations and weights feeding a second product too: the rewrite gives numpy's integers."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from helpers.scripts import import_script
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    a = rng.integers(200, 256, (3, 64), dtype=np.uint8)
    weights = rng.choice(np.array([-127, 127], dtype=np.int8), (64, 5))
    a_zero, w_zero = np.uint8(7), np.zeros(5, dtype=np.int8)
    init = [
        numpy_helper.from_array(v, n) for v, n in ((weights, "w"), (a_zero, "a0"), (w_zero, "w0"))
    ]
    nodes = [helper.make_node("MatMulInteger", ["a", "w", "a0", "w0"], [y]) for y in ("y", "z")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("a", TensorProto.UINT8, [3, 64])],
        [helper.make_tensor_value_info(y, TensorProto.INT32, [3, 5]) for y in ("y", "z")], init,
    )  # fmt: skip
    source = tmp_path / "product.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), source)
    exact = import_script("int8_parity").exact_integers(source, tmp_path / "exact.onnx")
    model = onnx.load(str(exact))
    assert "MatMulInteger" not in {n.op_type for n in model.graph.node}
    onnx.checker.check_model(model)
    y, z = ort.InferenceSession(str(exact)).run(None, {"a": a})
    expected = (a.astype(np.int64) - 7) @ weights.astype(np.int64)
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(z, expected)
