"""The task log: the orchestrator's own lines and the agents' output, in one ordered stream.

Callers hold the task's row lock while appending, so line ids commit in order within a task
and a reader polling with `after=<last id>` never skips a line.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cephalo_common.agent_protocol import ProcessOutput
from cephalo_orchestrator.db.models import ServerTask, StepRun, TaskLogLine
from cephalo_orchestrator.db.repositories import Repositories


class LogSource(StrEnum):
    STDOUT = "stdout"
    STDERR = "stderr"
    INFO = "info"
    ERROR = "error"


async def write(
    repos: Repositories,
    task: ServerTask,
    text: str,
    *,
    now: datetime,
    source: LogSource = LogSource.INFO,
    run: StepRun | None = None,
) -> None:
    """One orchestrator line, optionally about one step run (it has no sequence)."""
    await repos.log.add(
        TaskLogLine(
            task_id=task.id,
            step_run_id=run.id if run else None,
            sequence=None,
            source=source.value,
            text=text,
            time=now,
            machine_name=run.machine_name if run else None,
            step_name=run.step_name if run else None,
        )
    )


async def append_agent_output(
    repos: Repositories, run: StepRun, lines: Sequence[ProcessOutput], *, now: datetime
) -> int:
    """Store the agent's lines; one seen before (same run and sequence) is skipped."""
    unique = {line.sequence: line for line in lines}
    rows: list[dict[str, Any]] = [
        {
            "task_id": run.task_id,
            "step_run_id": run.id,
            "sequence": line.sequence,
            "source": LogSource(line.source.value).value,
            "text": line.text,
            "time": line_time(line.time, now),
            "machine_name": run.machine_name,
            "step_name": run.step_name,
        }
        for line in unique.values()
    ]
    return await repos.log.append_new(rows)


def line_time(raw: str, fallback: datetime) -> datetime:
    """The agent's timestamp (ISO 8601); a missing zone means UTC, garbage means `fallback`."""
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return fallback
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
