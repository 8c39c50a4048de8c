"""``python -m tweetcls tiny-model``: a tiny randomly initialised RoBERTa for fast tests.

Trains a byte-level BPE tokenizer on the training tweets (well under a second) and saves it
with a 2-layer, 64-wide ``RobertaForSequenceClassification`` as a Hugging Face directory that
``model.pretrained_model`` can point at (``configs/tiny.yaml`` does).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import RobertaConfig, RobertaForSequenceClassification, RobertaTokenizerFast

from tweetcls.core.atomic import atomic_path
from tweetcls.data.preprocess import TRAIN_COLUMNS, read_raw_csv

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def build_tiny_model(
    out_dir: str | Path,
    train_csv: str | Path,
    vocab_size: int = 2000,
    hidden_size: int = 64,
    num_layers: int = 2,
    max_positions: int = 130,
    seed: int = 0,
) -> Path:
    """Write a tokenizer trained on ``train_csv`` and a randomly initialised tiny RoBERTa."""
    texts = read_raw_csv(Path(train_csv), TRAIN_COLUMNS)["text"].tolist()
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS)
    config = RobertaConfig(
        vocab_size=bpe.get_vocab_size(),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=max(1, hidden_size // 32),
        intermediate_size=4 * hidden_size,
        max_position_embeddings=max_positions + 2,
        num_labels=2,
    )
    torch.manual_seed(seed)
    model = RobertaForSequenceClassification(config)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        bpe.save_model(str(tmp))
        tokenizer = RobertaTokenizerFast(
            vocab=str(tmp / "vocab.json"),
            merges=str(tmp / "merges.txt"),
            model_max_length=max_positions,
        )
        tokenizer.save_pretrained(tmp)
        model.save_pretrained(tmp)
        (tmp / "tiny_model.json").write_text(
            json.dumps({"train_csv": str(train_csv), "vocab_size": vocab_size}, indent=2) + "\n"
        )
    return Path(out_dir)


def main(args: list[str] | None = None, prog: str = "tweetcls tiny-model") -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--out", default="models/tiny-roberta", help="Output directory.")
    parser.add_argument("--train_csv", default="data/raw/train.csv", help="Tokenizer corpus.")
    parser.add_argument("--vocab_size", type=int, default=2000)
    parser.add_argument("--hidden_size", type=int, default=64)
    parser.add_argument("--num_layers", type=int, default=2)
    ns = parser.parse_args(args)
    out = build_tiny_model(ns.out, ns.train_csv, ns.vocab_size, ns.hidden_size, ns.num_layers)
    print(f"tiny-model: wrote {out}")
