"""cloud/monitoring: the Grafana dashboard and the Cloud Monitoring alert policies (offline).

- Alert policies parse strictly into ``google.cloud.monitoring_v3.AlertPolicy`` (protobuf JSON
  mapping: an unknown field, a bad enum or a malformed duration fails) and mirror, one for one,
  the rules of ``monitoring/alerts.yml``: the same PromQL (compared as parsed ASTs), the same
  ``for`` duration, severity and labels. The Prometheus rules are the one source of truth.
- The dashboard round-trips through the Grafana Foundation SDK's dashboard model (generated
  from Grafana's schema): a key the schema does not know is lost, and reported.
- Every PromQL query (dashboard targets and variables, policies, rules) parses with
  promql-parser, and every series and label it selects is one the service's own registry
  (``tweetcls.serving.metrics.ServiceMetrics``) exports.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from google.cloud.monitoring_v3 import AlertPolicy
from google.protobuf import json_format
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard
from helpers.paths import ROOT

MONITORING = ROOT / "cloud" / "monitoring"
DASHBOARD = MONITORING / "grafana-dashboard.json"
POLICIES = sorted((MONITORING / "alert-policies").glob("*.yaml"))
ALERTS = ROOT / "monitoring" / "alerts.yml"
REQUIRED_POLICIES = {"TweetclsHighErrorRate", "TweetclsHighLatencyP99", "TweetclsDriftDetected"}
#: Labels the scraper attaches to every series, and the series it writes itself.
TARGET_LABELS = frozenset({"instance", "job"})
SCRAPE_SERIES = {"up": TARGET_LABELS}
#: Grafana's built-in variables, replaced by a value of the right kind before parsing.
GRAFANA_BUILTINS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)$")
PROMETHEUS_DS = {"type": "prometheus", "uid": "${datasource}"}


# --- the service's series -----------------------------------------------------------------


@cache
def registry_samples() -> tuple[tuple[str, str, frozenset[str]], ...]:
    """(family, series, label names) of a ServiceMetrics exercised through its public API."""
    from tweetcls.serving.metrics import ServiceMetrics

    metrics = ServiceMetrics()
    metrics.observe_request("POST", "/predict", 200, 0.01)
    metrics.observe_batch([0.9, 0.2], [1, 0], 0.01, 2)
    metrics.set_model("v1", "onnx")
    metrics.set_drift(True, 0.5)
    metrics.sync_log_dropped(1)
    metrics.watch_log(lambda: True)
    found = []
    for family in metrics.registry.collect():
        if family.name.startswith("tweetcls_"):
            assert family.samples, f"{family.name}: no sample; exercise it in registry_samples()"
            found += [(family.name, s.name, frozenset(s.labels)) for s in family.samples]
    return tuple(found)


@cache
def exported_series() -> dict[str, frozenset[str]]:
    """Series name -> label names the service exports, plus those the scraper writes."""
    series: dict[str, frozenset[str]] = dict(SCRAPE_SERIES)
    for _, name, labels in registry_samples():
        series[name] = series.get(name, frozenset()) | labels
    return series


def family_of() -> dict[str, str]:
    return {name: family for family, name, _ in registry_samples()}


# --- PromQL -----------------------------------------------------------------------------------


def selectors(expr: promql_parser.Expr) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []
    promql_parser.walk(
        expr,
        lambda node: found.append(node) if isinstance(node, promql_parser.VectorSelector) else None,
    )
    return found


def selector_name(selector: promql_parser.VectorSelector) -> str | None:
    if selector.name:
        return selector.name
    for matcher in selector.matchers.matchers:
        if matcher.name == "__name__" and matcher.op == promql_parser.MatchOp.Equal:
            return matcher.value
    return None


def query_errors(query: str) -> list[str]:
    """Why ``query`` is not valid PromQL over the service's series (empty if it is)."""
    try:
        expr = promql_parser.parse(query)
    except ValueError as error:
        return [f"does not parse: {error}"]
    series = exported_series()
    errors = []
    for selector in selectors(expr):
        name = selector_name(selector)
        if name not in series:
            errors.append(f"{name}: not a series the service exports")
            continue
        labels = {m.name for m in selector.matchers.matchers} - {"__name__"}
        unknown = labels - series[name] - TARGET_LABELS
        if unknown:
            errors.append(f"{name}: no label {sorted(unknown)}")
    return errors


