"""A ticket's script runs once, however often and whenever `start_script` is repeated."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cephalo_agent.scripts import ScriptService
from cephalo_common.agent_protocol import ProcessState, ScriptTicketRequest, StartScriptCommand

APPEND_RUN = 'echo run >> "$CEPHALO_VAR_MARKER"; echo ran'


async def test_start_script_twice_with_the_same_ticket_runs_the_script_once(
    scripts: ScriptService,
    tmp_path: Path,
    bash: Callable[..., StartScriptCommand],
    follow: Callable[..., Any],
) -> None:
    marker = tmp_path / "runs.txt"
    command = bash("once-1", APPEND_RUN, variables={"Marker": str(marker)})

    first = await scripts.start_script(command)
    second = await scripts.start_script(command)
    final, lines = await follow(scripts, "once-1")
    third = await scripts.start_script(command)

    assert first.ticket == second.ticket == "once-1"
    assert final.exit_code == 0
    assert [line.text for line in lines] == ["ran"]
    assert third.state is ProcessState.COMPLETE and third.exit_code == 0
    assert marker.read_text().splitlines() == ["run"]


async def test_concurrent_starts_with_the_same_ticket_run_the_script_once(
    scripts: ScriptService,
    tmp_path: Path,
    bash: Callable[..., StartScriptCommand],
    follow: Callable[..., Any],
) -> None:
    marker = tmp_path / "runs.txt"
    command = bash("once-2", APPEND_RUN, variables={"Marker": str(marker)})

    statuses = await asyncio.gather(*(scripts.start_script(command) for _ in range(5)))
    await follow(scripts, "once-2")

    assert {status.ticket for status in statuses} == {"once-2"}
    assert marker.read_text().splitlines() == ["run"]


async def test_start_script_after_an_agent_restart_does_not_run_the_script_again(
    make_service: Callable[..., ScriptService],
    tmp_path: Path,
    bash: Callable[..., StartScriptCommand],
    follow: Callable[..., Any],
) -> None:
    marker = tmp_path / "runs.txt"
    command = bash("once-3", APPEND_RUN + "; exit 4", variables={"Marker": str(marker)})
    before = make_service()
    await before.start_script(command)
    await follow(before, "once-3")
    await before.aclose()

    after = make_service()  # a new agent process reading the same journal
    status = await after.start_script(command)

    assert status.state is ProcessState.COMPLETE
    assert status.exit_code == 4
    assert [line.text for line in status.logs] == ["ran"]
    assert marker.read_text().splitlines() == ["run"]


async def test_start_script_after_complete_script_does_not_run_the_script_again(
    make_service: Callable[..., ScriptService],
    tmp_path: Path,
    bash: Callable[..., StartScriptCommand],
    follow: Callable[..., Any],
) -> None:
    marker = tmp_path / "runs.txt"
    command = bash("once-4", APPEND_RUN, variables={"Marker": str(marker)})
    service = make_service()
    await service.start_script(command)
    await follow(service, "once-4")

    completed = await service.complete_script(ScriptTicketRequest(ticket="once-4"))
    again = await make_service().start_script(command)

    assert completed.state is ProcessState.COMPLETE
    assert not (service.work_dir / "once-4").exists()
    assert (service.tickets_dir / "once-4" / "output.jsonl").exists()
    assert again.state is ProcessState.COMPLETE and again.exit_code == 0
    assert marker.read_text().splitlines() == ["run"]
