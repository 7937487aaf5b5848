"""Render the Helm chart with the real Helm engine (helm-python-sdk: Helm's Go SDK in-process)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import helm_python
import yaml

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "cephalo"
KUBERNETES_VERSION = "1.37.0"
TRIAL_VALUES = {"postgresql": {"bundled": True}, "natsServer": {"bundled": True}}


def load_values(name: str) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / name).read_text())
    return values


def render(values: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every manifest `helm install` would apply (hooks included), as Python objects (a fresh
    copy each call; the rendering itself is done once per values set)."""
    manifests: list[dict[str, Any]] = json.loads(_rendered(json.dumps(values, sort_keys=True)))
    return manifests


@cache
def _rendered(values_json: str) -> str:
    values = json.loads(values_json)
    chart = helm_python.Chart.load(CHART)
    chart.validate_schema(values)
    rendered = chart.render(values, name="cephalo", namespace="cephalo", is_install=True)
    return json.dumps(
        [
            document
            for path, text in sorted(rendered.items())
            if path.endswith((".yaml", ".yml"))
            for document in yaml.safe_load_all(text)
            if document
        ]
    )


VARIANTS = {
    "default": lambda: None,
    "production": lambda: load_values("values-production.yaml"),
    "trial": lambda: TRIAL_VALUES,
}


def pod_specs(manifests: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every workload."""
    specs = []
    for document in manifests:
        template = document.get("spec", {}).get("template")
        if document["kind"] in {"Deployment", "StatefulSet", "Job"} and template:
            specs.append((f"{document['kind']}/{document['metadata']['name']}", template["spec"]))
    return specs
