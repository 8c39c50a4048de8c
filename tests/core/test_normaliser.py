"""The text normaliser: what it repairs, that its version travels with the model, and that
training and serving feed the model the same input for the same raw tweet."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from tweetcls.core.bundle import META_FILE, load_bundle
from tweetcls.core.errors import ConfigError
from tweetcls.core.inputs import NORMALISER_VERSION, clean_text
from tweetcls.data.datamodule import DisasterTweetsDataModule
from tweetcls.inference.backends import load_backend


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # this data set's mojibake: UTF-8 read as Windows-1252, saved as Mac Roman
        ("Reddit quarantines \x89Û÷extremely offensive\x89Ûª communities", None),
        ("Rescuers help OceanåÊ now", "Rescuers help Ocean now"),
        ("Caf\u00cc\u00a9 on fire", "Café on fire"),
        # its last byte was lost before publication: the ellipsis of a truncated tweet
        ("Full re\x89Û_ http://t.co/vplR5Hka2u", "Full re… http"),
        # real Latin-1 text is not mojibake
        ("café naïve", "café naïve"),
        # links (also cut short) -> one token, handles -> @user, e-mail addresses kept
        ("see https://t.co/abc and www.x.org or http", "see http and http or http"),
        (
            "@bbcmtd Wholesale Markets ablaze, mail a@b.com",
            "@user Wholesale Markets ablaze, mail a@b.com",
        ),
        ("Fire &amp;amp; smoke\n\n near  &lt;b&gt;", "Fire & smoke near <b>"),
    ],
)
def test_normaliser_repairs_the_data_sets_faults(raw, expected):
    if expected is None:
        expected = "Reddit quarantines 'extremely offensive' communities"
    assert clean_text(raw) == expected


def test_version_1_is_unchanged():
    text = "@bbc Fire &amp; smoke http://t.co/x \x89Û_"
    assert clean_text(text, 1) == "@bbc Fire & smoke http://t.co/x \x89Û_"
    assert NORMALISER_VERSION == 2


def test_bundle_records_the_normaliser_and_serving_refuses_an_unknown_one(tiny_bundle, tmp_path):
    assert load_bundle(tiny_bundle).normaliser == NORMALISER_VERSION
    assert json.loads((tiny_bundle / META_FILE).read_text())["normaliser"] == NORMALISER_VERSION
    copy = shutil.copytree(tiny_bundle, tmp_path / "bundle")
    meta = json.loads((copy / META_FILE).read_text())
    meta["normaliser"] = 99
    (copy / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=r"tweetcls\.json: 'normaliser'.*version 99 is not"):
        load_bundle(copy)
    del meta["normaliser"]  # a model from before versions existed: version 1
    (copy / META_FILE).write_text(json.dumps(meta))
    assert load_bundle(copy).normaliser == 1


def test_training_and_serving_inputs_are_identical(tiny_bundle, raw_dir, processed_dir, tmp_path):
    """For the same raw tweets, the token ids training fed the model (preprocess, then the
    DataModule) are the token ids the served backend computes from the raw text."""
    data = DisasterTweetsDataModule(
        str(tiny_bundle), data_dir=str(processed_dir), cache_dir=str(tmp_path / "cache")
    )
    bundle_meta = json.loads((tiny_bundle / META_FILE).read_text())
    data.use_keyword, data.max_length = bundle_meta["use_keyword"], bundle_meta["max_length"]
    data.setup("fit")
    raw = pd.read_csv(raw_dir / "train.csv", keep_default_na=False).set_index("id")
    ids = [
        i for i in data.ids["train"] if "t.co" in raw.loc[i, "text"] or "\x89" in raw.loc[i, "text"]
    ]
    ids = ids[:64]
    assert len(ids) == 64
    position = {tweet: row for row, tweet in enumerate(data.ids["train"])}
    trained = [data.datasets["train"][position[i]]["input_ids"] for i in ids]
    backend = load_backend(load_bundle(tiny_bundle), "onnx")
    keywords = [raw.loc[i, "keyword"] or None for i in ids]
    encoded = backend.encode([raw.loc[i, "text"] for i in ids], keywords)
    served = [
        row[mask.astype(bool)].tolist()
        for row, mask in zip(encoded["input_ids"], encoded["attention_mask"], strict=True)
    ]
    assert served == trained
