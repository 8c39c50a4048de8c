"""The training recipe's levers, each set from YAML/CLI and shown to reach the optimiser or
the network: layer-wise learning-rate decay, the head's learning rate, label smoothing,
gradient clipping, weight averaging (EMA), the mean-pooling head and layer pruning
(``encoder_layers``); the pruned mean-pooling model also exports to ONNX and int8 and serves
from every backend."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.builds import build_bundle
from helpers.paths import QUIET

from tweetcls.cli import main
from tweetcls.core.bundle import load_bundle
from tweetcls.core.errors import ConfigError
from tweetcls.inference.backends import load_backend
from tweetcls.inference.networks import POOLING_KEY, MeanPoolingClassifier, load_network
from tweetcls.models.classifier import TweetClassifier
from tweetcls.training import cli as cli_module
from tweetcls.training.cli import run_cli_class
from tweetcls.training.preprocess_cli import PreprocessCLI

LEVERS = [
    "--model.layer_decay",
    "0.5",
    "--model.head_learning_rate",
    "0.01",
    "--model.label_smoothing",
    "0.1",
    "--model.pooling",
    "mean",
    "--trainer.gradient_clip_val",
    "1.0",
    "--model.encoder_layers",
    "1",
]


def test_levers_reach_the_optimiser_and_network(tiny_run):
    config = run_cli_class(PreprocessCLI, tiny_run("fit", *LEVERS)[1:], run=False).config
    assert config.trainer.gradient_clip_val == 1.0
    model = TweetClassifier(**config.model.as_dict())
    assert isinstance(model.model, MeanPoolingClassifier)
    assert model.model.config.num_hidden_layers == 1
    assert len(model.model.encoder.encoder.layer) == 1  # the layers above are gone
    optimizer, _ = model.optimizer_and_scheduler(100)
    top = model.model.config.num_hidden_layers
    depths = model.layer_depths()
    lr_of = {id(p): g["initial_lr"] for g in optimizer.param_groups for p in g["params"]}
    for name, param in model.named_parameters():
        depth = depths[name]
        expected = 0.01 if depth > top else model.hparams.learning_rate * 0.5 ** (top - depth)
        assert lr_of[id(param)] == pytest.approx(expected, rel=1e-6), name
    assert {depths[n] for n, _ in model.named_parameters() if "classifier" in n} == {top + 1}
    assert min(depths.values()) == 0 and top in depths.values()


def test_label_smoothing_changes_the_training_loss(tiny_model_dir):
    batch = {
        "input_ids": torch.tensor([[0, 5, 6, 2]]),
        "attention_mask": torch.ones(1, 4, dtype=torch.long),
        "labels": torch.tensor([1]),
    }
    losses = []
    for smoothing in (0.0, 0.2):
        torch.manual_seed(0)
        model = TweetClassifier(str(tiny_model_dir), label_smoothing=smoothing).eval()
        model.log = lambda *a, **k: None
        model.log_dict = lambda *a, **k: None
        losses.append(model.training_step(batch, 0).item())
    assert losses[0] != pytest.approx(losses[1])


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("layer_decay", 0.0),
        ("layer_decay", 1.5),
        ("head_learning_rate", 0.0),
        ("label_smoothing", 1.0),
        ("encoder_layers", 0),
        ("encoder_layers", 99),
    ],
)
def test_bad_lever_values_are_refused(tiny_model_dir, name, value):
    with pytest.raises(ConfigError, match=rf"model\.{name}"):
        TweetClassifier(str(tiny_model_dir), **{name: value})


def test_ema_and_mean_pooling_fit_export_and_serve(tiny_run, tmp_path, processed_dir, raw_dir):
    """A fit with every lever and EMA weight averaging over its last epoch exports a
    mean-pooling model that ONNX fp32, int8 and PyTorch serve alike."""
    args = tiny_run(
        "fit",
        "--config",
        str(QUIET),
        *LEVERS,
        "--trainer.max_epochs",
        "2",
        "--trainer.limit_train_batches",
        "3",
        "--trainer.limit_val_batches",
        "2",
        "--trainer.callbacks+",
        "lightning.pytorch.callbacks.EMAWeightAveraging",
        "--trainer.callbacks.decay",
        "0.9",
        "--trainer.callbacks.update_starting_at_epoch",
        "1",
        "--trainer.default_root_dir",
        str(tmp_path / "run"),
    )
    main(args)
    model_dir = tmp_path / "run" / "model"
    network = load_network(model_dir)
    assert isinstance(network, MeanPoolingClassifier)
    assert network.config.to_dict()[POOLING_KEY] == "mean"
    assert network.config.num_hidden_layers == 1
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert "current_model_state" in checkpoint  # the EMA weights are what was saved
    bundle = load_bundle(build_bundle(model_dir, tmp_path / "bundle", processed_dir, raw_dir))
    texts = ["Forest fire near La Ronge", "I love fruits", "Earthquake! http://t.co/x @user"]
    probabilities = {
        kind: load_backend(bundle, kind).predict_proba(texts, [None] * len(texts))
        for kind in ("onnx", "pytorch")
    }
    np.testing.assert_allclose(probabilities["onnx"], probabilities["pytorch"], atol=1e-4)
    assert load_backend(bundle, "onnx-int8").predict_proba(texts, [None] * 3).shape == (3,)


@pytest.mark.parametrize(
    ("accelerator", "precision", "bf16_units", "expected"),
    [
        ("cpu", "bf16-mixed", False, "32-true"),
        ("auto", "bf16-mixed", False, "32-true"),
        ("cpu", "bf16-mixed", True, "bf16-mixed"),
        ("cpu", "32-true", False, "32-true"),
        ("gpu", "bf16-mixed", False, "bf16-mixed"),
    ],
)
def test_bf16_falls_back_to_fp32_on_cpus_without_bf16_units(
    monkeypatch, capsys, accelerator, precision, bf16_units, expected
):
    monkeypatch.setattr(cli_module, "cpu_has_bf16_units", lambda: bf16_units)
    assert cli_module.cpu_precision(accelerator, precision) == expected
    said = capsys.readouterr().out
    assert ("bf16-mixed -> 32-true" in said) == (expected != precision)


def test_bf16_units_are_read_from_the_cpu_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t: fpu avx2 avx512f avx512_vnni\n")
    assert not cli_module.cpu_has_bf16_units(cpuinfo)
    cpuinfo.write_text("flags\t: fpu avx2 avx512f avx512_bf16\n")
    assert cli_module.cpu_has_bf16_units(cpuinfo)
    assert not cli_module.cpu_has_bf16_units(tmp_path / "missing")


def test_a_bf16_config_fits_in_fp32_on_a_cpu_without_bf16_units(
    tiny_run, tmp_path, monkeypatch, capsys
):
    """bf16-mixed (as configs/mpnet.yaml sets it) through the real CLI on such a CPU."""
    monkeypatch.setattr(cli_module, "cpu_has_bf16_units", lambda: False)
    args = tiny_run(
        "fit",
        "--config",
        str(QUIET),
        "--trainer.precision",
        "bf16-mixed",
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_train_batches",
        "1",
        "--trainer.limit_val_batches",
        "1",
        "--trainer.default_root_dir",
        str(tmp_path / "run"),
    )
    main(args)
    assert "trainer.precision: bf16-mixed -> 32-true" in capsys.readouterr().out
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()
