"""Every CEPHALO_* variable the chart sets is a setting its service reads: services ignore
unknown variables, so a misspelt name would silently fall back to a development default."""

from __future__ import annotations

from typing import Any

from helm_chart import pod_specs
from pydantic import BaseModel

from cephalo_agent_gateway.settings import AgentGatewaySettings
from cephalo_common.settings import ServiceSettings
from cephalo_feed.settings import FeedSettings
from cephalo_gateway.settings import GatewaySettings
from cephalo_orchestrator.settings import OrchestratorSettings
from cephalo_release.settings import ReleaseSettings

SETTINGS: dict[str, type[ServiceSettings]] = {
    "CEPHALO_AGENT_GATEWAY_": AgentGatewaySettings,
    "CEPHALO_GATEWAY_": GatewaySettings,
    "CEPHALO_RELEASE_": ReleaseSettings,
    "CEPHALO_ORCHESTRATOR_": OrchestratorSettings,
    "CEPHALO_FEED_": FeedSettings,
}


def is_setting(model: type[BaseModel], path: list[str]) -> bool:
    field = model.model_fields.get(path[0])
    if field is None:
        return False
    if len(path) == 1:
        return True
    nested = field.annotation
    return (
        isinstance(nested, type) and issubclass(nested, BaseModel) and is_setting(nested, path[1:])
    )


def test_every_variable_the_chart_sets_is_a_setting(manifests: list[dict[str, Any]]) -> None:
    checked = 0
    for name, spec in pod_specs(manifests):
        for container in spec["containers"]:
            for variable in container.get("env", []):
                prefix = next((p for p in SETTINGS if variable["name"].startswith(p)), None)
                if prefix is None:
                    continue
                path = variable["name"].removeprefix(prefix).lower().split("__")
                assert is_setting(SETTINGS[prefix], path), (name, variable["name"])
                checked += 1
    assert checked > 40
