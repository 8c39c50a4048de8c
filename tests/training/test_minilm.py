"""The real packaged MiniLM, fine-tuned for a few dozen steps through the CLI (slow)."""

from __future__ import annotations

import json

import pytest
import torch
from helpers.paths import ROOT
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from tweetcls.cli import main


@pytest.mark.slow
def test_minilm_few_steps(tiny_run, tmp_path):
    args = tiny_run(
        "fit",
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_train_batches",
        "40",
        "--trainer.limit_val_batches",
        "8",
    )
    # the same test-local data and outputs, with the MiniLM config and model
    args[args.index("--config") + 1] = str(ROOT / "configs" / "minilm.yaml")
    args[args.index("--model.pretrained_model") + 1] = "sentence-transformers/all-MiniLM-L6-v2"
    main(args)
    best = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", weights_only=False)
    assert best["global_step"] == 40
    exported = tmp_path / "run" / "model"
    meta = json.loads((exported / "tweetcls.json").read_text())
    assert meta["pretrained_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    # 40 steps of a pretrained encoder already separate the classes well above chance
    assert meta["best_val_f1"] > 0.6
    model = AutoModelForSequenceClassification.from_pretrained(exported)
    tokenizer = AutoTokenizer.from_pretrained(exported)
    assert model.config.num_labels == 2 and tokenizer("fire").input_ids[0] == tokenizer.cls_token_id
