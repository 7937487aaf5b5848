"""Following a deployment's ServerTask: find it, tail its log, stop at a terminal state.

The orchestrator creates the task when it consumes the deployment event, so it may not
exist for a moment. A step's last log lines can land just after the task turns terminal,
so the tail keeps reading until the log has been quiet for a second (bounded).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cephalo_cli.client import TERMINAL_STATES, CephaloClient
from cephalo_cli.errors import DeploymentFailed

LogLine = dict[str, Any]
QUIET_POLLS = 4
MAX_DRAIN_POLLS = 20


@dataclass
class Followed:
    """What a wait saw: the task (None if the deployment ended before it had one)."""

    deployment: dict[str, Any]
    task: dict[str, Any] | None
    log: list[LogLine] = field(default_factory=list)
    timed_out: bool = False

    @property
    def state(self) -> str:
        if self.timed_out:
            return "TimedOut"
        return str((self.task or self.deployment)["state"])


class Tail:
    """Reads a task's log from a cursor, handing each new line to `on_line`."""

    def __init__(self, api: CephaloClient, task_id: str, on_line: Callable[[LogLine], None]):
        self.api, self.task_id, self.on_line = api, task_id, on_line
        self.after = 0
        self.lines: list[LogLine] = []

    def read(self) -> int:
        new = self.api.task_log(self.task_id, self.after)
        for line in new:
            self.after = max(self.after, int(line["id"]))
            self.lines.append(line)
            self.on_line(line)
        return len(new)

    def drain(self, poll: float) -> None:
        quiet = 0
        for _ in range(MAX_DRAIN_POLLS):
            quiet = 0 if self.read() else quiet + 1
            if quiet >= QUIET_POLLS:
                return
            time.sleep(poll)


def _find_task(
    api: CephaloClient, deployment_id: str, deadline: float, poll: float
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    while True:
        task = api.task_of_deployment(deployment_id)
        deployment = api.deployment(deployment_id)
        if task is not None or deployment["state"] in TERMINAL_STATES:
            return deployment, task
        if time.monotonic() >= deadline:
            return deployment, None
        time.sleep(poll)


def follow(
    api: CephaloClient,
    deployment_id: str,
    timeout: float,
    on_line: Callable[[LogLine], None],
    poll: float = 0.5,
) -> Followed:
    """Wait until the deployment's task is terminal or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    deployment, task = _find_task(api, deployment_id, deadline, poll)
    if task is None:
        return Followed(deployment, None, timed_out=deployment["state"] not in TERMINAL_STATES)
    tail = Tail(api, str(task["id"]), on_line)
    while True:
        tail.read()
        task = api.task(str(task["id"]))
        if task["state"] in TERMINAL_STATES:
            tail.drain(min(poll, 0.25))
            return Followed(api.deployment(deployment_id), task, tail.lines)
        if time.monotonic() >= deadline:
            return Followed(deployment, task, tail.lines, timed_out=True)
        time.sleep(poll)


def failure_report(api: CephaloClient, followed: Followed) -> str:
    """The failed step, why, and that step's log lines: what a build log should show."""
    task, deployment = followed.task, followed.deployment
    if task is None:
        reason = deployment.get("error") or deployment["state"]
        return f"Deployment {deployment['id']} {deployment['state']}: {reason}"
    detail = api.task(str(task["id"]))
    failed = [run for run in detail.get("step_runs") or [] if run.get("state") == "Failed"]
    header = f"Task {task['id']} {followed.state}"
    if detail.get("reason"):
        header += f": {detail['reason']}"
    lines = [header]
    for run in failed:
        lines.append(
            f'Step "{run["step_name"]}" failed on {run["machine_name"]}'
            + (f": {run['error']}" if run.get("error") else "")
        )
    names = {run["step_name"] for run in failed}
    log = [line for line in followed.log if names and line.get("step") in names]
    lines += [render_line(line) for line in (log or followed.log[-30:])]
    return "\n".join(lines)


def render_line(line: LogLine) -> str:
    source = line.get("machine") or "server"
    return f"{source:<16} {line['text']}"


def raise_unless_success(followed: Followed, api: CephaloClient) -> None:
    if followed.state != "Success":
        raise DeploymentFailed(failure_report(api, followed))
