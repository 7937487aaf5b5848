"""Cancellation and timeouts kill the script's whole process group and say so in the log."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cephalo_agent.scripts import (
    CANCELLED_MESSAGE,
    EXIT_CANCELLED,
    EXIT_TIMED_OUT,
    ScriptService,
    ScriptStillRunning,
)
from cephalo_common.agent_protocol import ProcessState, ScriptTicketRequest, StartScriptCommand

LONG_SLEEP = 'sleep 30 & echo $! > "$CEPHALO_VAR_CHILD"; echo started; wait'


def _alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for whichever init adopted it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


async def test_cancel_kills_a_long_sleep_and_its_children_quickly(
    scripts: ScriptService,
    tmp_path: Path,
    bash: Callable[..., StartScriptCommand],
    wait_for_line: Callable[..., Any],
) -> None:
    child_file = tmp_path / "child.pid"
    await scripts.start_script(bash("cancel-1", LONG_SLEEP, variables={"Child": str(child_file)}))
    await wait_for_line(scripts, "cancel-1", "started")
    child = int(child_file.read_text())

    began = time.monotonic()
    status = await scripts.cancel_script(ScriptTicketRequest(ticket="cancel-1"))
    elapsed = time.monotonic() - began

    assert elapsed < 1.5
    assert status.state is ProcessState.COMPLETE
    assert status.exit_code == EXIT_CANCELLED
    assert status.logs[-1].text == CANCELLED_MESSAGE
    assert not _alive(child)


async def test_cancel_of_a_script_that_ignores_sigterm_escalates_to_sigkill(
    scripts: ScriptService,
    bash: Callable[..., StartScriptCommand],
    wait_for_line: Callable[..., Any],
) -> None:
    stubborn = "trap '' TERM; echo started; while true; do sleep 0.1; done"
    await scripts.start_script(bash("cancel-2", stubborn))
    await wait_for_line(scripts, "cancel-2", "started")

    began = time.monotonic()
    status = await scripts.cancel_script(ScriptTicketRequest(ticket="cancel-2"))

    assert time.monotonic() - began < 2.5  # the grace period is 1 s in these tests
    assert status.exit_code == EXIT_CANCELLED


async def test_cancel_after_completion_keeps_the_real_exit_code(
    scripts: ScriptService, bash: Callable[..., StartScriptCommand], follow: Callable[..., Any]
) -> None:
    await scripts.start_script(bash("cancel-3", "exit 5"))
    await follow(scripts, "cancel-3")

    status = await scripts.cancel_script(ScriptTicketRequest(ticket="cancel-3"))

    assert status.exit_code == 5


async def test_timeout_kills_the_script_and_reports_minus_three(
    scripts: ScriptService, bash: Callable[..., StartScriptCommand], follow: Callable[..., Any]
) -> None:
    began = time.monotonic()
    await scripts.start_script(bash("timeout-1", "echo started; sleep 30", timeout_seconds=1))

    status, lines = await follow(scripts, "timeout-1")

    assert 0.9 < time.monotonic() - began < 3.0
    assert status.exit_code == EXIT_TIMED_OUT
    assert lines[0].text == "started"
    assert "timed out after 1 seconds" in lines[-1].text


async def test_complete_script_refuses_a_running_script(
    scripts: ScriptService,
    bash: Callable[..., StartScriptCommand],
    wait_for_line: Callable[..., Any],
) -> None:
    await scripts.start_script(bash("cancel-4", "echo started; sleep 30"))
    await wait_for_line(scripts, "cancel-4", "started")

    with pytest.raises(ScriptStillRunning):
        await scripts.complete_script(ScriptTicketRequest(ticket="cancel-4"))
    assert (scripts.work_dir / "cancel-4").exists()
