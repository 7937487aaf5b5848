"""Dispatch retries: a run that agent-gateway gave up on before its script ever started
(the machine did not connect in time, a call to it broke) is dispatched again, up to
`MAX_DISPATCH_ATTEMPTS` in all, with a new ticket.

Only when the script provably never started: the orchestrator saw no line of it, the
gateway's verdict has no exit code, and the gateway's own record shows it never marked the
run started. Anything else is the step's outcome, for a person (guided failure) to judge.
"""

from __future__ import annotations

from cephalo_common.contracts import StepFinishedV1
from cephalo_orchestrator.domain.reconciler import COMPLETE, GatewayRun
from cephalo_orchestrator.domain.step_run_states import StepRunState
from cephalo_orchestrator.domain.task_states import TaskState

MAX_DISPATCH_ATTEMPTS = 3


def may_be_unstarted(
    verdict: StepFinishedV1, *, run_state: str, attempt: int, task_state: str
) -> bool:
    """Worth asking the gateway whether the script started: a verdict without an exit code
    for a run that logged nothing, on an executing task with attempts left."""
    return (
        verdict.exit_code is None
        and not (verdict.error or "").startswith("Canceled")
        and run_state == StepRunState.PENDING
        and task_state == TaskState.EXECUTING
        and attempt < MAX_DISPATCH_ATTEMPTS
    )


def never_started(known: GatewayRun | None) -> bool:
    """The gateway finished the run without ever having started its script."""
    return (
        known is not None
        and known.state == COMPLETE
        and known.exit_code is None
        and known.started_at is None
    )


def retry_line(step_name: str, machine_name: str, attempt: int, error: str | None) -> str:
    return (
        f"{step_name} never started on {machine_name} ({error or 'no reason given'}); "
        f"dispatching it again (attempt {attempt + 1} of {MAX_DISPATCH_ATTEMPTS})"
    )
