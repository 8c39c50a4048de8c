"""The export command: ONNX fp32 + int8 bundle, report, F1 guard and input validation."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from helpers.golden import assert_golden, export_report_keys_text
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import tweetcls
import tweetcls.export.writer as export_module
from tweetcls.cli import main
from tweetcls.core.bundle import BACKEND_FILES, file_sha256
from tweetcls.core.provenance import provenance
from tweetcls.data.preprocess import read_processed
from tweetcls.export.quantize import exact_integers

METRICS = ("f1", "precision", "recall", "accuracy", "agreement", "max_abs_prob_diff")
#: Weight MatMuls the tiny model's int8 file quantizes: q, k, v, attention output and
#: up-projection of each of its 2 layers, and the classifier head's dense and out_proj.
QUANTIZED_MATMULS = 2 * 5 + 2


def export_args(model, out, data_dir, report, *extra):
    return [
        "export",
        "--model",
        str(model),
        "--out",
        str(out),
        "--data_dir",
        str(data_dir),
        "--report_path",
        str(report),
        *extra,
    ]


@pytest.mark.parametrize("name", ["model.onnx", "model.int8.onnx"])
def test_onnx_files_have_dynamic_axes(tiny_bundle, name):
    path = tiny_bundle / "onnx" / name
    info = json.loads((tiny_bundle / "serving.json").read_text())
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == info["onnx_inputs"] == ["input_ids", "attention_mask"]
    for node in graph.input:
        assert [d.dim_param for d in node.type.tensor_type.shape.dim] == ["batch", "sequence"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bundle))
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_bundle)).eval()
    tolerance = 1e-4 if name == "model.onnx" else 0.1
    for texts in (["fire"], ["a flood", "x", "the storm hit the coast at night", "ok", "help"]):
        batch = tokenizer(texts, padding=True, return_tensors="np")
        logits = session.run(None, {k: batch[k] for k in info["onnx_inputs"]})[0]
        with torch.inference_mode():
            expected = model(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits
        assert logits.shape == (len(texts), 2)
        np.testing.assert_allclose(logits, expected.numpy(), atol=tolerance, rtol=0)


@pytest.mark.parametrize("name", ["model.onnx", "model.int8.onnx"])
def test_onnx_files_carry_no_exporter_debug_metadata(tiny_bundle, name):
    """Stack traces and module paths of the exporter named the builder's checkout."""
    path = tiny_bundle / "onnx" / name
    model = onnx.load(str(path))
    nodes = [*model.graph.node, *(n for f in model.functions for n in f.node)]
    assert nodes and not any(n.metadata_props or n.doc_string for n in nodes)
    data = path.read_bytes()
    for place in (Path(tweetcls.__file__).parents[2], Path(sys.prefix), Path.home()):
        assert str(place).encode() not in data


def test_report_and_serving_json_are_consistent(tiny_bundle, processed_dir, raw_dir):
    report = json.loads((tiny_bundle.parent / "export.json").read_text())
    info = json.loads((tiny_bundle / "serving.json").read_text())
    results = report["backends"]
    assert set(results) == {"pytorch", "onnx", "onnx-int8"}
    for metrics in results.values():
        assert set(metrics) == {*METRICS, "f1_ci"}
        assert all(0.0 <= metrics[k] <= 1.0 for k in METRICS)
        assert metrics["f1_ci"][0] <= metrics["f1"] <= metrics["f1_ci"][1]
    assert results["pytorch"]["agreement"] == 1.0
    assert results["pytorch"]["max_abs_prob_diff"] == 0.0
    assert results["onnx"]["max_abs_prob_diff"] < 1e-4
    assert results["onnx-int8"]["max_abs_prob_diff"] < 0.05
    drop = results["pytorch"]["f1"] - results["onnx-int8"]["f1"]
    assert report["int8_f1_drop"] == pytest.approx(drop, abs=1e-6)
    assert report["samples"] == len(read_processed(processed_dir, "val.csv"))
    assert (
        report["version"] == info["version"] == file_sha256(tiny_bundle / "model.safetensors")[:12]
    )
    assert info["validation"] == {k: v["f1"] for k, v in results.items()}
    for kind, relative in BACKEND_FILES.items():
        assert info["model_sha256"][kind] == file_sha256(tiny_bundle / relative)
    assert info["config_sha256"] == file_sha256(tiny_bundle / "tweetcls.json")
    assert info["quantization"]["weight_type"] == "QInt8"
    assert "exported_at" not in info  # the builder's clock: no output carries it
    # the provenance of this checkout; the test-local raw copy has no .dvc file beside it
    code = {k: v for k, v in provenance(raw_dir).items() if k != "data_dvc_file"}
    assert {k: info[k] for k in code} == {**code, "data_md5": None}
    reference = json.loads((tiny_bundle / "drift_reference.json").read_text())
    assert reference["n_samples"] == len(read_processed(processed_dir, "train.csv"))


