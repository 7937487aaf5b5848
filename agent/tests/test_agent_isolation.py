"""Script isolation: FullIsolation scripts take turns on a named mutex; others never wait."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cephalo_agent.scripts import (
    CANCELLED_MESSAGE,
    EXIT_CANCELLED,
    EXIT_ISOLATION_TIMEOUT,
    ScriptService,
)
from cephalo_common.agent_protocol import (
    ProcessState,
    ScriptIsolation,
    ScriptTicketRequest,
    StartScriptCommand,
)

Bash = Callable[..., StartScriptCommand]
FULL = {"isolation": ScriptIsolation.FULL}


async def test_full_isolation_scripts_take_turns_and_the_waiting_one_says_so(
    scripts: ScriptService, bash: Bash, follow: Any, wait_for_line: Any, tmp_path: Any
) -> None:
    order = tmp_path / "order"
    await scripts.start_script(
        bash("iso-1", f"echo a >> {order}; echo started; sleep 0.5; echo b >> {order}", **FULL)
    )
    await wait_for_line(scripts, "iso-1", "started")
    waiting = await scripts.start_script(bash("iso-2", f"echo c >> {order}", **FULL))

    assert waiting.state is ProcessState.PENDING
    status, lines = await follow(scripts, "iso-2")
    assert status.exit_code == 0
    assert order.read_text().split() == ["a", "b", "c"]
    assert (
        lines[0].text
        == "Waiting for the script isolation mutex 'RunningScript', held by script iso-1."
    )


async def test_no_isolation_and_other_mutex_names_do_not_wait(
    scripts: ScriptService, bash: Bash, follow: Any, wait_for_line: Any, tmp_path: Any
) -> None:
    marker = tmp_path / "marker"
    await scripts.start_script(
        bash("hold", f"echo started; while [ ! -f {marker} ]; do sleep 0.02; done", **FULL)
    )
    await wait_for_line(scripts, "hold", "started")
    free, _ = await follow(scripts, await _ticket(scripts, bash("free", "echo free")))
    other, _ = await follow(
        scripts,
        await _ticket(scripts, bash("other", "echo x", isolation_mutex_name="Other", **FULL)),
    )
    await scripts.start_script(bash("release", f"touch {marker}"))
    held, _ = await follow(scripts, "hold")
    assert (free.exit_code, other.exit_code, held.exit_code) == (0, 0, 0)


async def test_a_script_that_cannot_get_the_mutex_in_time_never_starts(
    scripts: ScriptService, bash: Bash, follow: Any, wait_for_line: Any, tmp_path: Any
) -> None:
    ran = tmp_path / "ran"
    await scripts.start_script(bash("long", "echo started; sleep 5", **FULL))
    await wait_for_line(scripts, "long", "started")
    await scripts.start_script(
        bash("late", f"touch {ran}", isolation_mutex_timeout_seconds=0.3, **FULL)
    )
    status, lines = await follow(scripts, "late")

    assert status.exit_code == EXIT_ISOLATION_TIMEOUT
    assert "was not free within 0.3 seconds" in lines[-1].text
    assert not ran.exists()
    await scripts.cancel_script(ScriptTicketRequest(ticket="long"))


async def test_cancel_while_waiting_for_the_mutex_completes_with_minus_one(
    scripts: ScriptService, bash: Bash, follow: Any, wait_for_line: Any, tmp_path: Any
) -> None:
    ran = tmp_path / "ran"
    await scripts.start_script(bash("busy", "echo started; sleep 5", **FULL))
    await wait_for_line(scripts, "busy", "started")
    await scripts.start_script(bash("queued", f"touch {ran}", **FULL))
    cancelled = await scripts.cancel_script(ScriptTicketRequest(ticket="queued"))
    await scripts.cancel_script(ScriptTicketRequest(ticket="busy"))
    after = await scripts.start_script(bash("after", "echo free again", **FULL))
    status, _ = await follow(scripts, "after")

    assert cancelled.exit_code == EXIT_CANCELLED
    assert cancelled.logs[-1].text == CANCELLED_MESSAGE
    assert not ran.exists()
    assert after.ticket == "after" and status.exit_code == 0


async def _ticket(scripts: ScriptService, command: StartScriptCommand) -> str:
    await scripts.start_script(command)
    return command.ticket


def test_isolation_fields_default_to_no_isolation(bash: Bash) -> None:
    command = bash("t", "echo")
    assert command.isolation is ScriptIsolation.NONE
    assert command.isolation_mutex_name == "RunningScript"
    assert command.isolation_mutex_timeout_seconds is None


async def test_an_adopted_script_keeps_its_mutex_after_a_restart(
    make_service: Callable[..., ScriptService], bash: Bash, follow: Any, wait_for_line: Any
) -> None:
    first = make_service()
    await first.start_script(bash("survivor", "echo started; sleep 1", **FULL))
    await wait_for_line(first, "survivor", "started")
    await first.aclose()  # the agent stops; its script keeps running

    restarted = make_service()
    await restarted.recover()
    assert restarted.mutexes.holder("RunningScript") == "survivor"
    waiting = await restarted.start_script(bash("next", "echo next", **FULL))
    assert waiting.state is ProcessState.PENDING
    status, lines = await follow(restarted, "next", timeout=6)
    assert status.exit_code == 0 and lines[-1].text == "next"
