"""Corrections that flow back into training: serve -> predict -> POST /feedback ->
``tweetcls feedback`` -> a reviewed file -> ``tweetcls preprocess --reviewed_feedback``; and
every answer of POST /feedback."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from helpers.paths import raw_data_dir, tiny_args
from helpers.servers import settings_for

from tweetcls.cli import main
from tweetcls.core.inputs import clean_text
from tweetcls.monitoring.requestlog import RequestLogUnavailable
from tweetcls.serving.app import create_app

KEY = "feedback-key-0123456789abcdef"
NEW_TWEET = "Feedback loop test: a zqx flood warning that is not in the Kaggle data"


@pytest.fixture
def client(tiny_bundle: Path, tmp_path: Path) -> Iterator[TestClient]:
    """The tiny bundle served in-process, texts logged, with an API key."""
    settings = settings_for(tiny_bundle, tmp_path / "requests.db", log_text=True, api_keys=[KEY])
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {KEY}"}) as client:
        yield client


def predict(client: TestClient, texts: list[str]) -> list[dict]:
    response = client.post("/predict", json={"items": [{"text": t} for t in texts]})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    for prediction in predictions:
        uuid.UUID(prediction["prediction_id"])  # a UUID, one per tweet
    assert len({p["prediction_id"] for p in predictions}) == len(texts)
    return predictions


def test_a_correction_reaches_the_training_data(client, tmp_path, raw_dir, tiny_model_dir, capsys):
    raw = pd.read_csv(raw_data_dir() / "train.csv", keep_default_na=False)
    sample = pd.concat([raw[raw["target"] == 1].head(3), raw[raw["target"] == 0].head(3)])
    predictions = predict(client, [*sample["text"], NEW_TWEET])
    # a raw tweet the model labels as the data does: its correction flips the data's label
    agreeing = [
        (text, target, p)
        for text, target, p in zip(sample["text"], sample["target"], predictions, strict=False)
        if p["label"] == target
    ]
    assert agreeing, "the tiny model contradicts every sampled label"
    text, target, corrected = agreeing[0]
    new = predictions[-1]
    # sent at once: the log may not have written the rows yet; the route waits for them
    answer = client.post(
        "/feedback",
        json={"prediction_id": corrected["prediction_id"], "label": 1 - target, "note": "flip"},
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["label"] == 1 - target and body["predicted_label"] == target
    assert body["note"] == "flip" and body["model_version"] == corrected["model_version"]
    answer = client.post(
        "/feedback", json={"prediction_id": new["prediction_id"], "label": 1 - new["label"]}
    )
    assert answer.status_code == 201, answer.text
    client.app.state.service.log.flush(timeout=10)

    database = f"sqlite:///{tmp_path / 'requests.db'}"
    export = tmp_path / "review" / "feedback.csv"
    main(["feedback", "--database_url", database, "--out", str(export)])
    assert "wrote 2 corrections" in capsys.readouterr().out
    corrections = pd.read_csv(export, keep_default_na=False)
    assert set(corrections["text"]) == {text, NEW_TWEET}

    # the review: a person accepts both rows and keeps the export as it is (``target`` holds
    # the corrected label)
    reviewed_file = tmp_path / "review" / "reviewed.csv"
    reviewed_file.write_bytes(export.read_bytes())

    out = tmp_path / "processed" / "data"
    report_path = tmp_path / "processed" / "data.json"
    main(
        [
            "preprocess",
            *tiny_args(raw_dir, out, tiny_model_dir),
            "--report_path",
            str(report_path),
            "--reviewed_feedback",
            str(reviewed_file),
        ]
    )
    assert "merged 2 reviewed rows" in capsys.readouterr().out
    train = pd.read_csv(out / "train.csv", keep_default_na=False)
    val = pd.read_csv(out / "val.csv", keep_default_na=False)
    both = pd.concat([train, val])
    cleaned = clean_text(text)
    assert both.loc[both["text"] == cleaned, "target"].tolist() == [1 - target]
    fresh = train[train["text"] == clean_text(NEW_TWEET)]
    assert fresh["target"].tolist() == [1 - new["label"]]
    assert int(fresh["id"].iloc[0]) == raw["id"].max() + 1
    report = json.loads(report_path.read_text())["reviewed_feedback"]
    assert report["rows"] == 2 and report["new_texts_in_train"] == 1
    assert report["corrected_in_train"] + report["corrected_in_val"] == 1
    assert report["labels_changed_in_train"] + report["labels_changed_in_val"] == 1
    settings = json.loads((out / "preprocess.json").read_text())
    assert settings["reviewed_feedback"] == {"path": str(reviewed_file), "rows": 2}
    # the split of the raw data is kept: the same texts in val as without the reviewed file
    plain = tmp_path / "plain" / "data"
    plain_report = str(tmp_path / "plain" / "data.json")
    main(["preprocess", *tiny_args(raw_dir, plain, tiny_model_dir), "--report_path", plain_report])
    plain_val = pd.read_csv(plain / "val.csv", keep_default_na=False)
    assert list(plain_val["text"]) == list(val["text"])


def test_every_answer_of_feedback(client) -> None:
    first, second = predict(client, ["Forest fire near La Ronge Sask. Canada", "I love fruits"])
    wrong = 1 - first["label"]

    def send(prediction_id: str, label, **extra):
        return client.post(
            "/feedback", json={"prediction_id": prediction_id, "label": label, **extra}
        )

    unknown = send(str(uuid.uuid4()), 1)
    assert unknown.status_code == 404 and "no logged prediction" in unknown.json()["detail"]
    own = send(first["prediction_id"], first["label"])  # agrees with the model
    assert own.status_code == 409 and "already has label" in own.json()["detail"]
    assert send(first["prediction_id"], wrong, note="n1").status_code == 201
    repeat = send(first["prediction_id"], wrong, note="n2")  # idempotent, first note kept
    assert repeat.status_code == 200 and repeat.json()["note"] == "n1"
    conflict = send(first["prediction_id"], 1 - wrong)
    assert conflict.status_code == 409 and "already corrected" in conflict.json()["detail"]
    for bad, field in [
        ({"prediction_id": second["prediction_id"], "label": 2}, "label"),
        ({"prediction_id": "not-a-uuid", "label": 1}, "prediction_id"),
        ({"prediction_id": second["prediction_id"]}, "label"),
        ({"prediction_id": second["prediction_id"], "label": 1, "extra": 1}, "extra"),
        ({"prediction_id": second["prediction_id"], "label": 1, "note": "x" * 1001}, "note"),
    ]:
        answer = client.post("/feedback", json=bad)
        assert answer.status_code == 422, (bad, answer.text)
        assert field in answer.json()["detail"]
    no_key = client.post(
        "/feedback",
        json={"prediction_id": second["prediction_id"], "label": 1},
        headers={"Authorization": "Bearer wrong-key-0123456789abcdef"},
    )
    assert no_key.status_code == 401  # the same access control as /predict


def test_feedback_while_the_log_is_unreachable_or_not_loaded(
    client, tiny_bundle, tmp_path, monkeypatch
) -> None:
    (prediction,) = predict(client, ["Flooding on the highway"])
    log = client.app.state.service.log

    def outage(*args, **kwargs):
        raise RequestLogUnavailable("request log: cannot write feedback to db: gone")

    monkeypatch.setattr(log, "add_feedback", outage)
    answer = client.post(
        "/feedback", json={"prediction_id": prediction["prediction_id"], "label": 1}
    )
    assert answer.status_code == 503 and "retry later" in answer.json()["detail"]
    # before the lifespan loaded the model and opened the log: 503 too
    idle = TestClient(create_app(settings_for(tiny_bundle, tmp_path / "other.db")))
    answer = idle.post("/feedback", json={"prediction_id": str(uuid.uuid4()), "label": 1})
    assert answer.status_code == 503 and "not loaded" in answer.json()["detail"]


def test_openapi_describes_feedback_and_the_prediction_id(client) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/feedback"]["post"]
    assert {"200", "201", "404", "409", "422", "503", "401"} <= set(operation["responses"])
    assert operation.get("security")  # protected like /predict
    prediction = spec["components"]["schemas"]["Prediction"]
    assert "prediction_id" in prediction["required"]
