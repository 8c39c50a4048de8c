"""Drift reference, drift tests and the ``tweetcls drift`` command."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from transformers import AutoTokenizer

from tweetcls.cli import main
from tweetcls.core.errors import ConfigError
from tweetcls.monitoring import drift
from tweetcls.monitoring.logtable import PredictionRecord
from tweetcls.monitoring.requestlog import RequestLog

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def read_split(processed_dir, name: str) -> pd.DataFrame:
    return pd.read_csv(processed_dir / name, keep_default_na=False, dtype={"keyword": str})


@pytest.fixture(scope="module")
def reference(processed_dir) -> dict:
    return drift.build_reference(read_split(processed_dir, "train.csv"))


def traffic_from(frame: pd.DataFrame, seed: int = 0, log_text: bool = True) -> pd.DataFrame:
    """Request-log rows for ``frame``: a model that is right ~85% of the time."""
    rng = np.random.default_rng(seed)
    correct = rng.random(len(frame)) < 0.85
    label = np.where(correct, frame["target"], 1 - frame["target"])
    probability = np.clip(np.where(label == 1, 0.75, 0.25) + rng.normal(0, 0.1, len(frame)), 0, 1)
    return pd.DataFrame(
        {
            "time": [T0 + timedelta(seconds=i) for i in range(len(frame))],
            "text_length": frame["text"].str.len().to_numpy(),
            "token_count": None,
            "keyword": frame["keyword"].replace("", None).to_numpy(),
            "probability": probability,
            "label": label.astype(int),
            "text": frame["text"].to_numpy() if log_text else None,
        }
    )


def shifted(frame: pd.DataFrame) -> pd.DataFrame:
    """Long texts about something else, unusual keywords, mostly positive predictions."""
    traffic = traffic_from(frame)
    texts = frame["text"].to_numpy() + " crypto giveaway: claim your free tokens now, crypto"
    traffic["text"] = texts
    traffic["text_length"] = [len(t) * 2 for t in texts]
    traffic["keyword"] = [f"crypto{i % 4}" for i in range(len(frame))]
    traffic["label"] = (np.arange(len(frame)) % 10 != 0).astype(int)
    traffic["probability"] = np.where(traffic["label"] == 1, 0.95, 0.2)
    return traffic


def by_name(report: drift.DriftReport) -> dict[str, drift.FeatureDrift]:
    return {feature.name: feature for feature in report.features}


def test_reference_profiles_the_training_data(processed_dir, reference):
    train = read_split(processed_dir, "train.csv")
    assert json.loads(json.dumps(reference)) == reference
    assert reference["n_samples"] == len(train)
    assert reference["positive_rate"] == {
        "source": "target",
        "rate": pytest.approx(train["target"].mean()),
        "n": len(train),
    }
    assert sum(reference["keyword"]["counts"].values()) == len(train)
    assert sum(reference["text_length"]["counts"]) == len(train)
    assert reference["text_length"]["quantiles"]["p50"] == train["text"].str.len().median()
    assert reference["token_count"]["source"] == "words"
    assert len(reference["words"]["top"]) == drift.TOP_WORDS


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unshifted_traffic_is_not_flagged(processed_dir, reference, seed):
    val = read_split(processed_dir, "val.csv").sample(400, random_state=seed)
    report = drift.compare(reference, traffic_from(val, seed))
    assert report.status == "ok"
    assert not report.drift_detected, report.to_dict()
    assert report.share <= 0.25
    assert {f.name for f in report.features} == {
        "text_length",
        "token_count",
        "keyword",
        "positive_rate",
        "words",
    }
    assert all(f.status == "ok" for f in report.features)


def test_shifted_traffic_is_flagged(processed_dir, reference):
    val = read_split(processed_dir, "val.csv").sample(300, random_state=0)
    report = drift.compare(reference, shifted(val))
    assert report.drift_detected
    assert report.share == 1.0
    features = by_name(report)
    for name in ("text_length", "token_count", "keyword", "positive_rate", "words"):
        assert features[name].drifted, features[name]
        assert features[name].p_value < features[name].alpha
    assert features["keyword"].current["unseen_share"] == 1.0
    assert report.summary().startswith("DRIFT DETECTED: 5/5 features drifted")


def test_one_shifted_feature_is_reported_without_overall_drift(processed_dir, reference):
    val = read_split(processed_dir, "val.csv").sample(300, random_state=3)
    traffic = traffic_from(val)
    traffic["label"] = 1
    report = drift.compare(reference, traffic)
    assert by_name(report)["positive_rate"].drifted
    assert report.share == pytest.approx(1 / 5)
    assert not report.drift_detected


def test_too_few_samples_is_insufficient_data_not_drift(processed_dir, reference):
    val = read_split(processed_dir, "val.csv").head(30)
    report = drift.compare(reference, shifted(val), min_samples=100)
    assert report.status == "insufficient_data"
    assert not report.drift_detected
    assert report.features == ()
    assert report.summary().startswith("insufficient data: 30 logged predictions (need 100)")
    assert report.to_dict()["status"] == "insufficient_data"


def test_without_logged_texts_word_features_are_skipped(processed_dir, reference):
    val = read_split(processed_dir, "val.csv").sample(200, random_state=4)
    report = drift.compare(reference, traffic_from(val, log_text=False))
    features = by_name(report)
    assert features["words"].status == "skipped"
    assert features["token_count"].status == "skipped"
    assert "--log_text" in features["words"].detail
    assert report.status == "ok"


def test_token_counts_from_a_tokenizer(processed_dir, tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    reference = drift.build_reference(read_split(processed_dir, "train.csv"), tokenizer)
    assert reference["token_count"]["source"] == "tokenizer"
    val = read_split(processed_dir, "val.csv").sample(300, random_state=5)
    traffic = traffic_from(val, log_text=False)
    traffic["token_count"] = [len(ids) for ids in tokenizer(list(val["text"]))["input_ids"]]
    assert not by_name(drift.compare(reference, traffic))["token_count"].drifted
    traffic["token_count"] *= 3
    assert by_name(drift.compare(reference, traffic))["token_count"].drifted


def test_html_report_is_self_contained_and_escaped(processed_dir, reference):
    traffic = shifted(read_split(processed_dir, "val.csv").sample(150, random_state=6))
    traffic["keyword"] = "<script>alert(1)</script>"
    html = drift.compare(reference, traffic).to_html()
    assert html.startswith("<!DOCTYPE html>")
    assert "<table>" in html and "DRIFT DETECTED" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "http" not in html.split("</style>")[0]  # no external stylesheet or font


def test_bad_inputs_raise_config_error(processed_dir, reference):
    val = read_split(processed_dir, "val.csv").head(10)
    with pytest.raises(ConfigError, match="format"):
        drift.compare({**reference, "format": 99}, traffic_from(val))
    with pytest.raises(ConfigError, match="'label' column"):
        drift.compare(reference, traffic_from(val).drop(columns="label"))
    with pytest.raises(ConfigError, match="drift_share"):
        drift.compare(reference, traffic_from(val), drift_share=0)
    with pytest.raises(ConfigError, match="'text' column"):
        drift.build_reference(val.drop(columns="text"))
    with pytest.raises(ConfigError, match="no rows"):
        drift.build_reference(val.head(0))


def write_log(url: str, traffic: pd.DataFrame) -> None:
    with RequestLog(url, log_text=True) as log:
        log.record(
            PredictionRecord(
                time=row.time.to_pydatetime(),
                text_length=int(row.text_length),
                token_count=0,
                keyword=None if pd.isna(row.keyword) else row.keyword,
                probability=float(row.probability),
                label=int(row.label),
                latency_ms=3.0,
                model_version="abcdef012345",
                backend="onnx-int8",
                text=row.text,
            )
            for row in traffic.itertuples()
        )


@pytest.fixture
def cli_setup(tmp_path, processed_dir, reference):
    """A bundle-like dir with the reference, and a log holding unshifted then shifted traffic."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "drift_reference.json").write_text(json.dumps(reference))
    val = read_split(processed_dir, "val.csv")
    url = f"sqlite:///{tmp_path / 'log' / 'requests.db'}"
    write_log(url, traffic_from(val.sample(300, random_state=7)))
    late = shifted(val.sample(300, random_state=8))
    late["time"] = late["time"] + timedelta(days=1)
    write_log(url, late)
    return bundle, url