def same_promql(a: str, b: str) -> bool:
    return str(promql_parser.parse(a)) == str(promql_parser.parse(b))


def threshold(expr: str) -> float:
    """The constant a rule's expression compares against (``... > 0.05``)."""
    node = promql_parser.parse(expr)
    assert isinstance(node, promql_parser.BinaryExpr), expr
    assert isinstance(node.rhs, promql_parser.NumberLiteral), expr
    return node.rhs.val


# --- the Prometheus rules (source of truth) -------------------------------------------------


@cache
def alerts_document() -> dict[str, Any]:
    return yaml.safe_load(ALERTS.read_text(encoding="utf-8"))


def rule_groups() -> dict[str, dict[str, dict[str, Any]]]:
    """Group name -> alert name -> rule, from monitoring/alerts.yml."""
    return {
        group["name"]: {rule["alert"]: rule for rule in group["rules"] if "alert" in rule}
        for group in alerts_document()["groups"]
    }


def group_interval(name: str) -> timedelta | None:
    """The group's own evaluation interval, if it sets one."""
    (group,) = (g for g in alerts_document()["groups"] if g["name"] == name)
    return promql_parser.parse_duration(group["interval"]) if "interval" in group else None


# --- alert policies ---------------------------------------------------------------------------


def load_policy(document: dict[str, Any]) -> AlertPolicy:
    """Strict protobuf JSON parsing: unknown fields, bad enums and durations raise."""
    return AlertPolicy.from_json(json.dumps(document), ignore_unknown_fields=False)


def policy_document(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def policy_mismatches(policy: AlertPolicy) -> list[str]:
    """How ``policy`` differs from the Prometheus rule it mirrors (empty if it does not)."""
    (condition,) = policy.conditions
    promql = condition.condition_prometheus_query_language
    rule = rule_groups().get(promql.rule_group, {}).get(promql.alert_rule)
    if rule is None:
        return [f"no rule {promql.rule_group}/{promql.alert_rule} in {ALERTS.name}"]
    errors = []
    if not same_promql(promql.query, rule["expr"]):
        errors.append(f"query {promql.query!r} is not the rule's {rule['expr']!r}")
    wanted = promql_parser.parse_duration(rule.get("for", "0s"))
    if promql.duration != wanted:
        errors.append(f"duration {promql.duration} is not the rule's for: {wanted}")
    if policy.severity.name != rule["labels"]["severity"].upper():
        errors.append(f"severity {policy.severity.name} is not {rule['labels']['severity']}")
    interval = group_interval(promql.rule_group)
    if interval is not None and promql.evaluation_interval != interval:
        errors.append(f"evaluation interval {promql.evaluation_interval} is not the group's")
    if dict(promql.labels) != rule["labels"]:
        errors.append(f"labels {dict(promql.labels)} are not {rule['labels']}")
    return errors


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.name)
def test_policy_is_a_valid_promql_alert_policy(path: Path) -> None:
    policy = load_policy(policy_document(path))
    assert len(policy.conditions) == 1, "a PromQL policy has exactly one condition"
    (condition,) = policy.conditions
    assert "condition_prometheus_query_language" in condition, "not a PromQL condition"
    promql = condition.condition_prometheus_query_language
    assert policy.display_name == f"{promql.rule_group}/{promql.alert_rule}"  # the convention
    assert policy.severity != AlertPolicy.Severity.SEVERITY_UNSPECIFIED
    assert policy.documentation.content.strip() and policy.documentation.subject
    assert policy.documentation.mime_type == "text/markdown"
    assert promql.duration >= timedelta(0)
    seconds = promql.evaluation_interval.total_seconds()
    assert seconds > 0 and seconds % 30 == 0, "a positive multiple of 30 s (AlertPolicy docs)"
    assert query_errors(promql.query) == []


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.name)
def test_policy_mirrors_its_prometheus_rule(path: Path) -> None:
    assert policy_mismatches(load_policy(policy_document(path))) == []


