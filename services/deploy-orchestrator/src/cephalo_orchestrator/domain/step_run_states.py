"""StepRun states: one script on one machine, from dispatch to its exit code."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class StepRunState(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCESS = "Success"
    FAILED = "Failed"
    CANCELED = "Canceled"


TERMINAL_RUN_STATES = frozenset({StepRunState.SUCCESS, StepRunState.FAILED, StepRunState.CANCELED})
ACTIVE_RUN_STATES = frozenset({StepRunState.PENDING, StepRunState.RUNNING})

_ALLOWED: Mapping[StepRunState, frozenset[StepRunState]] = {
    StepRunState.PENDING: frozenset(
        {StepRunState.RUNNING, StepRunState.SUCCESS, StepRunState.FAILED, StepRunState.CANCELED}
    ),
    StepRunState.RUNNING: frozenset(
        {StepRunState.SUCCESS, StepRunState.FAILED, StepRunState.CANCELED}
    ),
    StepRunState.SUCCESS: frozenset(),
    StepRunState.FAILED: frozenset(),
    StepRunState.CANCELED: frozenset(),
}


def can_transition(current: StepRunState, target: StepRunState) -> bool:
    return target in _ALLOWED[current]


def outcome(exit_code: int | None) -> StepRunState:
    """Exit code 0 is success; any other code, or none at all (the run broke), is failure."""
    return StepRunState.SUCCESS if exit_code == 0 else StepRunState.FAILED
