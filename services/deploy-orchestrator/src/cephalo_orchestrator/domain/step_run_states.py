"""StepRun states: one script on one machine, from dispatch to its exit code."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from cephalo_common.agent_protocol import ExitCodes


class StepRunState(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCESS = "Success"
    FAILED = "Failed"
    CANCELED = "Canceled"
    TIMED_OUT = "TimedOut"


TERMINAL_RUN_STATES = frozenset(
    {StepRunState.SUCCESS, StepRunState.FAILED, StepRunState.CANCELED, StepRunState.TIMED_OUT}
)
ACTIVE_RUN_STATES = frozenset({StepRunState.PENDING, StepRunState.RUNNING})
# A run that ended badly on its own (not cancelled): guided failure may ask what to do.
FAILED_RUN_STATES = frozenset({StepRunState.FAILED, StepRunState.TIMED_OUT})

_ENDS = frozenset(TERMINAL_RUN_STATES)
_ALLOWED: Mapping[StepRunState, frozenset[StepRunState]] = {
    StepRunState.PENDING: frozenset({StepRunState.RUNNING}) | _ENDS,
    StepRunState.RUNNING: _ENDS - {StepRunState.RUNNING},
    StepRunState.SUCCESS: frozenset(),
    StepRunState.FAILED: frozenset(),
    StepRunState.CANCELED: frozenset(),
    StepRunState.TIMED_OUT: frozenset(),
}


def can_transition(current: StepRunState, target: StepRunState) -> bool:
    return target in _ALLOWED[current]


def outcome(exit_code: int | None) -> StepRunState:
    """Exit code 0 is success; the agent's timeout code is TimedOut; any other code, or none
    at all (the run broke), is failure."""
    if exit_code == 0:
        return StepRunState.SUCCESS
    if exit_code == ExitCodes.TIMED_OUT:
        return StepRunState.TIMED_OUT
    return StepRunState.FAILED