def test_cli_writes_json_and_html(tmp_path, cli_setup, capsys):
    bundle, url = cli_setup
    out = tmp_path / "out"
    common = ["drift", "--database_url", url, "--reference", str(bundle), "--out", str(out)]
    main([*common, "--since", "2025-03-01T00:00:00Z", "--until", "2025-03-02T00:00:00"])
    summary = capsys.readouterr().out
    assert summary.startswith("no drift: ")
    data = json.loads((out / "drift.json").read_text())
    assert data["traffic_samples"] == 300
    assert data["since"] == "2025-03-01T00:00:00+00:00"
    assert not data["drift_detected"]
    assert "no drift" in (out / "drift.html").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["drift.html", "drift.json"]

    with pytest.raises(SystemExit) as exit_info:
        main([*common, "--since", "2025-03-02T00:00Z", "--until", "2025-03-03", "--fail_on_drift"])
    assert exit_info.value.code == 1
    assert capsys.readouterr().out.startswith("DRIFT DETECTED")
    assert json.loads((out / "drift.json").read_text())["drift_detected"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--since": "yesterday"}, "--since 'yesterday': not an ISO 8601 time"),
        ({"--until": "2025-02-01"}, "is not after --since"),
        ({"--reference": "missing"}, "missing: file not found"),
        ({"--since": "999999999d"}, "--since '999999999d': not an ISO 8601 time"),
        ({"--alpha": "1.5"}, "--alpha 1.5: Input should be less than 1"),
        ({"--drift_min_samples": "0"}, "--drift_min_samples 0: Input should be greater"),
        ({"--fail_on_drift": "sometimes"}, "--fail_on_drift 'sometimes': Input should be a valid"),
        ({"--min-samples": "5"}, "unrecognized arguments: --min-samples 5"),
        ({"--database_url": "sqlite:///{tmp}/nothing.db"}, "no request log database there"),
        ({"--database_url": "postgresql://u:pw@127.0.0.1:1/db"}, "cannot read"),
        ({"--database_url": "oracle://x"}, "unsupported database"),
    ],
)
def test_cli_bad_input_exits_2(tmp_path, cli_setup, capsys, change, message):
    bundle, url = cli_setup
    options = {
        "--since": "2025-03-01",
        "--database_url": url,
        "--reference": str(bundle),
        "--out": str(tmp_path / "out"),
    }
    for key, value in change.items():
        options[key] = value.replace("{tmp}", str(tmp_path))
        if key == "--reference":
            options[key] = str(tmp_path / value)
    with pytest.raises(SystemExit) as exit_info:
        main(["drift", *(item for pair in options.items() for item in pair)])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert message in lines[0]
    assert "pw@" not in lines[0]  # the password of a database URL is not shown
    assert not (tmp_path / "out").exists()


