"""configs/mpnet.yaml end to end on a tiny randomly initialised MPNet (the real one is 438 MB).

The recipe's own settings (bf16 on GPU, batch 16, no keyword segment) stay as configured; only
what a CPU test needs is overridden: fp32, the tiny weights, one short epoch.
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import yaml
from helpers.paths import CPU, QUIET, ROOT
from transformers import AutoTokenizer, MPNetConfig, MPNetForSequenceClassification

from tweetcls.cli import main

MPNET_CONFIG = ROOT / "configs" / "mpnet.yaml"


@pytest.fixture(scope="module")
def tiny_mpnet_dir(tiny_model_dir, tmp_path_factory):
    """A 2-layer, 64-wide MPNet with the tiny model's tokenizer."""
    out = tmp_path_factory.mktemp("tiny-mpnet") / "model"
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = MPNetConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=130,
        pad_token_id=tokenizer.pad_token_id,
        num_labels=2,
    )
    MPNetForSequenceClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_mpnet_recipe_is_base_size_and_gpu_ready():
    config = yaml.safe_load(MPNET_CONFIG.read_text())
    assert config["model"]["pretrained_model"] == "sentence-transformers/all-mpnet-base-v2"
    assert config["trainer"]["precision"] == "bf16-mixed"
    assert config["model"]["learning_rate"] <= 5e-5  # base-size encoders need a small rate
    assert "classifier_dropout" not in config["model"]  # MPNet's head has no such setting


def test_mpnet_config_fits_tests_predicts_and_exports(
    tiny_mpnet_dir, raw_dir, processed_dir, tmp_path
):
    common = [
        "--config",
        str(MPNET_CONFIG),
        "--model.pretrained_model",
        str(tiny_mpnet_dir),
        "--data.raw_dir",
        str(raw_dir),
        "--data.data_dir",
        str(processed_dir),
        "--data.cache_dir",
        str(tmp_path / "cache"),
        "--config",
        str(CPU),
        "--config",
        str(QUIET),
        "--trainer.default_root_dir",
        str(tmp_path / "run"),
    ]
    main(["fit", *common, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "5"])
    meta = json.loads((tmp_path / "run" / "model" / "tweetcls.json").read_text())
    assert meta["use_keyword"] is False and meta["threshold"] == 0.5
    ckpt = str(tmp_path / "run" / "checkpoints" / "best.ckpt")
    main(["test", *common, "--ckpt_path", ckpt, "--report.dirpath", str(tmp_path / "reports")])
    metrics = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    assert metrics["samples"] == 691 and 0 <= metrics["f1"] <= 1
    submission = tmp_path / "submission.csv"
    main(["predict", *common, "--ckpt_path", ckpt, "--submission.path", str(submission)])
    assert len(pd.read_csv(submission)) == 3263
    main(
        [
            "export",
            "--model",
            str(tmp_path / "run" / "model"),
            "--out",
            str(tmp_path / "serving"),
            "--data_dir",
            str(processed_dir),
            "--raw_dir",
            str(raw_dir),
            "--report_path",
            str(tmp_path / "export.json"),
            "--max_f1_drop",
            "1",
        ]
    )
    export = json.loads((tmp_path / "export.json").read_text())
    assert set(export["backends"]) == {"pytorch", "onnx", "onnx-int8"}
    assert export["backends"]["onnx"]["max_abs_prob_diff"] < 1e-4  # fp32 ONNX = PyTorch
    low, high = export["backends"]["onnx-int8"]["f1_ci"]
    assert low <= export["backends"]["onnx-int8"]["f1"] <= high
    shutil.rmtree(tmp_path / "cache")
