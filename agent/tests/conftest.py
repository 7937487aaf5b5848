"""Fixtures for the agent's tests: a private data directory and ScriptServices on it.

The suite runs with `--import-mode=importlib`, so helpers are handed out as fixtures.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from cephalo_agent.config import AgentPaths
from cephalo_agent.scripts import ScriptService, ScriptSettings
from cephalo_common.agent_protocol import (
    ProcessOutput,
    ProcessState,
    ScriptStatusResponse,
    ScriptSyntax,
    ScriptTicketRequest,
    StartScriptCommand,
)

QUICK = ScriptSettings(kill_grace_seconds=1.0, drain_seconds=0.5, orphan_poll_seconds=0.05)

Follow = Callable[..., Awaitable[tuple[ScriptStatusResponse, list[ProcessOutput]]]]


@pytest.fixture
def paths(tmp_path: Path) -> AgentPaths:
    paths = AgentPaths(tmp_path / "agent-home")
    paths.ensure()
    return paths


@pytest.fixture
async def make_service(paths: AgentPaths) -> AsyncIterator[Callable[..., ScriptService]]:
    """A ScriptService on the same data directory each call: a new one is an agent restart.

    Scripts still running at the end of the test are cancelled, so none outlive it.
    """
    made: list[ScriptService] = []

    def make(settings: ScriptSettings = QUICK) -> ScriptService:
        made.append(ScriptService.for_paths(paths, settings))
        return made[-1]

    yield make
    for service in made:
        for ticket in service.active_tickets():
            await service.cancel_script(ScriptTicketRequest(ticket=ticket))
        await service.aclose()


@pytest.fixture
def scripts(make_service: Callable[..., ScriptService]) -> ScriptService:
    return make_service()


@pytest.fixture
def bash() -> Callable[..., StartScriptCommand]:
    """`bash(ticket, body, variables=..., ...)` → a bash StartScriptCommand."""

    def make(ticket: str, body: str, **kwargs: Any) -> StartScriptCommand:
        return StartScriptCommand.model_validate(
            {"ticket": ticket, "script_body": body, "syntax": ScriptSyntax.BASH, **kwargs}
        )

    return make


@pytest.fixture
def follow() -> Follow:
    """`await follow(service, ticket)`: poll with the cursor until Complete; (status, lines)."""
    return _follow


@pytest.fixture
def wait_for_line() -> Callable[[ScriptService, str, str], Awaitable[None]]:
    return _wait_for_line


async def _follow(
    service: ScriptService, ticket: str, *, timeout: float = 4.0
) -> tuple[ScriptStatusResponse, list[ProcessOutput]]:
    """Poll get_status with the cursor until Complete; return the last status and every line."""
    lines: list[ProcessOutput] = []
    cursor = 0
    async with asyncio.timeout(timeout):
        while True:
            status = await service.get_status(
                ScriptTicketRequest(ticket=ticket, last_log_sequence=cursor)
            )
            lines.extend(status.logs)
            cursor = status.next_log_sequence
            if status.state is ProcessState.COMPLETE:
                return status, lines
            await asyncio.sleep(0.02)


async def _wait_for_line(service: ScriptService, ticket: str, text: str) -> None:
    async with asyncio.timeout(4.0):
        while True:
            status = await service.get_status(ScriptTicketRequest(ticket=ticket))
            if any(line.text == text for line in status.logs):
                return
            await asyncio.sleep(0.02)
