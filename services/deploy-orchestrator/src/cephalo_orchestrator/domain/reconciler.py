"""What to do with a step run that was in flight when its task's owner stopped renewing the
lease (crashed, or cut off): decided from what agent-gateway knows of the run's ticket.

Never re-run a step silently: a run the gateway finished is taken as finished, a run it still
drives is left to report as usual, and a run it never heard of is waited for while its
dispatch may still be on the way, then failed with the reason `orchestrator-lost`.
Plain rules, no I/O: the runner asks the gateway and applies the decision.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from cephalo_orchestrator.domain.plan import ORCHESTRATOR_LOST as LOST

COMPLETE = "Complete"


@dataclass(frozen=True)
class InFlightRun:
    """A step run that was dispatched and has no verdict yet."""

    run_id: uuid.UUID
    ticket: str
    step_name: str
    machine_name: str
    dispatched_at: datetime
    dispatch_sent: bool  # the outbox has published the run's step.dispatch


@dataclass(frozen=True)
class GatewayRun:
    """What agent-gateway knows of one ticket (`GET .../script-runs/{ticket}`)."""

    state: str  # Pending, Running or Complete
    exit_code: int | None
    error: str | None
    last_log_sequence: int
    finished_at: datetime | None
    started_at: datetime | None = None


class Action(StrEnum):
    TAKE_RESULT = "take-result"  # the run finished and its step.finished is overdue
    KEEP_COLLECTING = "keep-collecting"  # still running, or its step.finished is on the way
    WAIT = "wait"  # unknown, but its dispatch may still be on the way: ask again later
    FAIL_LOST = "fail-lost"  # unknown long after its dispatch: it never ran


@dataclass(frozen=True)
class Decision:
    run: InFlightRun
    action: Action
    reason: str | None = None


def decide(
    run: InFlightRun, known: GatewayRun | None, *, now: datetime, patience: timedelta
) -> Decision:
    """`known` is None when agent-gateway has no run with the ticket; `patience` is how long
    an event or a dispatch may take on its way before it counts as lost."""
    if known is None:
        if not run.dispatch_sent or now - run.dispatched_at < patience:
            return Decision(run, Action.WAIT)
        return Decision(run, Action.FAIL_LOST, lost_reason(run, patience))
    if known.state != COMPLETE:
        return Decision(run, Action.KEEP_COLLECTING)
    finished = known.finished_at or now
    if now - finished < patience:
        return Decision(run, Action.KEEP_COLLECTING)
    return Decision(run, Action.TAKE_RESULT)


def lost_reason(run: InFlightRun, patience: timedelta) -> str:
    seconds = f"{patience.total_seconds():g}"
    return (
        f"{LOST}: agent-gateway never received {run.step_name} for {run.machine_name} "
        f"(ticket {run.ticket}) within {seconds} s of its dispatch; it did not run"
    )


def settled(decisions: list[Decision]) -> bool:
    """A task is adopted only once no run waits: a waiting one is asked about again."""
    return all(decision.action is not Action.WAIT for decision in decisions)
