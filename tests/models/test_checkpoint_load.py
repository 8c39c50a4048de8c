"""With ``--ckpt_path`` the model is built from its config: no pretrained weights are loaded
that the checkpoint would overwrite, and the scores stay what they were."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from tweetcls.models.classifier import TweetClassifier
from tweetcls.training import cli as training_cli
from tweetcls.training.cli import main


@pytest.fixture
def pretrained_loads(monkeypatch) -> list[tuple]:
    """Records every ``AutoModelForSequenceClassification.from_pretrained`` call."""
    calls: list[tuple] = []
    original = AutoModelForSequenceClassification.from_pretrained

    def spy(cls, *args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(AutoModelForSequenceClassification, "from_pretrained", classmethod(spy))
    return calls


@pytest.fixture
def fitted(tiny_run):
    """A short tiny fit: ``best.ckpt`` and ``last.ckpt`` under the run's checkpoints."""
    main(tiny_run("fit", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "20"))
    return tiny_run


def test_without_pretrained_weights_the_same_network_is_built(tiny_model_dir):
    torch.manual_seed(0)
    pretrained = TweetClassifier(str(tiny_model_dir), classifier_dropout=0.2)
    bare = TweetClassifier(str(tiny_model_dir), classifier_dropout=0.2, pretrained_weights=False)
    assert "pretrained_weights" not in bare.hparams  # a way to build, not a hyperparameter
    assert bare.model.config.to_dict() == pretrained.model.config.to_dict()
    assert bare.model.config.id2label == {0: "not_disaster", 1: "disaster"}
    assert bare.model.training and pretrained.model.training
    bare_state, state = bare.state_dict(), pretrained.state_dict()
    assert bare_state.keys() == state.keys()
    assert all(bare_state[k].dtype == v.dtype for k, v in state.items())
    bare.load_state_dict(state)
    bare.eval(), pretrained.eval()
    batch = {"input_ids": torch.randint(3, 1000, (8, 16)), "attention_mask": torch.ones(8, 16)}
    # same weights, other allocations: CPU kernels may round differently on differently
    # aligned memory (seen for batches of one, ~1e-9), hence a tolerance
    torch.testing.assert_close(bare(batch), pretrained(batch), rtol=0, atol=1e-6)


def test_test_with_ckpt_path_skips_pretrained_weights(fitted, tmp_path, monkeypatch):
    best = str(tmp_path / "run" / "checkpoints" / "best.ckpt")
    args = ["--ckpt_path", best, "--trainer.enable_progress_bar", "false"]
    # before: pretrained weights first, then the checkpoint's
    monkeypatch.setattr(training_cli, "_checkpoint_will_load", lambda *args: False)
    main(fitted("test", *args, "--report.dirpath", str(tmp_path / "before")))
    monkeypatch.undo()
    calls: list[tuple] = []
    original = AutoModelForSequenceClassification.from_pretrained

    def spy(cls, *a, **k):
        calls.append(a)
        return original(*a, **k)

    monkeypatch.setattr(AutoModelForSequenceClassification, "from_pretrained", classmethod(spy))
    main(fitted("test", *args, "--report.dirpath", str(tmp_path / "after")))
    assert calls == []
    before = json.loads((tmp_path / "before" / "metrics.json").read_text())
    after = json.loads((tmp_path / "after" / "metrics.json").read_text())
    assert after == before
    assert after["samples"] > 0


@pytest.mark.parametrize("command", ["validate", "predict"])
def test_other_evaluations_skip_pretrained_weights(command, fitted, tmp_path, pretrained_loads):
    best = str(tmp_path / "run" / "checkpoints" / "best.ckpt")
    main(fitted(command, "--ckpt_path", best))
    assert pretrained_loads == []
    if command == "predict":
        assert (tmp_path / "predictions" / "submission.csv").is_file()


@pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty")
def test_resumed_fit_skips_pretrained_weights(fitted, tmp_path, pretrained_loads):
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    main(fitted("fit", "--trainer.max_epochs", "1", "--ckpt_path", "last"))
    assert pretrained_loads == []


@pytest.mark.filterwarnings("ignore:.*there is no last checkpoint available")
def test_without_a_checkpoint_the_pretrained_weights_load(tiny_run, tmp_path, pretrained_loads):
    # `--ckpt_path last` before any last.ckpt exists: Lightning loads nothing, so the model
    # needs its pretrained weights
    args = tiny_run("fit", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2")
    main([*args, "--trainer.limit_val_batches", "2", "--ckpt_path", "last"])
    assert len(pretrained_loads) == 1


def test_checkpoint_will_load(tmp_path):
    will_load = training_cli._checkpoint_will_load
    assert not will_load(None, str(tmp_path))
    assert not will_load("last", str(tmp_path))
    assert not will_load("last", str(tmp_path / "missing"))
    assert not will_load(str(tmp_path / "best.ckpt"), None)
    (tmp_path / "last.ckpt").write_bytes(b"")
    (tmp_path / "best.ckpt").write_bytes(b"")
    assert will_load("last", str(tmp_path))
    assert will_load(str(tmp_path / "best.ckpt"), None)
    assert not will_load("hpc", str(tmp_path))
