"""After an agent restart the journal answers for every ticket; nothing is silently re-run."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable

from cephalo_agent.journal import TicketJournal
from cephalo_agent.processes import process_identity
from cephalo_agent.scripts import (
    ADOPTED_MESSAGE,
    EXIT_AGENT_RESTARTED,
    EXIT_CANCELLED,
    RESTARTED_MESSAGE,
    ScriptService,
)
from cephalo_common.agent_protocol import (
    LogSource,
    ProcessState,
    ScriptSyntax,
    ScriptTicketRequest,
    StartScriptCommand,
)


def _journal_left_running(service: ScriptService, ticket: str, pid: int | None) -> TicketJournal:
    """What a killed agent leaves behind: a Running entry and some output."""
    command = StartScriptCommand(ticket=ticket, script_body="echo hi", syntax=ScriptSyntax.BASH)
    journal = TicketJournal.create(service.tickets_dir, ticket, command.model_dump(mode="json"))
    journal.append(LogSource.STDOUT, "hi")
    journal.state.state = ProcessState.RUNNING
    journal.state.pid = pid
    journal.state.process_identity = process_identity(pid) if pid else None
    journal.save_state()
    journal.close()
    return journal


async def test_running_entry_whose_process_is_gone_is_completed_with_minus_two(
    make_service: Callable[..., ScriptService],
) -> None:
    finished = subprocess.Popen(["true"])
    finished.wait()
    _journal_left_running(make_service(), "restart-1", finished.pid)

    restarted = make_service()
    recovered = await restarted.recover()
    status = await restarted.get_status(ScriptTicketRequest(ticket="restart-1"))
    again = await restarted.start_script(
        StartScriptCommand(ticket="restart-1", script_body="echo should-not-run")
    )

    assert recovered == ["restart-1"]
    assert status.state is ProcessState.COMPLETE
    assert status.exit_code == EXIT_AGENT_RESTARTED
    assert [line.text for line in status.logs] == ["hi", RESTARTED_MESSAGE]
    assert [line.sequence for line in status.logs] == [1, 2]
    assert again.exit_code == EXIT_AGENT_RESTARTED
    assert all(line.text != "should-not-run" for line in again.logs)


async def test_entry_that_never_recorded_a_process_is_completed_with_minus_two(
    make_service: Callable[..., ScriptService],
) -> None:
    _journal_left_running(make_service(), "restart-2", None)

    status = await make_service().get_status(ScriptTicketRequest(ticket="restart-2"))

    assert (status.state, status.exit_code) == (ProcessState.COMPLETE, EXIT_AGENT_RESTARTED)


async def test_torn_last_log_line_is_dropped_and_sequences_continue(
    make_service: Callable[..., ScriptService],
) -> None:
    journal = _journal_left_running(make_service(), "restart-3", None)
    with open(journal.output_path, "ab") as handle:
        handle.write(b'{"sequence": 2, "source": "stdo')  # the agent died mid-write

    status = await make_service().get_status(ScriptTicketRequest(ticket="restart-3"))

    assert [(line.sequence, line.text) for line in status.logs] == [
        (1, "hi"),
        (2, RESTARTED_MESSAGE),
    ]


async def test_script_that_outlived_the_agent_is_adopted_not_rerun_and_can_be_cancelled(
    make_service: Callable[..., ScriptService],
) -> None:
    survivor = subprocess.Popen(["sleep", "30"], start_new_session=True)
    reaper = asyncio.create_task(asyncio.to_thread(survivor.wait))  # stands in for init
    try:
        _journal_left_running(make_service(), "restart-4", survivor.pid)
        restarted = make_service()

        running = await restarted.get_status(ScriptTicketRequest(ticket="restart-4"))
        cancelled = await restarted.cancel_script(ScriptTicketRequest(ticket="restart-4"))

        assert running.state is ProcessState.RUNNING
        assert running.logs[-1].text == ADOPTED_MESSAGE
        assert cancelled.state is ProcessState.COMPLETE
        assert cancelled.exit_code == EXIT_CANCELLED
        assert await asyncio.wait_for(reaper, 2) == -15
    finally:
        survivor.kill()
        await reaper
