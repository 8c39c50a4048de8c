"""The service manifests in cloud/ validate against their API schemas (offline).

- ``cloud/k8s/*.yaml``: kubernetes-validate's bundled OpenAPI schemas, strict.
- ``cloud/cloudrun-service.yaml`` (a Knative ``serving.knative.dev/v1`` Service, the format of
  the Cloud Run Admin API v1): the whole document against the Cloud Run v1 API's own schema
  (the discovery document google-api-python-client bundles), strict; its revision template
  as a Kubernetes Pod (kubernetes-validate, strict); its annotations against the list of
  annotations Cloud Run accepts per resource type; and the Cloud Run limits on probes,
  concurrency and scaling.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from googleapiclient.discovery_cache import get_static_doc
from helpers.paths import ROOT

K8S_VERSION = "1.37.0"  # the newest schema kubernetes-validate bundles
MANIFESTS = sorted((ROOT / "cloud" / "k8s").glob("*.yaml"))
CLOUD_RUN = ROOT / "cloud" / "cloudrun-service.yaml"
#: Keys of a Knative RevisionSpec that a Kubernetes PodSpec does not have.
KNATIVE_ONLY = frozenset({"containerConcurrency", "timeoutSeconds"})
#: Annotation prefixes Cloud Run restricts to a documented list (ObjectMeta.annotations).
RESTRICTED = ("run.googleapis.com/", "autoscaling.knative.dev/")
STARTUP_PROBE_MAX_S = 240  # Cloud Run: failureThreshold * periodSeconds of a startup probe


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_validates(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_a_misspelled_field_fails_validation() -> None:
    doc = load(ROOT / "cloud" / "k8s" / "deployment.yaml")
    doc["spec"]["replica"] = doc["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_deployment_probes_the_service_endpoints() -> None:
    doc = load(ROOT / "cloud" / "k8s" / "deployment.yaml")
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"


# --- Cloud Run -------------------------------------------------------------------------------


@cache
def run_v1_discovery() -> dict[str, Any]:
    """The Cloud Run Admin API v1 discovery document (bundled, no network)."""
    document = get_static_doc("run", "v1")
    assert document is not None, "google-api-python-client bundles no run v1 document"
    return json.loads(document)


def _json_schema(node: dict[str, Any]) -> dict[str, Any]:
    """A discovery-format schema as JSON Schema; objects with properties are closed."""
    if "$ref" in node:
        return {"$ref": f"#/definitions/{node['$ref']}"}
    out: dict[str, Any] = {}
    if node.get("type", "any") != "any":  # discovery's "any" is JSON Schema's no constraint
        out["type"] = node["type"]
    if "enum" in node:
        out["enum"] = node["enum"]
    if node.get("type") == "array":
        out["items"] = _json_schema(node["items"])
    if "properties" in node:
        out["properties"] = {k: _json_schema(v) for k, v in node["properties"].items()}
        out["additionalProperties"] = False
    elif isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _json_schema(node["additionalProperties"])
    return out


@cache
def cloud_run_validator() -> jsonschema.Draft7Validator:
    """A strict validator of a Cloud Run v1 ``Service`` built from the discovery schemas."""
    schemas = run_v1_discovery()["schemas"]
    root = {
        **_json_schema(schemas["Service"]),
        "definitions": {name: _json_schema(schema) for name, schema in schemas.items()},
    }
    jsonschema.Draft7Validator.check_schema(root)
    return jsonschema.Draft7Validator(root)


def cloud_run_errors(doc: dict[str, Any]) -> list[str]:
    return [
        f"{'.'.join(map(str, error.absolute_path))}: {error.message}"
        for error in cloud_run_validator().iter_errors(doc)
    ]


@cache
def accepted_annotations() -> dict[str, set[str]]:
    """Restricted annotation -> resource types accepting it, from the API's own description."""
    text = run_v1_discovery()["schemas"]["ObjectMeta"]["properties"]["annotations"]["description"]
    found = {
        name: {kind.strip() for kind in kinds.split(",") if kind.strip()}
        for name, kinds in re.findall(r"\* `([^`]+)`: ([^.*]+)\.", text)
    }
    assert "autoscaling.knative.dev/maxScale" in found, "annotation list not found"
    return found


def annotation_errors(annotations: dict[str, str], resource: str) -> list[str]:
    accepted = accepted_annotations()
    return [
        f"{name} is not accepted on a {resource}"
        for name in annotations
        if name.startswith(RESTRICTED)
        and not accepted.get(name, set()) & {resource, "All resources"}
    ]


