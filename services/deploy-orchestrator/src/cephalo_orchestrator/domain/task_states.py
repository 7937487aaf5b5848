"""ServerTask states and the moves between them (Octopus `TaskState`), without a database.

A task is *completed* once it leaves Queued, Executing, Paused and Cancelling; a completed
task is never changed again (a re-run is a new task). Executing, Paused (waiting on an
interruption) and Cancelling hold the task's lane: at most one such task per project and
environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from cephalo_common.errors import Conflict


class TaskState(StrEnum):
    QUEUED = "Queued"
    EXECUTING = "Executing"
    PAUSED = "Paused"
    CANCELLING = "Cancelling"
    SUCCESS = "Success"
    FAILED = "Failed"
    CANCELED = "Canceled"
    TIMED_OUT = "TimedOut"


RUNNING_STATES = frozenset({TaskState.EXECUTING, TaskState.PAUSED, TaskState.CANCELLING})
ACTIVE_STATES = RUNNING_STATES | {TaskState.QUEUED}
TERMINAL_STATES = frozenset(TaskState) - ACTIVE_STATES

_ALLOWED: Mapping[TaskState, frozenset[TaskState]] = {
    TaskState.QUEUED: frozenset({TaskState.EXECUTING, TaskState.CANCELED, TaskState.TIMED_OUT}),
    TaskState.EXECUTING: frozenset(
        {
            TaskState.SUCCESS,
            TaskState.FAILED,
            TaskState.PAUSED,
            TaskState.CANCELLING,
            TaskState.TIMED_OUT,
        }
    ),
    TaskState.PAUSED: frozenset(
        {TaskState.EXECUTING, TaskState.FAILED, TaskState.CANCELLING, TaskState.TIMED_OUT}
    ),
    TaskState.CANCELLING: frozenset({TaskState.CANCELED}),
    **{state: frozenset() for state in TERMINAL_STATES},
}


class InvalidTransition(Conflict):
    """A move the task's current state does not allow (a 409 if it ever reaches a client)."""


def is_completed(state: TaskState) -> bool:
    return state in TERMINAL_STATES


def can_transition(current: TaskState, target: TaskState) -> bool:
    return target in _ALLOWED[current]


def ensure_transition(current: TaskState, target: TaskState) -> TaskState:
    """Return `target` if the move is allowed, else raise `InvalidTransition`."""
    if not can_transition(current, target):
        raise InvalidTransition(f"a task cannot go from {current} to {target}")
    return target
