"""`script-status-wait/v1`: `start_script` and `get_status` held open until there is news.

One call then does what a poll every half second did, so the gateway spends a fraction of
the round trips per script; without `wait_seconds` every call still answers at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from cephalo_agent.scripts import ScriptService
from cephalo_agent.service import AgentService
from cephalo_common.agent_protocol import (
    STATUS_WAIT_FEATURE,
    ProcessState,
    RequestMessage,
    ScriptIsolation,
    ScriptTicketRequest,
    StartScriptCommand,
)


def waiting(command: StartScriptCommand, seconds: float) -> StartScriptCommand:
    return command.model_copy(update={"wait_seconds": seconds})


async def test_a_waiting_start_answers_complete_with_every_line(
    scripts: ScriptService, bash: Callable[..., StartScriptCommand]
) -> None:
    status = await scripts.start_script(waiting(bash("wait-1", "echo one; echo two"), 10))

    assert status.state is ProcessState.COMPLETE
    assert status.exit_code == 0
    assert [line.text for line in status.logs] == ["one", "two"]


async def test_a_waiting_start_answers_running_once_its_wait_is_over(
    scripts: ScriptService, bash: Callable[..., StartScriptCommand]
) -> None:
    began = time.monotonic()
    status = await scripts.start_script(waiting(bash("wait-2", "echo begun; sleep 30"), 0.3))

    assert status.state is ProcessState.RUNNING
    assert 0.25 <= time.monotonic() - began < 5
    await scripts.cancel_script(ScriptTicketRequest(ticket="wait-2"))


async def test_a_retried_waiting_start_reports_the_first_run(
    scripts: ScriptService, bash: Callable[..., StartScriptCommand]
) -> None:
    command = waiting(bash("wait-3", "echo once"), 10)
    first = await scripts.start_script(command)
    second = await scripts.start_script(command)

    assert first.state is second.state is ProcessState.COMPLETE
    assert [line.text for line in second.logs] == ["once"]


async def test_a_waiting_status_answers_with_the_next_line_not_at_its_timeout(
    scripts: ScriptService, bash: Callable[..., StartScriptCommand]
) -> None:
    await scripts.start_script(bash("wait-4", "sleep 0.3; echo late; sleep 30"))
    began = time.monotonic()

    status = await scripts.get_status(
        ScriptTicketRequest(ticket="wait-4", last_log_sequence=0, wait_seconds=15)
    )

    assert [line.text for line in status.logs] == ["late"]
    assert time.monotonic() - began < 10
    await scripts.cancel_script(ScriptTicketRequest(ticket="wait-4"))


async def test_a_waiting_status_is_released_by_the_end_of_the_script(
    scripts: ScriptService, bash: Callable[..., StartScriptCommand]
) -> None:
    await scripts.start_script(bash("wait-5", "echo first; sleep 0.3"))
    await scripts.get_status(ScriptTicketRequest(ticket="wait-5", wait_seconds=15))

    status = await scripts.get_status(
        ScriptTicketRequest(ticket="wait-5", last_log_sequence=1, wait_seconds=15)
    )

    assert status.state is ProcessState.COMPLETE
    assert status.exit_code == 0


async def test_a_waiting_status_is_released_by_a_cancel(
    scripts: ScriptService, bash: Callable[..., StartScriptCommand]
) -> None:
    await scripts.start_script(bash("wait-6", "sleep 30"))
    waiter = asyncio.create_task(
        scripts.get_status(ScriptTicketRequest(ticket="wait-6", wait_seconds=15))
    )
    await asyncio.sleep(0.1)
    assert not waiter.done()

    await scripts.cancel_script(ScriptTicketRequest(ticket="wait-6"))
    async with asyncio.timeout(10):
        status = await waiter

    assert status.state is ProcessState.COMPLETE
    assert status.exit_code == -1


async def test_a_start_waiting_for_the_isolation_mutex_answers_after_its_wait(
    scripts: ScriptService, bash: Callable[..., StartScriptCommand]
) -> None:
    holder = bash("wait-7a", "sleep 30").model_copy(update={"isolation": ScriptIsolation.FULL})
    await scripts.start_script(holder)
    queued = bash("wait-7b", "echo done").model_copy(update={"isolation": ScriptIsolation.FULL})

    status = await scripts.start_script(waiting(queued, 0.3))

    assert status.state is not ProcessState.COMPLETE
    assert "Waiting for the script isolation mutex" in status.logs[0].text
    await scripts.cancel_script(ScriptTicketRequest(ticket="wait-7a"))


@pytest.mark.parametrize("seconds", [0, -1, 21])
async def test_a_wait_out_of_bounds_is_refused_as_invalid_params(
    scripts: ScriptService, seconds: float
) -> None:
    service = AgentService(scripts)
    request = RequestMessage(
        id="r1",
        service="ScriptService",
        method="get_status",
        params={"ticket": "nothing", "wait_seconds": seconds},
    )

    response = await service.handle(request)

    assert response.error is not None and response.error.type == "InvalidParams"


def test_the_agent_advertises_the_feature(scripts: ScriptService) -> None:
    capabilities = AgentService(scripts).capabilities.get_capabilities()

    assert STATUS_WAIT_FEATURE in capabilities.contract_versions
