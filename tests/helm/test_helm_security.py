"""The security posture of every rendered workload, for each values set."""

from __future__ import annotations

import re
from typing import Any

from helm_chart import pod_specs, render

SECRET_ENV = re.compile(r"(URL|SECRET|KEY|PASSWORD|TOKEN)$")


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def test_every_container_runs_unprivileged_on_a_read_only_root(
    manifests: list[dict[str, Any]],
) -> None:
    for name, spec in pod_specs(manifests):
        pod = spec.get("securityContext", {})
        assert spec["automountServiceAccountToken"] is False, name
        for container in containers(spec):
            context = {**pod, **container["securityContext"]}
            where = f"{name}/{container['name']}"
            assert context["runAsNonRoot"] is True, where
            assert context.get("runAsUser", 0) != 0, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context.get("privileged", False) is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in context["capabilities"], where


def test_every_container_has_resource_requests_and_limits(
    manifests: list[dict[str, Any]],
) -> None:
    for name, spec in pod_specs(manifests):
        for container in containers(spec):
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[bound]), (name, container["name"])


def test_only_secrets_hold_secrets(manifests: list[dict[str, Any]]) -> None:
    for document in manifests:
        if document["kind"] == "ConfigMap":
            for key, value in document.get("data", {}).items():
                assert not SECRET_ENV.search(key.upper()), key
                assert "://" not in value or "@" not in value, key
    for name, spec in pod_specs(manifests):
        for container in containers(spec):
            for variable in container.get("env", []):
                sensitive = SECRET_ENV.search(variable["name"]) and not variable["name"].endswith(
                    ("_SERVICE_URL", "ORCHESTRATOR_URL", "FEED_URL", "GATEWAY_URL", "BASE_URL")
                )
                if sensitive and "value" in variable:
                    assert variable["name"].endswith("_FILE") or variable["name"] in {
                        "CEPHALO_GATEWAY_SESSION_COOKIE_SECURE"
                    }, (name, variable)
                if sensitive and "valueFrom" in variable:
                    assert "secretKeyRef" in variable["valueFrom"], (name, variable)


def test_each_service_migrates_in_a_hook_job_before_an_upgrade(
    manifests: list[dict[str, Any]],
) -> None:
    jobs = [d for d in manifests if d["kind"] == "Job"]
    assert len(jobs) == 5
    for job in jobs:
        annotations = job["metadata"]["annotations"]
        assert set(annotations["helm.sh/hook"].split(",")) == {"post-install", "pre-upgrade"}
        assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
        assert job["spec"]["template"]["spec"]["containers"][0]["args"][-1] == "migrate"
    deployments = [d for d in manifests if d["kind"] == "Deployment"]
    for deployment in deployments:
        assert deployment["spec"]["template"]["spec"]["containers"][0]["args"][-1] == "api"


def test_only_the_gateway_and_the_polling_port_are_reachable_from_outside() -> None:
    policies = {d["metadata"]["name"]: d for d in render(None) if d["kind"] == "NetworkPolicy"}
    deny = policies["cephalo-default-deny"]
    assert deny["spec"]["policyTypes"] == ["Ingress"] and "ingress" not in deny["spec"]
    outside = policies["cephalo-api-gateway-from-ingress"]
    assert outside["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == (
        "api-gateway"
    )
    metrics = policies["cephalo-metrics"]["spec"]["ingress"]
    assert metrics[0]["ports"] == [{"port": "http", "protocol": "TCP"}]
    polling = policies["cephalo-agent-polling"]
    assert polling["spec"]["ingress"] == [{"ports": [{"port": "polling", "protocol": "TCP"}]}]


def test_generated_keys_are_kept_when_the_release_is_deleted() -> None:
    secrets = {d["metadata"]["name"]: d for d in render(None) if d["kind"] == "Secret"}
    for name in ("cephalo-master-key", "cephalo-agent-gateway-identity"):
        assert secrets[name]["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
