"""The start-up self-check: the bundle's recorded tweets scored again before anything is served.

A copy of the tiny bundle whose recorded probabilities are corrupted stands for a CPU on which
the int8 model scores differently (as an AVX2-only host does): int8 falls back to fp32 ONNX and
says so, once in the log, in ``/ready`` and in a metric; a backend with no fallback refuses.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers.servers import settings_for

from tweetcls.cli import main
from tweetcls.core.bundle import BACKENDS, INFO_FILE
from tweetcls.core.errors import ConfigError
from tweetcls.inference.self_check import SELF_CHECK_KEY, SELF_CHECK_TWEETS
from tweetcls.serving.app import create_app
from tweetcls.serving.loading import load_model


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """The test's private request log."""
    return tmp_path / "requests.db"


def damaged(tiny_bundle: Path, tmp_path: Path, *backends: str) -> Path:
    """A copy of the bundle whose recorded probabilities of ``backends`` are 1 - p (what a CPU
    that scores the model differently would see); ``()``: the self-check removed."""
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    info = json.loads((copy / INFO_FILE).read_text())
    if backends:
        recorded = info[SELF_CHECK_KEY]["probabilities"]
        for kind in backends:
            recorded[kind] = [round(1 - p, 6) for p in recorded[kind]]
    else:
        del info[SELF_CHECK_KEY]
    (copy / INFO_FILE).write_text(json.dumps(info, indent=2))
    return copy


def test_export_records_the_check_tweets_and_every_backends_probabilities(tiny_bundle):
    record = json.loads((tiny_bundle / INFO_FILE).read_text())[SELF_CHECK_KEY]
    assert len(record["texts"]) == len(record["keywords"]) == SELF_CHECK_TWEETS
    assert set(record["probabilities"]) == set(BACKENDS)
    assert all(len(p) == SELF_CHECK_TWEETS for p in record["probabilities"].values())


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_bundle_passes_on_the_host_that_exported_it(tiny_bundle, database, backend):
    model = load_model(settings_for(tiny_bundle, database, backend=backend))
    assert model.self_check == "passed" and model.backend.name == backend


def test_int8_that_scores_wrongly_falls_back_to_fp32_and_says_so(
    tiny_bundle, tmp_path, database, caplog
):
    bundle = damaged(tiny_bundle, tmp_path, "onnx-int8")
    with caplog.at_level(logging.WARNING, logger="tweetcls.serving.loading"):
        model = load_model(settings_for(bundle, database))
    assert model.backend.name == "onnx" and model.fell_back
    assert model.self_check.startswith("fallback: onnx-int8 differs by up to 0.")
    assert model.self_check.endswith("on this CPU; serving onnx (fp32)")
    assert [r.getMessage() for r in caplog.records] == [
        f"self-check: {model.self_check.removeprefix('fallback: ')}"
    ]
    with TestClient(create_app(settings_for(bundle, database), model)) as client:
        assert client.get("/ready").json()["self_check"] == model.self_check
        assert "tweetcls_self_check_fallback 1.0" in client.get("/metrics").text
        assert 'tweetcls_model_info{backend="onnx"' in client.get("/metrics").text


def test_no_passing_backend_refuses_to_start(tiny_bundle, tmp_path, database, capsys):
    bundle = damaged(tiny_bundle, tmp_path, "onnx-int8", "onnx")
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--model", str(bundle), "--database_url", f"sqlite:///{tmp_path}/r.db"])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "self-check failed: onnx-int8 differs by up to" in lines[0]
    with pytest.raises(ConfigError, match="self-check failed: onnx differs"):
        load_model(settings_for(bundle, database, backend="onnx"))  # no fallback but int8's
    assert not (tmp_path / "r.db").exists()


def test_a_tolerance_of_one_accepts_anything_and_old_bundles_skip(tiny_bundle, tmp_path, database):
    bundle = damaged(tiny_bundle, tmp_path, "onnx-int8")
    assert load_model(settings_for(bundle, database, self_check_tolerance=1)).self_check == (
        "passed"
    )
    old = damaged(tiny_bundle, tmp_path / "old")
    assert load_model(settings_for(old, database)).self_check.startswith("skipped: ")
