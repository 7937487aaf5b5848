"""`cephalo task wait|log|cancel|show`."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from cephalo_cli.client import TERMINAL_STATES
from cephalo_cli.context import current as ctx
from cephalo_cli.errors import DeploymentFailed
from cephalo_cli.waiting import Followed, Tail, failure_report, render_line

app = typer.Typer(help="Server tasks: follow, read and cancel them.", no_args_is_help=True)

TaskId = Annotated[str, typer.Argument(help="The task id.")]


@app.command("show", epilog="Examples:\n\ncephalo task show 0190…")
def task_show(task_id: TaskId) -> None:
    """A task with its step runs."""
    with ctx.client() as api:
        task = api.task(task_id)
    ctx.emit(
        task,
        f"{task['id']}  {task['project_name']} {task['release_version']} → "
        f"{task['environment_name']}: {task['state']}"
        + (f" ({task['reason']})" if task.get("reason") else ""),
    )


@app.command("log", epilog="Examples:\n\ncephalo task log 0190… --after 120")
def task_log(
    task_id: TaskId,
    after: Annotated[int, typer.Option("--after", help="Only lines after this line id.")] = 0,
) -> None:
    """The task's log lines so far."""
    with ctx.client() as api:
        lines = api.task_log(api.task(task_id)["id"], after)
    ctx.emit({"task_id": task_id, "lines": lines}, "\n".join(render_line(line) for line in lines))


@app.command(
    "wait",
    epilog="Examples:\n\ncephalo task wait 0190… --timeout 900\n\n"
    "cephalo task wait 0190… --timeout 60 --cancel-on-timeout",
)
def task_wait(
    task_id: TaskId,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait.")] = 600,
    cancel_on_timeout: Annotated[
        bool, typer.Option("--cancel-on-timeout", help="Cancel the task when --timeout passes.")
    ] = False,
) -> None:
    """Stream the task's log until it finishes; exit 1 unless it succeeded."""
    with ctx.client() as api:
        task = api.task(task_id)
        tail = Tail(api, str(task["id"]), lambda line: ctx.say(render_line(line)))
        deadline = time.monotonic() + timeout
        while task["state"] not in TERMINAL_STATES and time.monotonic() < deadline:
            tail.read()
            time.sleep(0.5)
            task = api.task(str(task["id"]))
        timed_out = task["state"] not in TERMINAL_STATES
        if timed_out:
            ctx.warn(f"Task {task['id']} did not finish within {timeout:g} s")
            if cancel_on_timeout:
                api.cancel_task(str(task["id"]))
        else:
            tail.drain(0.25)
        followed = Followed(api.deployment(str(task["deployment_id"])), task, tail.lines, timed_out)
        ctx.emit(
            {"task": task, "state": followed.state, "log": tail.lines},
            f"Task {task['id']}: {followed.state}",
        )
        if followed.state != "Success":
            raise DeploymentFailed(failure_report(api, followed))


@app.command("cancel", epilog="Examples:\n\ncephalo task cancel 0190…")
def task_cancel(task_id: TaskId) -> None:
    """Ask the server to cancel a queued or running task."""
    with ctx.client() as api:
        api.cancel_task(task_id)
        task = api.task(task_id)
    ctx.emit({"task": task}, f"Task {task['id']}: {task['state']}")
