"""``tweetcls tiny-model``: a tiny randomly initialised RoBERTa for fast tests.

Trains a byte-level BPE tokenizer on the training tweets (well under a second) and saves it
with a 2-layer, 64-wide ``RobertaForSequenceClassification`` as a Hugging Face directory that
``model.pretrained_model`` can point at (``configs/tiny.yaml`` does).
"""

from __future__ import annotations

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


def tiny_model(
    out: str = "models/tiny-roberta",
    train_csv: str = "data/raw/train.csv",
    vocab_size: int = 2000,
    hidden_size: int = 64,
    num_layers: int = 2,
) -> Path:
    """Build a tiny randomly initialised RoBERTa (tokenizer trained on the tweets) for tests and
    smoke runs; ``configs/tiny.yaml`` points ``model.pretrained_model`` at it.

    Args:
        out: Output directory (replaced atomically).
        train_csv: Raw training CSV whose tweets train the byte-level BPE tokenizer.
        vocab_size: Tokenizer vocabulary size.
        hidden_size: Hidden width of the encoder (attention heads: hidden_size // 32).
        num_layers: Encoder layers.
    """
    written = build_tiny_model(out, train_csv, vocab_size, hidden_size, num_layers)
    print(f"tiny-model: wrote {written}")
    return written


def main(args: list[str] | None = None, prog: str = "tweetcls tiny-model") -> None:
    """Run ``tweetcls tiny-model``."""
    from tweetcls.core.arguments import run_function

    run_function(tiny_model, list(args or []), prog)
