"""ServerTask and StepRun states: the allowed moves, with no database."""

from __future__ import annotations

import pytest

from cephalo_common.errors import Conflict
from cephalo_orchestrator.domain import step_run_states, task_states
from cephalo_orchestrator.domain.step_run_states import StepRunState
from cephalo_orchestrator.domain.task_states import (
    TERMINAL_STATES,
    InvalidTransition,
    TaskState,
    can_transition,
    ensure_transition,
    is_completed,
)

ALLOWED = {
    (TaskState.QUEUED, TaskState.EXECUTING),
    (TaskState.QUEUED, TaskState.CANCELED),
    (TaskState.QUEUED, TaskState.TIMED_OUT),
    (TaskState.EXECUTING, TaskState.SUCCESS),
    (TaskState.EXECUTING, TaskState.FAILED),
    (TaskState.EXECUTING, TaskState.CANCELLING),
    (TaskState.EXECUTING, TaskState.TIMED_OUT),
    (TaskState.EXECUTING, TaskState.PAUSED),
    (TaskState.PAUSED, TaskState.EXECUTING),
    (TaskState.PAUSED, TaskState.FAILED),
    (TaskState.PAUSED, TaskState.CANCELLING),
    (TaskState.PAUSED, TaskState.TIMED_OUT),
    (TaskState.CANCELLING, TaskState.CANCELED),
}


@pytest.mark.parametrize("current", list(TaskState))
@pytest.mark.parametrize("target", list(TaskState))
def test_only_the_octopus_task_moves_are_allowed(current: TaskState, target: TaskState) -> None:
    assert can_transition(current, target) == ((current, target) in ALLOWED)


def test_the_state_names_match_octopus() -> None:
    assert [state.value for state in TaskState] == [
        "Queued",
        "Executing",
        "Paused",
        "Cancelling",
        "Success",
        "Failed",
        "Canceled",
        "TimedOut",
    ]


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
def test_a_completed_task_never_changes_again(state: TaskState) -> None:
    assert is_completed(state)
    for target in TaskState:
        with pytest.raises(InvalidTransition):
            ensure_transition(state, target)


def test_queued_executing_and_cancelling_are_not_completed() -> None:
    assert not any(is_completed(state) for state in task_states.ACTIVE_STATES)
    assert task_states.RUNNING_STATES < task_states.ACTIVE_STATES


def test_an_invalid_transition_is_a_conflict_that_names_both_states() -> None:
    with pytest.raises(Conflict, match="from Queued to Success"):
        ensure_transition(TaskState.QUEUED, TaskState.SUCCESS)


def test_an_allowed_transition_returns_the_target() -> None:
    assert ensure_transition(TaskState.QUEUED, TaskState.EXECUTING) is TaskState.EXECUTING


def test_step_runs_go_pending_running_then_end_once() -> None:
    assert step_run_states.can_transition(StepRunState.PENDING, StepRunState.RUNNING)
    assert step_run_states.can_transition(StepRunState.PENDING, StepRunState.FAILED)
    assert step_run_states.can_transition(StepRunState.RUNNING, StepRunState.SUCCESS)
    assert not step_run_states.can_transition(StepRunState.RUNNING, StepRunState.PENDING)
    for ended in step_run_states.TERMINAL_RUN_STATES:
        assert not any(step_run_states.can_transition(ended, target) for target in StepRunState)


@pytest.mark.parametrize(
    ("exit_code", "expected"),
    [
        (0, StepRunState.SUCCESS),
        (1, StepRunState.FAILED),
        (-43, StepRunState.FAILED),
        (None, StepRunState.FAILED),
    ],
)
def test_only_exit_code_zero_is_success(exit_code: int | None, expected: StepRunState) -> None:
    assert step_run_states.outcome(exit_code) is expected
