"""Serving bundle and backends: same inputs and probabilities as training, versions, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding

from tweetcls.core.bundle import BACKENDS, file_sha256, load_bundle
from tweetcls.core.errors import ConfigError
from tweetcls.data.datamodule import DisasterTweetsDataModule
from tweetcls.data.preprocess import clean_keyword, clean_text
from tweetcls.inference.backends import BACKEND_CLASSES, load_backend
from tweetcls.inference.base import token_chunks

#: Raw tweets with HTML entities, %-encoded keywords, a missing keyword and an overlong one.
TEXTS = [
    "Forest fire near La Ronge Sask. Canada &amp;amp; smoke",
    "I love fruits",
    "Residents asked to 'shelter in place'   are being notified by officers " * 6,
    "@user Heard about #earthquake is different cities, stay safe everyone.",
]
KEYWORDS = ["wild%20fires", None, "evacuation", "flood"]
#: Absolute tolerance against PyTorch probabilities per backend.
TOLERANCE = {"pytorch": 1e-6, "onnx": 1e-4, "onnx-int8": 0.05}
#: Tolerance between a tweet scored alone and in a padded batch. int8 quantizes activations
#: with one scale per batch, so its results depend a little on the batch.
BATCH_TOLERANCE = {"pytorch": 1e-5, "onnx": 1e-5, "onnx-int8": 0.05}


def training_probabilities(bundle_dir, texts, keywords) -> tuple[np.ndarray, list[int]]:
    """Probabilities along the training path: preprocess cleaning, the DataModule's
    tokenization and collation, the Hugging Face model."""
    meta = json.loads((bundle_dir / "tweetcls.json").read_text())
    data = DisasterTweetsDataModule(
        str(bundle_dir),
        max_length=meta["max_length"],
        use_keyword=meta["use_keyword"],
        use_location=meta["use_location"],
    )
    encoded = data._tokenize_batch(
        {
            "text": [clean_text(t) for t in texts],
            "keyword": [clean_keyword(k or "") for k in keywords],
            "location": [""] * len(texts),
        }
    )
    lengths = encoded.pop("length")
    features = [{k: v[i] for k, v in encoded.items()} for i in range(len(texts))]
    batch = DataCollatorWithPadding(data.tokenizer, return_tensors="pt")(features)
    model = AutoModelForSequenceClassification.from_pretrained(str(bundle_dir)).eval()
    calibration = load_bundle(bundle_dir).calibration
    with torch.inference_mode():
        logits = model(**batch).logits
    margin = (logits[:, 1] - logits[:, 0]) / calibration.temperature + calibration.bias
    return torch.sigmoid(margin).numpy(), lengths


@pytest.mark.parametrize("kind", BACKENDS)
def test_backend_matches_training_path(tiny_bundle, kind):
    bundle = load_bundle(tiny_bundle)
    assert bundle.meta["use_keyword"]  # the keyword segment is exercised
    backend = load_backend(bundle, kind, threads=1)
    assert backend.name == kind
    expected, lengths = training_probabilities(tiny_bundle, TEXTS, KEYWORDS)
    probs = backend.predict_proba(TEXTS, KEYWORDS)
    assert probs.shape == (len(TEXTS),)
    np.testing.assert_allclose(probs, expected, atol=TOLERANCE[kind], rtol=0)
    assert backend.count_tokens(TEXTS, KEYWORDS) == lengths
    assert max(lengths) == bundle.meta["max_length"]  # the long tweet was truncated
    # padding to the batch's longest tweet does not change a tweet's probability
    single = np.concatenate(
        [backend.predict_proba([t], [k]) for t, k in zip(TEXTS, KEYWORDS, strict=True)]
    )
    np.testing.assert_allclose(single, probs, atol=BATCH_TOLERANCE[kind], rtol=0)
    assert backend.predict_proba([], []).shape == (0,)
    assert backend.count_tokens([], []) == []


@pytest.mark.parametrize("threads", [None, 2])
def test_onnx_threads_sleep_between_runs(tiny_bundle, threads):
    """ONNX Runtime's threads do not spin-wait between runs (a service's CPU follows its
    load), whatever the thread count."""
    options = load_backend(load_bundle(tiny_bundle), "onnx", threads).session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.intra_op_num_threads == (threads or 0)  # 0: ONNX Runtime chooses


@pytest.mark.parametrize("max_batch_tokens", [0, 1, 40, 10_000])
def test_score_in_token_chunks_matches_one_run(tiny_bundle, max_batch_tokens):
    backend = load_backend(load_bundle(tiny_bundle), "onnx")
    texts = [*TEXTS, "a", "flood warning for the whole county tonight"]
    keywords = [*KEYWORDS, None, "flood"]
    scores = backend.score(texts, keywords, max_batch_tokens=max_batch_tokens)
    np.testing.assert_allclose(
        scores.probabilities, backend.predict_proba(texts, keywords), atol=1e-5, rtol=0
    )
    assert scores.token_counts.tolist() == backend.count_tokens(texts, keywords)


def test_token_chunks_pad_within_the_budget():
    lengths = np.array([3, 4, 4, 10, 30, 31])
    chunks = token_chunks(lengths, 12)
    assert chunks == [slice(0, 3), slice(3, 4), slice(4, 5), slice(5, 6)]
    assert all(
        (c.stop - c.start) * lengths[c.stop - 1] <= 12 or c.stop - c.start == 1 for c in chunks
    )
    assert token_chunks(np.array([], dtype=int), 8) == []
    assert token_chunks(lengths, 10_000) == [slice(0, 6)]


def test_keyword_changes_the_input(tiny_bundle):
    backend = load_backend(load_bundle(tiny_bundle), "onnx")
    with_keyword = backend.encode(["fire in the hills"], ["wildfire"])["input_ids"]
    without = backend.encode(["fire in the hills"], [None])["input_ids"]
    assert with_keyword.shape[1] > without.shape[1]


def test_overlong_keyword_is_cut_not_fatal(tiny_bundle):
    backend = load_backend(load_bundle(tiny_bundle), "onnx-int8")
    max_length = backend.bundle.meta["max_length"]
    counts = backend.count_tokens(["short text", "another"], ["storm " * 200, "storm"])
    assert counts[0] == max_length and counts[1] < max_length
    assert np.isfinite(backend.predict_proba(["short text"], ["storm " * 200])).all()
    # fewer characters than max_length, but more tokens: each emoji is several byte tokens
    emoji = "\U0001f600\u4e2d" * 30
    assert len(emoji) < max_length
    assert backend.count_tokens(["x " * 100], [emoji])[0] == max_length
    assert np.isfinite(backend.predict_proba(["x " * 100, "y"], [emoji, None])).all()


def test_bundle_versions(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    info = json.loads((tiny_bundle / "serving.json").read_text())
    versions = bundle.versions()
    assert versions["version"] == bundle.version == info["version"]
    assert bundle.version == file_sha256(tiny_bundle / "model.safetensors")[:12]
    moved = bundle.calibration.threshold(bundle.meta["threshold"])  # the same decisions
    assert versions["threshold"] == bundle.threshold == moved
    assert versions["calibration"] == {
        key: info["calibration"][key] for key in ("temperature", "bias")
    }
    assert versions["backends"] == list(BACKENDS)
    assert versions["model_sha256"]["onnx-int8"] == file_sha256(
        tiny_bundle / "onnx" / "model.int8.onnx"
    )
    assert versions["source_date"] == info["source_date"]
    json.dumps(versions)  # served as JSON


def test_plain_model_dir_serves_pytorch_only(tiny_bundle, tmp_path):
    plain = tmp_path / "model"
    shutil.copytree(tiny_bundle, plain, ignore=shutil.ignore_patterns("onnx", "*.json"))
    shutil.copy(tiny_bundle / "tweetcls.json", plain)
    shutil.copy(tiny_bundle / "config.json", plain)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_bundle / name, plain)
    bundle = load_bundle(plain)
    assert bundle.info == {}
    assert bundle.version == load_bundle(tiny_bundle).version
    assert bundle.available_backends() == ["pytorch"]
    assert load_backend(bundle, "pytorch").predict_proba(["fire"], [None]).shape == (1,)
    with pytest.raises(ConfigError, match=r"model\.int8\.onnx: not found"):
        load_backend(bundle, "onnx-int8")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: shutil.rmtree(d), "model directory not found"),
        (lambda d: (d / "tweetcls.json").unlink(), r"tweetcls\.json: file not found"),
        (lambda d: (d / "tweetcls.json").write_text("{oops"), r"tweetcls\.json: not valid JSON"),
        (lambda d: (d / "tweetcls.json").write_text("[1]"), r"tweetcls\.json: expected a JSON"),
        (
            lambda d: (d / "tweetcls.json").write_text('{"threshold": 0.5}'),
            r"tweetcls\.json: missing key 'max_length'",
        ),
        (lambda d: (d / "serving.json").write_text("{"), r"serving\.json: not valid JSON"),
        (
            lambda d: (d / "serving.json").write_text('{"version": "xyz"}'),
            r"serving\.json: missing key 'model_sha256'",
        ),
    ],
)
def test_load_bundle_errors_name_the_file(tiny_bundle, tmp_path, edit, message):
    broken = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, broken)
    edit(broken)
    with pytest.raises(ConfigError, match=message):
        load_bundle(broken)


def test_load_backend_rejects_bad_arguments_and_corrupt_files(tiny_bundle, tmp_path):
    bundle = load_bundle(tiny_bundle)
    with pytest.raises(ConfigError, match="unknown backend 'tensorrt'"):
        load_backend(bundle, "tensorrt")
    with pytest.raises(ConfigError, match="threads: must be >= 1"):
        load_backend(bundle, threads=0)
    corrupt = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, corrupt)
    with open(corrupt / "onnx" / "model.int8.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ConfigError, match=r"SHA-256 differs from serving\.json"):
        load_backend(load_bundle(corrupt), "onnx-int8")


def test_every_backend_has_a_class():
    assert set(BACKEND_CLASSES) == set(BACKENDS)


def test_onnx_serving_needs_no_training_stack(tiny_bundle):
    """The API image has no torch, Lightning or datasets: the ONNX path must not import them."""
    code = (
        "import sys\n"
        "for name in ('torch', 'lightning', 'datasets', 'sklearn'):\n"
        "    sys.modules[name] = None\n"
        "from tweetcls.inference.backends import load_backend\n"
        "from tweetcls.core.bundle import load_bundle\n"
        f"backend = load_backend(load_bundle({str(tiny_bundle)!r}))\n"
        "print(backend.predict_proba(['fire'], ['wildfire'])[0])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert 0.0 <= float(result.stdout.strip().splitlines()[-1]) <= 1.0
