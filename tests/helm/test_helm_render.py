"""The chart renders with Helm itself, and every manifest is valid Kubernetes (strict schemas)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import helm_python
import kubernetes_validate
import pytest
from helm_chart import CHART, KUBERNETES_VERSION, load_values, render

SERVICES = {
    "api-gateway",
    "release-service",
    "deploy-orchestrator",
    "package-feed",
    "agent-gateway",
}


def test_every_rendered_manifest_is_valid_for_a_current_kubernetes(
    manifests: list[dict[str, Any]],
) -> None:
    for document in manifests:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_each_service_has_a_deployment_a_service_and_a_disruption_budget(
    manifests: list[dict[str, Any]],
) -> None:
    kinds = Counter(
        (d["kind"], d["metadata"]["labels"].get("app.kubernetes.io/component"))
        for d in manifests
        if d["kind"] in {"Deployment", "Service", "PodDisruptionBudget"}
    )
    for service in SERVICES:
        for kind in ("Deployment", "Service", "PodDisruptionBudget"):
            assert kinds[(kind, service)] >= 1, (kind, service)


def test_agents_reach_agent_gateway_through_a_tcp_passthrough_service() -> None:
    manifests = render(None)
    polling = next(
        d
        for d in manifests
        if d["kind"] == "Service" and d["metadata"]["name"] == "cephalo-agent-polling"
    )
    assert polling["spec"]["type"] == "LoadBalancer"
    assert polling["spec"]["ports"] == [
        {"name": "polling", "port": 10943, "targetPort": "polling", "protocol": "TCP"}
    ]
    ingress = next(d for d in manifests if d["kind"] == "Ingress")
    backends = {
        path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {"cephalo-api-gateway"}
    assert "nginx.ingress.kubernetes.io/proxy-body-size" in ingress["metadata"]["annotations"]


def test_production_values_use_existing_secrets_s3_and_autoscaling() -> None:
    manifests = render(load_values("values-production.yaml"))
    kinds = Counter(d["kind"] for d in manifests)
    assert kinds["HorizontalPodAutoscaler"] == 5
    assert kinds["PersistentVolumeClaim"] == 0
    assert kinds["StatefulSet"] == 0
    secrets = {d["metadata"]["name"] for d in manifests if d["kind"] == "Secret"}
    assert secrets == set(), secrets
    deployments = [d for d in manifests if d["kind"] == "Deployment"]
    assert all("replicas" not in d["spec"] for d in deployments)


def test_the_trial_values_bundle_postgresql_and_nats() -> None:
    manifests = render({"postgresql": {"bundled": True}, "natsServer": {"bundled": True}})
    statefulsets = {d["metadata"]["name"] for d in manifests if d["kind"] == "StatefulSet"}
    assert statefulsets == {"cephalo-postgresql", "cephalo-nats"}
    nats_config = next(
        d for d in manifests if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "cephalo-nats"
    )
    assert "sync_interval" in str(nats_config)


@pytest.mark.parametrize(
    "values",
    [
        {"apiGateway": {"replicaCount": "two"}},
        {"agentGateway": {"pollingPort": 70000}},
        {"packages": {"storageBackend": "ftp"}},
        {"ingress": {"enabled": "yes"}},
        {"replicaCount": 3},
        {"masterKey": {"value": "not-base64-of-32-bytes"}},
    ],
)
def test_the_values_schema_rejects_a_wrong_value(values: dict[str, Any]) -> None:
    chart = helm_python.Chart.load(CHART)
    with pytest.raises(helm_python.HelmValuesError):
        chart.validate_schema(values)
    with pytest.raises(helm_python.HelmError):
        chart.render(values, name="cephalo", namespace="cephalo", is_install=True)


def test_helm_lint_finds_nothing_wrong() -> None:
    report = helm_python.lint(CHART, strict=True, kube_version=f"v{KUBERNETES_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == [] and report["errors"] == [], report