def test_cli_reads_tweetcls_variables_and_flags_beat_them(tmp_path, cli_setup, capsys, monkeypatch):
    bundle, url = cli_setup
    out = tmp_path / "out"
    monkeypatch.setenv("TWEETCLS_DATABASE_URL", url)
    monkeypatch.setenv("TWEETCLS_REFERENCE", str(bundle))
    monkeypatch.setenv("TWEETCLS_SINCE", "2025-03-01T00:00:00Z")
    monkeypatch.setenv("TWEETCLS_UNTIL", "2025-03-02T00:00:00Z")
    monkeypatch.setenv("TWEETCLS_OUT", str(out))
    monkeypatch.setenv("TWEETCLS_DRIFT_MIN_SAMPLES", "1000")
    main(["drift"])
    assert capsys.readouterr().out.startswith("insufficient data: 300 logged predictions")
    main(["drift", "--drift_min_samples", "100"])  # the flag beats TWEETCLS_DRIFT_MIN_SAMPLES
    assert capsys.readouterr().out.startswith("no drift: ")
    assert json.loads((out / "drift.json").read_text())["min_samples"] == 100

    monkeypatch.setenv("TWEETCLS_ALPHA", "two")
    with pytest.raises(SystemExit) as exit_info:
        main(["drift"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: --alpha 'two': Input should be a valid number, unable to parse string as a number"
    ]


def test_cli_help_lists_every_flag(capsys):
    from tweetcls.monitoring.command import DriftSettings

    with pytest.raises(SystemExit) as exit_info:
        main(["drift", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name, field in DriftSettings.model_fields.items():
        assert f"--{name} " in out and field.description, name
        assert f"ENV:   TWEETCLS_{name.upper()}\n" in out, name
