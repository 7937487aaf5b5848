"""The RPC surface never raises across the wire: every failure is a RemoteError response."""

from __future__ import annotations

import json

import pytest

from cephalo_agent.scripts import ScriptService
from cephalo_agent.service import AgentService
from cephalo_common.agent_protocol import (
    CONTRACT_VERSION,
    ISOLATION_FEATURE,
    Capabilities,
    RequestMessage,
    ScriptStatusResponse,
)


@pytest.fixture
def agent(scripts: ScriptService) -> AgentService:
    return AgentService(scripts)


async def test_get_capabilities_reports_the_contract_version(agent: AgentService) -> None:
    response = await agent.handle(
        RequestMessage(id="caps", service="CapabilitiesService", method="get_capabilities")
    )

    assert response.error is None and response.id == "caps"
    capabilities = Capabilities.model_validate(response.result)
    assert capabilities.contract_versions[0] == CONTRACT_VERSION
    assert ISOLATION_FEATURE in capabilities.contract_versions
    assert {"bash", "sh", "python"} <= set(capabilities.shells)


@pytest.mark.parametrize(
    ("service", "method", "params", "error_type"),
    [
        ("ScriptService", "rm_rf", {}, "UnknownMethod"),
        ("FileTransferService", "upload", {}, "UnknownService"),
        ("ScriptService", "start_script", {"script_body": "echo"}, "InvalidParams"),
        ("ScriptService", "get_status", {"ticket": 42}, "InvalidParams"),
        ("ScriptService", "get_status", {"ticket": "never-started"}, "UnknownTicket"),
        ("ScriptService", "get_status", {"ticket": "../../etc"}, "InvalidTicket"),
        ("ScriptService", "complete_script", {"ticket": "nope"}, "UnknownTicket"),
        (
            "ScriptService",
            "start_script",
            {"ticket": "t-1", "script_body": "echo", "timeout_seconds": 0},
            "ValueError",
        ),
    ],
)
async def test_failures_come_back_as_remote_errors(
    agent: AgentService, service: str, method: str, params: dict, error_type: str
) -> None:
    response = await agent.handle(
        RequestMessage(id="req-1", service=service, method=method, params=params)
    )

    assert response.id == "req-1"
    assert response.result is None
    assert response.error is not None
    assert response.error.type == error_type, response.error.message
    assert response.error.message


async def test_invalid_params_error_does_not_echo_sensitive_values(agent: AgentService) -> None:
    params = {
        "ticket": "t-2",
        "script_body": "echo",
        "variables": {"Password": "hunter2-secret"},
        "sensitive_variables": ["Password"],
        "syntax": "powershell",
    }

    response = await agent.handle(
        RequestMessage(id="req-2", service="ScriptService", method="start_script", params=params)
    )

    assert response.error is not None and response.error.type == "InvalidParams"
    assert "syntax" in response.error.message
    assert "hunter2-secret" not in response.model_dump_json()


async def test_start_script_through_dispatch_returns_a_status(agent: AgentService) -> None:
    params = {"ticket": "t-3", "script_body": "echo hi"}

    response = await agent.handle(
        RequestMessage(id="req-3", service="ScriptService", method="start_script", params=params)
    )

    assert response.error is None
    assert ScriptStatusResponse.model_validate(response.result).ticket == "t-3"


async def test_frames_that_are_not_requests_are_answered_when_they_carry_an_id(
    agent: AgentService,
) -> None:
    answered = await agent.handle_text(json.dumps({"id": "req-4", "service": "ScriptService"}))
    dropped = await agent.handle_text(b"\xff not json")
    anonymous = await agent.handle_text(json.dumps({"method": "get_status"}))

    assert answered is not None and answered.id == "req-4"
    assert answered.error is not None and answered.error.type == "InvalidRequest"
    assert dropped is None
    assert anonymous is None