def synthetic_pod(service: dict[str, Any]) -> dict[str, Any]:
    """The Cloud Run revision template as a Kubernetes Pod (Knative-only keys removed)."""
    template = service["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": service["metadata"]["name"], **template.get("metadata", {})},
        "spec": {k: v for k, v in template["spec"].items() if k not in KNATIVE_ONLY},
    }


@pytest.fixture()
def cloud_run() -> dict[str, Any]:
    return load(CLOUD_RUN)


def test_cloud_run_service_validates_against_the_cloud_run_api_schema(cloud_run) -> None:
    assert (cloud_run["apiVersion"], cloud_run["kind"]) == ("serving.knative.dev/v1", "Service")
    assert cloud_run_errors(cloud_run) == []


def test_cloud_run_schema_rejects_a_misspelled_field(cloud_run) -> None:
    broken = copy.deepcopy(cloud_run)
    spec = broken["spec"]["template"]["spec"]
    spec["containerConcurency"] = spec.pop("containerConcurrency")
    (error,) = cloud_run_errors(broken)
    assert "containerConcurency" in error
    broken = copy.deepcopy(cloud_run)
    broken["spec"]["template"]["spec"]["containers"][0]["startupProbe"]["periodSeconds"] = "5"
    assert cloud_run_errors(broken)


def test_cloud_run_template_is_a_valid_kubernetes_pod(cloud_run) -> None:
    kubernetes_validate.validate(synthetic_pod(cloud_run), K8S_VERSION, strict=True)
    broken = copy.deepcopy(cloud_run)
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(synthetic_pod(broken), K8S_VERSION, strict=True)


def test_cloud_run_annotations_are_accepted_where_they_are_set(cloud_run) -> None:
    template = cloud_run["spec"]["template"]
    assert annotation_errors(cloud_run["metadata"].get("annotations", {}), "Service") == []
    assert annotation_errors(template["metadata"]["annotations"], "Revision") == []
    # minScale/maxScale of autoscaling.knative.dev belong on the revision template only
    misplaced = annotation_errors(template["metadata"]["annotations"], "Service")
    assert any("autoscaling.knative.dev/minScale" in error for error in misplaced)


def test_cloud_run_scaling_and_concurrency(cloud_run) -> None:
    template = cloud_run["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    low = int(annotations["autoscaling.knative.dev/minScale"])
    high = int(annotations["autoscaling.knative.dev/maxScale"])
    assert 1 <= low <= high  # one warm instance: the model takes seconds to load
    assert 1 <= template["spec"]["containerConcurrency"] <= 1000  # Cloud Run's range
    assert 1 <= template["spec"]["timeoutSeconds"] <= 3600
    # the micro-batcher and the request-log writer run between requests: CPU always allocated
    assert annotations["run.googleapis.com/cpu-throttling"] == "false"
    (container,) = template["spec"]["containers"]
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}


def test_cloud_run_probes_and_secrets(cloud_run) -> None:
    (container,) = cloud_run["spec"]["template"]["spec"]["containers"]
    (port,) = container["ports"]
    paths = {}
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container[kind]
        assert probe["httpGet"]["port"] == port["containerPort"], kind
        assert probe.get("timeoutSeconds", 1) <= probe.get("periodSeconds", 10), kind
        paths[kind] = probe["httpGet"]["path"]
    assert paths == {
        "startupProbe": "/ready",
        "readinessProbe": "/ready",
        "livenessProbe": "/health",
    }
    startup = container["startupProbe"]
    assert startup["failureThreshold"] * startup["periodSeconds"] <= STARTUP_PROBE_MAX_S
    assert container["readinessProbe"].get("successThreshold", 1) == 1  # Cloud Run: must be 1
    secrets = {
        env["name"]: env["valueFrom"]["secretKeyRef"]
        for env in container["env"]
        if "valueFrom" in env
    }
    assert "TWEETCLS_DATABASE_URL" in secrets
    assert all(ref["key"] == "latest" or ref["key"].isdigit() for ref in secrets.values())


def test_cloud_run_and_kubernetes_run_the_same_container(cloud_run) -> None:
    (run,) = cloud_run["spec"]["template"]["spec"]["containers"]
    deployment = load(ROOT / "cloud" / "k8s" / "deployment.yaml")
    (k8s,) = deployment["spec"]["template"]["spec"]["containers"]
    assert run["image"] == k8s["image"]
    assert {e["name"] for e in run["env"]} == {e["name"] for e in k8s["env"]}
    assert run["ports"][0]["containerPort"] == k8s["ports"][0]["containerPort"]
    assert run["readinessProbe"]["httpGet"]["path"] == k8s["readinessProbe"]["httpGet"]["path"]
    assert run["livenessProbe"]["httpGet"]["path"] == k8s["livenessProbe"]["httpGet"]["path"]
    assert run["resources"]["limits"] == k8s["resources"]["limits"]
