"""The `get_status` cursor: every line exactly once, in sequence order, then the exit code."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cephalo_agent.scripts import ScriptService, ScriptSettings
from cephalo_common.agent_protocol import (
    LogSource,
    ProcessState,
    ScriptSyntax,
    ScriptTicketRequest,
    StartScriptCommand,
)

INTERLEAVED = """
for i in $(seq 1 40); do
  echo "out $i"
  echo "err $i" >&2
  if [ $((i % 10)) -eq 0 ]; then sleep 0.02; fi
done
printf 'no trailing newline'
"""


async def test_get_status_cursor_returns_each_log_line_exactly_once(
    scripts: ScriptService, bash: Callable[..., StartScriptCommand], follow: Callable[..., Any]
) -> None:
    await scripts.start_script(bash("cursor-1", INTERLEAVED))

    status, lines = await follow(scripts, "cursor-1")

    sequences = [line.sequence for line in lines]
    assert sequences == list(range(1, 82))
    assert status.next_log_sequence == 81
    assert status.exit_code == 0
    stdout = [line.text for line in lines if line.source is LogSource.STDOUT]
    stderr = [line.text for line in lines if line.source is LogSource.STDERR]
    assert stdout == [f"out {i}" for i in range(1, 41)] + ["no trailing newline"]
    assert stderr == [f"err {i}" for i in range(1, 41)]
    assert all(line.time.endswith("+00:00") for line in lines)


async def test_get_status_after_the_last_line_returns_no_lines_and_keeps_the_cursor(
    scripts: ScriptService, bash: Callable[..., StartScriptCommand], follow: Callable[..., Any]
) -> None:
    await scripts.start_script(bash("cursor-2", "echo one; echo two"))
    await follow(scripts, "cursor-2")

    status = await scripts.get_status(ScriptTicketRequest(ticket="cursor-2", last_log_sequence=2))

    assert status.logs == []
    assert status.next_log_sequence == 2
    assert status.state is ProcessState.COMPLETE


async def test_non_zero_exit_code_is_reported(
    scripts: ScriptService, bash: Callable[..., StartScriptCommand], follow: Callable[..., Any]
) -> None:
    await scripts.start_script(bash("cursor-3", "echo failing >&2; exit 7"))

    status, lines = await follow(scripts, "cursor-3")

    assert status.exit_code == 7
    assert [(line.source, line.text) for line in lines] == [(LogSource.STDERR, "failing")]


async def test_pages_are_capped_and_complete_is_reported_only_with_the_last_line(
    make_service: Callable[..., ScriptService],
    bash: Callable[..., StartScriptCommand],
    follow: Callable[..., Any],
) -> None:
    service = make_service(ScriptSettings(max_logs_per_call=10, drain_seconds=0.5))
    await service.start_script(bash("cursor-4", "seq 1 35"))
    await follow(service, "cursor-4")  # run to the end first

    pages = []
    cursor = 0
    while not pages or pages[-1].state is not ProcessState.COMPLETE:
        pages.append(
            await service.get_status(
                ScriptTicketRequest(ticket="cursor-4", last_log_sequence=cursor)
            )
        )
        cursor = pages[-1].next_log_sequence

    assert [len(page.logs) for page in pages] == [10, 10, 10, 5]
    assert [page.state for page in pages[:-1]] == [ProcessState.RUNNING] * 3
    assert [page.exit_code for page in pages] == [None, None, None, 0]
    texts = [line.text for page in pages for line in page.logs]
    assert texts == [str(i) for i in range(1, 36)]


async def test_python_scripts_run_with_the_agents_interpreter(
    scripts: ScriptService, follow: Callable[..., Any]
) -> None:
    body = """
import json, os, sys
variables = json.load(open(os.environ["CEPHALO_VARIABLES_FILE"]))
print("hello", variables["Greeting.Target"], os.environ["CEPHALO_VAR_GREETING_TARGET"])
print("warning", file=sys.stderr)
sys.exit(3)
"""
    command = StartScriptCommand(
        ticket="cursor-5",
        script_body=body,
        syntax=ScriptSyntax.PYTHON,
        variables={"Greeting.Target": "world"},
    )
    await scripts.start_script(command)

    status, lines = await follow(scripts, "cursor-5")

    assert status.exit_code == 3
    assert {(line.source, line.text) for line in lines} == {
        (LogSource.STDOUT, "hello world world"),
        (LogSource.STDERR, "warning"),
    }
    journaled = (scripts.tickets_dir / "cursor-5" / "output.jsonl").read_text().splitlines()
    assert [json.loads(raw)["sequence"] for raw in journaled] == [1, 2]