def test_required_alerts_have_one_policy_each() -> None:
    rules = [load_policy(policy_document(p)).conditions[0] for p in POLICIES]
    names = [c.condition_prometheus_query_language.alert_rule for c in rules]
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED_POLICIES


def test_a_misspelled_policy_field_fails_to_parse() -> None:
    document = policy_document(MONITORING / "alert-policies" / "error-rate.yaml")

    def broken(change: Any) -> dict[str, Any]:
        copied = copy.deepcopy(document)
        change(copied, copied["conditions"][0]["conditionPrometheusQueryLanguage"])
        return copied

    cases = {
        "durations": lambda _, c: c.update(durations=c.pop("duration")),
        "SEVERE": lambda d, _: d.update(severity="SEVERE"),
        'end with letter "s"': lambda _, c: c.update(duration="5m"),
    }
    for message, change in cases.items():
        with pytest.raises(json_format.ParseError, match=re.escape(message)):
            load_policy(broken(change))


def test_a_policy_drifting_from_its_rule_is_caught() -> None:
    document = policy_document(MONITORING / "alert-policies" / "latency-p99.yaml")
    condition = document["conditions"][0]["conditionPrometheusQueryLanguage"]
    condition["query"] = condition["query"].replace("0.05", "0.1")
    condition["duration"] = "900s"
    document["severity"] = "CRITICAL"
    errors = policy_mismatches(load_policy(document))
    assert [e.split()[0] for e in errors] == ["query", "duration", "severity"]


# --- the Grafana dashboard ------------------------------------------------------------------


@cache
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def lost_in_round_trip(original: Any, parsed: Any, path: str = "$") -> list[str]:
    """Paths of ``original`` that the schema model dropped or changed."""
    if isinstance(original, dict):
        if not isinstance(parsed, dict):
            return [path]
        return [
            error
            for key, value in original.items()
            for error in (
                lost_in_round_trip(value, parsed[key], f"{path}.{key}")
                if key in parsed
                else [f"{path}.{key}"]
            )
        ]
    if isinstance(original, list):
        if not isinstance(parsed, list) or len(parsed) != len(original):
            return [path]
        return [
            error
            for i, (a, b) in enumerate(zip(original, parsed, strict=True))
            for error in lost_in_round_trip(a, b, f"{path}[{i}]")
        ]
    return [] if original == parsed else [f"{path}: {original!r} became {parsed!r}"]


def schema_errors(document: dict[str, Any]) -> list[str]:
    register_default_plugins()
    parsed = json.loads(json.dumps(Dashboard.from_json(document), cls=JSONEncoder))
    return lost_in_round_trip(document, parsed)


