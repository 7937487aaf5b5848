"""When a run may be dispatched again: only a script that provably never started."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cephalo_common.contracts import StepFinishedV1
from cephalo_orchestrator.domain.reconciler import GatewayRun
from cephalo_orchestrator.domain.retries import (
    MAX_DISPATCH_ATTEMPTS,
    may_be_unstarted,
    never_started,
    retry_line,
)


def verdict(exit_code: int | None, error: str | None = "did not connect") -> StepFinishedV1:
    return StepFinishedV1(
        ticket="t", task_id="x", step_run_id="r", machine_id="m", exit_code=exit_code, error=error
    )


@pytest.mark.parametrize(
    ("message", "run_state", "attempt", "task_state", "expected"),
    [
        (verdict(None), "Pending", 1, "Executing", True),
        (verdict(None), "Pending", MAX_DISPATCH_ATTEMPTS - 1, "Executing", True),
        (verdict(None), "Pending", MAX_DISPATCH_ATTEMPTS, "Executing", False),
        (verdict(1), "Pending", 1, "Executing", False),
        (verdict(None), "Running", 1, "Executing", False),
        (verdict(None), "Pending", 1, "Cancelling", False),
        (verdict(None, "Canceled before the script started"), "Pending", 1, "Executing", False),
    ],
    ids=[
        "first-attempt",
        "attempts-left",
        "attempts-used-up",
        "has-an-exit-code",
        "logged-a-line",
        "task-cancelling",
        "canceled",
    ],
)
def test_only_a_silent_verdict_without_exit_code_may_be_retried(
    message: StepFinishedV1, run_state: str, attempt: int, task_state: str, expected: bool
) -> None:
    assert (
        may_be_unstarted(message, run_state=run_state, attempt=attempt, task_state=task_state)
        is expected
    )


def gateway(state: str, started: bool, exit_code: int | None = None) -> GatewayRun:
    return GatewayRun(
        state=state,
        exit_code=exit_code,
        error=None,
        last_log_sequence=0,
        finished_at=None,
        started_at=datetime(2026, 12, 7, tzinfo=UTC) if started else None,
    )


def test_the_gateway_confirms_a_script_never_started() -> None:
    assert never_started(gateway("Complete", started=False))
    assert not never_started(gateway("Complete", started=True))
    assert not never_started(gateway("Complete", started=False, exit_code=-4))
    assert not never_started(gateway("Running", started=False))
    assert not never_started(None)


def test_a_retry_says_which_attempt_comes_next() -> None:
    line = retry_line("Deploy", "web-01", 1, "did not connect")
    assert line == (
        "Deploy never started on web-01 (did not connect); dispatching it again (attempt 2 of 3)"
    )