def test_report_keys_match_golden_file(tiny_bundle):
    """The report's structure is fixed; its values (F1, sizes, paths) vary across hosts."""
    report = tiny_bundle.parent / "export.json"
    assert_golden("export_report_keys.json", export_report_keys_text(report))


def test_int8_keeps_only_the_feed_forward_down_projections_in_fp32(tiny_bundle):
    info = json.loads((tiny_bundle / "serving.json").read_text())
    kept = info["quantization"]["fp32_nodes"]
    fp32 = onnx.load(str(tiny_bundle / "onnx" / "model.onnx"), load_external_data=False).graph
    int8 = onnx.load(str(tiny_bundle / "onnx" / "model.int8.onnx"), load_external_data=False)
    producer = {out: node.op_type for node in fp32.node for out in node.output}
    fed_by_gelu = [
        n.name for n in fp32.node if n.op_type == "MatMul" and producer.get(n.input[0]) == "Gelu"
    ]
    assert kept == fed_by_gelu and len(kept) == 2  # one per layer of the tiny model
    int8_ops = {node.name: node.op_type for node in int8.graph.node}
    assert all(int8_ops[name] == "MatMul" for name in kept)
    quantized = [op for op in int8_ops.values() if op in ("MatMulInteger", "DynamicQuantizeMatMul")]
    # attention's activation-by-activation products stay MatMul
    assert len(quantized) == QUANTIZED_MATMULS


def test_int8_weights_use_seven_bits(tiny_bundle):
    """Weights in [-64, 64]: without VNNI the 16-bit pair sums of uint8 activations times these
    weights cannot saturate (255 * 64 * 2 < 32767), so every x86 CPU computes the same int8
    model (docs/serving.md, "Why 7 bits")."""
    info = json.loads((tiny_bundle / "serving.json").read_text())
    assert info["quantization"]["reduce_range"] is True
    int8 = onnx.load(str(tiny_bundle / "onnx" / "model.int8.onnx"), load_external_data=False)
    weights = [
        onnx.numpy_helper.to_array(t)
        for t in int8.graph.initializer
        if t.data_type == onnx.TensorProto.INT8 and t.name.endswith("_quantized")
    ]  # the zero points beside them are int8 too
    assert len(weights) == QUANTIZED_MATMULS
    assert max(int(np.abs(w.astype(np.int16)).max()) for w in weights) <= 64


def test_exact_integers_computes_the_products_without_saturation(tmp_path):
    """One ``MatMulInteger`` whose 16-bit pair sums overflow (255 * 127 * 2 > 32767), its
    activations and weights feeding a second product too: the rewrite gives numpy's integers."""
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
    exact = exact_integers(source, tmp_path / "exact.onnx")
    model = onnx.load(str(exact))
    assert "MatMulInteger" not in {n.op_type for n in model.graph.node}
    onnx.checker.check_model(model)
    y, z = ort.InferenceSession(str(exact)).run(None, {"a": a})
    expected = (a.astype(np.int64) - 7) @ weights.astype(np.int64)
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(z, expected)


def test_f1_guard_fails_and_leaves_nothing(
    tiny_bundle, processed_dir, tmp_path, monkeypatch, capsys
):
    # the real ONNX export is tested above; reuse its graph to keep this test fast
    def copy_onnx(model_dir, path, meta, opset):
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tiny_bundle / "onnx" / "model.onnx", path)
        return ["input_ids", "attention_mask"]

    monkeypatch.setattr(export_module, "export_onnx", copy_onnx)
    out, report = tmp_path / "bundle", tmp_path / "export.json"
    with pytest.raises(SystemExit) as exit_info:
        main(export_args(tiny_bundle, out, processed_dir, report, "--max_f1_drop", "-1"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: int8 model loses") and "--max_f1_drop -1.0" in err
    assert not out.exists() and not report.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary directory left behind


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: shutil.rmtree(d), "model directory not found"),
        (lambda d: (d / "tweetcls.json").unlink(), "tweetcls.json: file not found"),
        (lambda d: (d / "tweetcls.json").write_text("{not json"), "tweetcls.json: not valid JSON"),
    ],
)
def test_bad_model_dir_is_a_clear_error(
    tiny_bundle, processed_dir, tmp_path, capsys, setup, message
):
    model = tmp_path / "model"
    shutil.copytree(tiny_bundle, model)
    setup(model)
    with pytest.raises(SystemExit) as exit_info:
        main(export_args(model, tmp_path / "out", processed_dir, tmp_path / "r.json"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and str(model) in err
    assert not (tmp_path / "out").exists()


def test_missing_data_is_a_clear_error(tiny_bundle, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(export_args(tiny_bundle, tmp_path / "out", tmp_path / "nodata", tmp_path / "r.json"))
    assert exit_info.value.code == 2
    assert "nodata/val.csv: file not found" in capsys.readouterr().err


def test_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in (
        "--model",
        "--out",
        "--data_dir",
        "--raw_dir",
        "--report_path",
        "--max_f1_drop",
        "--opset",
    ):
        assert flag in out