def panels(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in document["panels"]:
        yield panel
        yield from panel.get("panels", [])


def variables(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in document["templating"]["list"]}


def expand(query: str, document: dict[str, Any]) -> str:
    """``query`` with the dashboard's and Grafana's variables replaced; unknown ones raise."""
    declared = variables(document)

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in GRAFANA_BUILTINS:
            return GRAFANA_BUILTINS[name]
        if name in declared and declared[name]["type"] != "datasource":
            return declared[name].get("allValue", ".*")
        raise KeyError(f"undefined variable ${name}")

    return VARIABLE.sub(value, query)


def label_values(variable: dict[str, Any]) -> tuple[str, str]:
    """(metric selector, label) of a Prometheus ``label_values(selector, label)`` variable."""
    query = variable["query"]
    text = query["query"] if isinstance(query, dict) else query
    match = LABEL_VALUES.match(text)
    assert match and match["selector"], f"${variable['name']}: {text!r} is not label_values(m, l)"
    return match["selector"], match["label"]


def dashboard_queries(document: dict[str, Any]) -> dict[str, str]:
    """Where -> PromQL of every target and query variable, variables expanded."""
    queries = {}
    for panel in panels(document):
        for target in panel.get("targets", []):
            queries[f"{panel['title']}/{target['refId']}"] = expand(target["expr"], document)
    for name, variable in variables(document).items():
        if variable["type"] == "query":
            queries[f"${name}"] = expand(label_values(variable)[0], document)
    return queries


def test_dashboard_round_trips_through_the_grafana_schema() -> None:
    assert schema_errors(dashboard()) == []


def test_dashboard_schema_check_reports_unknown_keys() -> None:
    broken = copy.deepcopy(dashboard())
    panel = next(p for p in broken["panels"] if p["type"] == "timeseries")
    panel["fieldConfg"] = panel.pop("fieldConfig")
    panel["targets"][0]["exp"] = panel["targets"][0].pop("expr")
    broken["refesh"] = broken.pop("refresh")
    errors = schema_errors(broken)
    assert sorted(error.rsplit(".", 1)[-1] for error in errors) == ["exp", "fieldConfg", "refesh"]


def test_dashboard_structure() -> None:
    document = dashboard()
    assert document["uid"] and document["title"]
    assert document["schemaVersion"] == Dashboard().schema_version  # the SDK's Grafana schema
    datasource = variables(document)["datasource"]
    assert (datasource["type"], datasource["query"]) == ("datasource", "prometheus")
    ids = [panel["id"] for panel in panels(document)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(document):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == PROMETHEUS_DS, panel["title"]
        targets = panel["targets"]
        assert targets, f"{panel['title']}: no target"
        refs = [t["refId"] for t in targets]
        assert len(refs) == len(set(refs)), panel["title"]
        assert all(t["datasource"] == PROMETHEUS_DS and t["expr"].strip() for t in targets)


def test_dashboard_shows_every_service_metric() -> None:
    used = {
        selector_name(s)
        for query in dashboard_queries(dashboard()).values()
        for s in selectors(promql_parser.parse(query))
    }
    shown = {family_of()[name] for name in used if name in family_of()}
    missing = {family for family, _, _ in registry_samples()} - shown
    assert not missing, f"no panel for {sorted(missing)}"


def test_query_variables_read_labels_the_series_have() -> None:
    document = dashboard()
    for variable in variables(document).values():
        if variable["type"] == "query":
            metric, label = label_values(variable)
            (selector,) = selectors(promql_parser.parse(expand(metric, document)))
            assert label in exported_series()[selector_name(selector)] | TARGET_LABELS


def test_dashboard_thresholds_are_the_alert_thresholds() -> None:
    rules = {name: rule for group in rule_groups().values() for name, rule in group.items()}
    checked = 0
    for panel in panels(dashboard()):
        named = [name for name in rules if name in panel.get("description", "")]
        steps = panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {})
        limits = [s["value"] for s in steps.get("steps", []) if s["value"] is not None]
        if named and limits:
            (name,) = named
            assert limits == [threshold(rules[name]["expr"])], panel["title"]
            checked += 1
    assert checked >= 3  # error ratio, latency, drift


# --- PromQL of every file ---------------------------------------------------------------------


def all_queries() -> dict[str, str]:
    queries = {f"dashboard:{k}": v for k, v in dashboard_queries(dashboard()).items()}
    for path in POLICIES:
        for condition in policy_document(path)["conditions"]:
            queries[f"policy:{path.stem}"] = condition["conditionPrometheusQueryLanguage"]["query"]
    for group, rules in rule_groups().items():
        for name, rule in rules.items():
            queries[f"rule:{group}/{name}"] = rule["expr"]
    return queries


QUERIES = all_queries()


@pytest.mark.parametrize("where", sorted(QUERIES))
def test_query_parses_and_selects_exported_series(where: str) -> None:
    assert query_errors(QUERIES[where]) == []


def test_query_check_rejects_bad_promql_and_unknown_metrics() -> None:
    assert query_errors("sum(rate(tweetcls_http_requests_total[5m])")[0].startswith("does not")
    (unknown,) = query_errors("rate(tweetcls_http_request_total[5m])")
    assert unknown.startswith("tweetcls_http_request_total: not a series")
    (label,) = query_errors('rate(tweetcls_http_requests_total{stauts="500"}[5m])')
    assert "stauts" in label
    assert query_errors("tweetcls_http_request_duration_seconds") != []  # a histogram family
    with pytest.raises(KeyError, match="instnce"):
        expand('tweetcls_model_info{instance=~"$instnce"}', dashboard())
