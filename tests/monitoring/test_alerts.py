"""monitoring/alerts.yml: valid Prometheus rule file, using only metrics the service exports."""

from __future__ import annotations

import re

import pytest
import yaml
from helpers.paths import ROOT

ALERTS = ROOT / "monitoring" / "alerts.yml"

#: Metric families of the serving contract (docs: /work/notes/serving-contract.md) and types.
CONTRACT_METRICS = {
    "tweetcls_http_requests": "counter",
    "tweetcls_http_request_duration_seconds": "histogram",
    "tweetcls_batch_size": "histogram",
    "tweetcls_inference_duration_seconds": "histogram",
    "tweetcls_predictions": "counter",
    "tweetcls_prediction_probability": "histogram",
    "tweetcls_model_info": "gauge",
    "tweetcls_drift_detected": "gauge",
    "tweetcls_drift_share": "gauge",
    "tweetcls_request_log_dropped": "counter",
    "tweetcls_self_check_fallback": "gauge",
    "tweetcls_stage_duration_seconds": "histogram",
}
#: Series names a family of each type exposes.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
}
#: Prometheus' duration syntax (model.ParseDuration).
DURATION = re.compile(r"^((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$")
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
ALERT_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
REQUIRED_ALERTS = {
    "TweetclsDown",
    "TweetclsHighErrorRate",
    "TweetclsHighLatencyP99",
    "TweetclsDriftDetected",
    "TweetclsRequestLogDropping",
}


def series_names(families: dict[str, str]) -> set[str]:
    return {name + suffix for name, kind in families.items() for suffix in SUFFIXES[kind]}


def expr_metrics(expr: str) -> set[str]:
    return set(re.findall(r"\btweetcls_[a-z0-9_]+", expr))


@pytest.fixture(scope="module")
def rules() -> list[dict]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    assert isinstance(document, dict) and set(document) == {"groups"}
    groups = document["groups"]
    assert isinstance(groups, list) and groups
    names = [group["name"] for group in groups]
    assert len(names) == len(set(names)), "group names must be unique"
    found = []
    for group in groups:
        assert set(group) <= {"name", "interval", "rules", "limit"}, group.keys()
        assert isinstance(group["rules"], list) and group["rules"]
        found += group["rules"]
    return found


def test_rules_are_well_formed(rules):
    for rule in rules:
        where = rule.get("alert", rule)
        assert set(rule) <= ALERT_KEYS, f"{where}: unknown keys {set(rule) - ALERT_KEYS}"
        assert METRIC_NAME.match(rule["alert"]), where
        assert isinstance(rule["expr"], str) and rule["expr"].strip(), where
        for opener, closer in ("()", "[]", "{}"):
            assert rule["expr"].count(opener) == rule["expr"].count(closer), where
        for key in ("for", "keep_firing_for"):
            if key in rule:
                assert DURATION.match(str(rule[key])) and rule[key] != "", f"{where}: {key}"
        labels, annotations = rule["labels"], rule["annotations"]
        assert labels["severity"] in {"critical", "warning", "info"}, where
        for mapping in (labels, annotations):
            assert all(LABEL_NAME.match(k) and isinstance(v, str) for k, v in mapping.items())
        assert {"summary", "description"} <= set(annotations), where
        for text in annotations.values():
            assert text.count("{{") == text.count("}}"), f"{where}: unbalanced template"


def test_alert_names_are_unique_and_complete(rules):
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED_ALERTS


def test_thresholds_match_the_objectives(rules):
    by_name = {rule["alert"]: rule for rule in rules}
    latency = by_name["TweetclsHighLatencyP99"]["expr"]
    assert "histogram_quantile(0.99" in latency.replace(" ", "")
    assert "tweetcls_http_request_duration_seconds_bucket" in latency
    assert re.search(r">\s*0\.05\s*$", latency.strip())
    assert 'status=~"5.."' in by_name["TweetclsHighErrorRate"]["expr"]
    assert "tweetcls_drift_detected" in by_name["TweetclsDriftDetected"]["expr"]
    assert re.search(r"\bup\{[^}]*\}\s*==\s*0", by_name["TweetclsDown"]["expr"])


def test_metrics_are_in_the_contract(rules):
    allowed = series_names(CONTRACT_METRICS)
    for rule in rules:
        unknown = expr_metrics(rule["expr"]) - allowed
        assert not unknown, f"{rule['alert']}: {unknown} not among the service's metrics"


def registered_families() -> dict[str, str]:
    """Metric families (name -> type) that the service's ServiceMetrics registers."""
    from tweetcls.serving.metrics import ServiceMetrics

    return {
        family.name: family.type
        for family in ServiceMetrics().registry.collect()
        if family.name.startswith("tweetcls_")
    }


def test_metrics_are_registered_by_the_service(rules):
    families = registered_families()
    assert families, "tweetcls.serving.metrics registers no tweetcls_* metric"
    registered = series_names(families)
    for rule in rules:
        missing = expr_metrics(rule["expr"]) - registered
        assert not missing, f"{rule['alert']}: {missing} not registered in serving/metrics.py"
