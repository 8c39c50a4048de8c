"""The Kubernetes manifests in cloud/k8s validate against the API schemas (offline)."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from helpers.paths import ROOT

K8S_VERSION = "1.37.0"  # the newest schema kubernetes-validate bundles
MANIFESTS = sorted((ROOT / "cloud" / "k8s").glob("*.yaml"))


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_validates(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_a_misspelled_field_fails_validation() -> None:
    doc = yaml.safe_load((ROOT / "cloud" / "k8s" / "deployment.yaml").read_text())
    doc["spec"]["replica"] = doc["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_deployment_probes_the_service_endpoints() -> None:
    doc = yaml.safe_load((ROOT / "cloud" / "k8s" / "deployment.yaml").read_text())
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
