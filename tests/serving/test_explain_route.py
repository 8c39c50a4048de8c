"""``POST /explain``: each word's attribution, by the backend that serves, for bundles whose
attributions passed export's faithfulness check (a copy of the tiny bundle marked either way)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers.builds import marked
from helpers.servers import settings_for
from prometheus_client.parser import text_string_to_metric_families

from tweetcls.core.bundle import INFO_FILE
from tweetcls.inference.explain import EXPLANATIONS_KEY, MAX_WORDS
from tweetcls.monitoring.logtable import TABLE_NAME
from tweetcls.serving.app import create_app

TWEET = {"text": "Forest fire near La Ronge Sask. Canada", "keyword": "wildfire"}


def rows(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        return connection.execute(f"SELECT count(*) FROM {TABLE_NAME}").fetchone()[0]


def test_explain_gives_each_word_its_share_and_logs_one_prediction(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    database = tmp_path / "requests.db"
    app = create_app(settings_for(marked(tiny_bundle, tmp_path, True), database))
    long_text = " ".join(f"w{i}" for i in range(MAX_WORDS + 6))
    with TestClient(app) as client:
        answer = client.post("/explain", json=TWEET)
        predicted = client.post("/predict", json=TWEET).json()
        long = client.post("/explain", json={"text": long_text}).json()
        metrics = client.get("/metrics").text
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["method"] == "occlusion"
    assert [w["word"] for w in body["words"]] == TWEET["text"].split()
    assert all(isinstance(w["attribution"], float) for w in body["words"])
    # int8 quantizes activations per batch: a tweet batched with its variants moves a little
    assert body["probability"] == pytest.approx(predicted["probability"], abs=2e-3)
    assert {k: body[k] for k in ("label", "label_name", "model_version")} == {
        k: predicted[k] for k in ("label", "label_name", "model_version")
    }
    shares = [w["attribution"] for w in long["words"]]
    assert len(shares) == MAX_WORDS + 6 and shares[MAX_WORDS:] == [None] * 6
    assert None not in shares[:MAX_WORDS]
    # the two explanations and the prediction are three predictions, not 80 (the variants)
    assert rows(database) == 3
    predictions = [
        sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "tweetcls_predictions_total"
    ]
    assert sum(predictions) == 3


def test_explain_is_off_for_a_bundle_whose_attributions_failed(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    app = create_app(settings_for(marked(tiny_bundle, tmp_path, False), tmp_path / "r.db"))
    with TestClient(app) as client:
        answer = client.post("/explain", json=TWEET)
        bad = client.post("/explain", json={"items": [TWEET]})
    assert answer.status_code == 404
    assert answer.json()["detail"].startswith("explain: off for this model")
    assert bad.status_code == 422  # one tweet only


def test_export_records_the_faithfulness_check(tiny_bundle: Path) -> None:
    info = json.loads((tiny_bundle / INFO_FILE).read_text())
    report = json.loads((tiny_bundle.parent / "export.json").read_text())
    record = info[EXPLANATIONS_KEY]
    assert record == {k: report["faithfulness"][k] for k in record}
    assert record["method"] == "occlusion" and record["backend"] == "onnx-int8"
    assert [row["k"] for row in report["faithfulness"]["curves"]] == [1, 2, 3, 4, 5]
    assert record["faithful"] == all(row["faithful"] for row in report["faithfulness"]["curves"])
