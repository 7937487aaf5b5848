"""The reconciler's rules: what becomes of a run in flight when its task's owner vanished."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from cephalo_orchestrator.domain.reconciler import (
    LOST,
    Action,
    Decision,
    GatewayRun,
    InFlightRun,
    decide,
    settled,
)

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
PATIENCE = timedelta(seconds=60)


def in_flight(*, age: float, sent: bool = True) -> InFlightRun:
    return InFlightRun(
        run_id=uuid.uuid4(),
        ticket="ticket-1",
        step_name="Deploy",
        machine_name="web-01",
        dispatched_at=NOW - timedelta(seconds=age),
        dispatch_sent=sent,
    )


def gateway(state: str, *, finished_ago: float | None = None) -> GatewayRun:
    finished = None if finished_ago is None else NOW - timedelta(seconds=finished_ago)
    return GatewayRun(
        state=state,
        exit_code=0 if state == "Complete" else None,
        error=None,
        last_log_sequence=3,
        finished_at=finished,
    )


@pytest.mark.parametrize(
    ("run", "known", "action"),
    [
        (in_flight(age=5), gateway("Pending"), Action.KEEP_COLLECTING),
        (in_flight(age=500), gateway("Running"), Action.KEEP_COLLECTING),
        (in_flight(age=500), gateway("Complete", finished_ago=1), Action.KEEP_COLLECTING),
        (in_flight(age=500), gateway("Complete", finished_ago=120), Action.TAKE_RESULT),
        (in_flight(age=500, sent=False), None, Action.WAIT),
        (in_flight(age=5), None, Action.WAIT),
        (in_flight(age=120), None, Action.FAIL_LOST),
    ],
    ids=[
        "pending-at-gateway",
        "running",
        "finished-event-on-its-way",
        "finished-event-overdue",
        "dispatch-still-in-outbox",
        "dispatch-on-its-way",
        "never-received",
    ],
)
def test_reconciler_decides_each_in_flight_run(
    run: InFlightRun, known: GatewayRun | None, action: Action
) -> None:
    assert decide(run, known, now=NOW, patience=PATIENCE).action is action


def test_reconciler_fails_a_lost_run_with_the_orchestrator_lost_reason() -> None:
    decision = decide(in_flight(age=120), None, now=NOW, patience=PATIENCE)
    assert decision.reason is not None
    assert decision.reason.startswith(LOST)
    assert "web-01" in decision.reason and "did not run" in decision.reason


def test_reconciler_adopts_only_once_no_run_waits() -> None:
    running = Decision(in_flight(age=1), Action.KEEP_COLLECTING)
    waiting = Decision(in_flight(age=1), Action.WAIT)
    assert settled([running, Decision(in_flight(age=1), Action.FAIL_LOST)])
    assert settled([])
    assert not settled([running, waiting])
