"""Manifests: parsed, validated against the Kubernetes schemas, and located in the API.

Validation uses kubernetes-validate's bundled schemas (offline); kinds it has no schema for
(custom resources) are applied unvalidated with a note in the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import kubernetes_validate
import yaml

from cephalo_agent.steprunner.errors import StepFailed

KUBERNETES_VERSION = "1.34"
CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "IngressClass",
    }
)
PLURALS = {
    "Ingress": "ingresses",
    "IngressClass": "ingressclasses",
    "StorageClass": "storageclasses",
    "PriorityClass": "priorityclasses",
    "NetworkPolicy": "networkpolicies",
    "PodSecurityPolicy": "podsecuritypolicies",
    "Endpoints": "endpoints",
}
ROLLOUT_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job"})


@dataclass(frozen=True)
class Manifest:
    document: dict[str, Any]
    api_version: str
    kind: str
    name: str
    namespace: str | None

    @property
    def label(self) -> str:
        return f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"

    def collection_path(self) -> str:
        group_version = self.api_version
        base = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
        plural = PLURALS.get(self.kind, self.kind.lower() + "s")
        scope = f"/namespaces/{self.namespace}" if self.namespace else ""
        return f"{base}{scope}/{plural}"

    def path(self) -> str:
        return f"{self.collection_path()}/{self.name}"


def parse_manifests(text: str, default_namespace: str) -> list[Manifest]:
    """Every non-empty YAML document, validated; the first problem fails the step."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d]
    except yaml.YAMLError as error:
        raise StepFailed(f"The manifest is not valid YAML: {error}") from None
    if not documents:
        raise StepFailed("The manifest has no Kubernetes resources.")
    return [
        _manifest(index, document, default_namespace) for index, document in enumerate(documents, 1)
    ]


def _manifest(index: int, document: Any, default_namespace: str) -> Manifest:
    if not isinstance(document, dict):
        raise StepFailed(f"Document {index} of the manifest is not a mapping.")
    kind, api_version = document.get("kind"), document.get("apiVersion")
    metadata = document.get("metadata") or {}
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not (isinstance(kind, str) and isinstance(api_version, str) and isinstance(name, str)):
        raise StepFailed(f"Document {index} needs apiVersion, kind and metadata.name.")
    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        pass
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(part) for part in error.path) or "(root)"
        raise StepFailed(f"{kind} {name} is invalid at {where}: {error.message}") from None
    namespace = None
    if kind not in CLUSTER_SCOPED:
        namespace = metadata.get("namespace") or default_namespace
        document = {**document, "metadata": {**metadata, "namespace": namespace}}
    return Manifest(document, api_version, kind, name, namespace)


@dataclass(frozen=True)
class RolloutState:
    done: bool
    failed: bool
    progress: str


def rollout_state(kind: str, resource: dict[str, Any]) -> RolloutState:
    """Where a workload's rollout is, read as `kubectl rollout status` reads it."""
    spec = resource.get("spec") or {}
    status = resource.get("status") or {}
    conditions: dict[str, Any] = {
        str(c.get("type")): c for c in status.get("conditions") or [] if isinstance(c, dict)
    }
    generation = (resource.get("metadata") or {}).get("generation", 0)
    observed = status.get("observedGeneration", 0) >= generation
    if kind == "Job":
        return _job_state(conditions, status)
    if kind == "DaemonSet":
        desired = status.get("desiredNumberScheduled", 0)
        updated, ready = status.get("updatedNumberScheduled", 0), status.get("numberAvailable", 0)
        return RolloutState(
            observed and updated >= desired and ready >= desired,
            False,
            f"{ready} of {desired} pods available, {updated} updated",
        )
    replicas = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    ready = status.get("availableReplicas" if kind == "Deployment" else "readyReplicas", 0)
    progressing = conditions.get("Progressing") or {}
    failed = progressing.get("reason") == "ProgressDeadlineExceeded"
    done = (
        observed
        and updated >= replicas
        and ready >= replicas
        and status.get("replicas", 0) <= replicas
    )
    return RolloutState(
        done, failed, f"{ready} of {replicas} replicas available, {updated} updated"
    )


def _job_state(conditions: dict[str, Any], status: dict[str, Any]) -> RolloutState:
    progress = f"{status.get('succeeded', 0)} succeeded, {status.get('failed', 0)} failed"
    complete = (conditions.get("Complete") or {}).get("status") == "True"
    failed = (conditions.get("Failed") or {}).get("status") == "True"
    return RolloutState(complete, failed, progress)


def describe_conditions(resource: dict[str, Any]) -> list[str]:
    conditions = (resource.get("status") or {}).get("conditions") or []
    return [
        f"{c.get('type')}={c.get('status')} {c.get('reason', '')}: {c.get('message', '')}".strip()
        for c in conditions
        if isinstance(c, dict)
    ]
