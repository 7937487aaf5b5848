"""R14: the task lifecycle as a hypothesis state machine over the pure state domain.

A task with its step runs is driven by arbitrary moves, allowed or not, in any order, the way
duplicated and reordered events would drive it. After every move: an ended task or run has not
changed since it ended (every move out of an end is refused), and no state is stuck (an end is
reachable from wherever the task and each run are). The cancellation rule of the orchestrator
(Cancelling ends Canceled only once no run is active, else the active runs are abandoned) is
replayed on top of the allowed moves.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from cephalo_orchestrator.domain import step_run_states, task_states
from cephalo_orchestrator.domain.step_run_states import (
    ACTIVE_RUN_STATES,
    TERMINAL_RUN_STATES,
    StepRunState,
)
from cephalo_orchestrator.domain.task_states import (
    TERMINAL_STATES,
    InvalidTransition,
    TaskState,
    ensure_transition,
    is_completed,
)

State = TypeVar("State", bound=StrEnum)
MAX_RUNS = 6


def _reaches_an_end(
    start: State,
    states: Iterable[State],
    allowed: Callable[[State, State], bool],
    ends: frozenset[State],
) -> bool:
    every = list(states)
    seen, queue = {start}, deque([start])
    while queue:
        current = queue.popleft()
        if current in ends:
            return True
        for target in every:
            if target not in seen and allowed(current, target):
                seen.add(target)
                queue.append(target)
    return False


class TaskLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.task = TaskState.QUEUED
        self.task_ended_as: TaskState | None = None
        self.runs: list[StepRunState] = []
        self.runs_ended_as: dict[int, StepRunState] = {}

    def _set_task(self, target: TaskState) -> None:
        self.task = ensure_transition(self.task, target)
        if is_completed(self.task):
            self.task_ended_as = self.task

    def _set_run(self, index: int, target: StepRunState) -> None:
        assert step_run_states.can_transition(self.runs[index], target)
        self.runs[index] = target
        if target in TERMINAL_RUN_STATES:
            self.runs_ended_as[index] = target

    @rule(wanted=st.sampled_from(TaskState))
    def move_the_task(self, wanted: TaskState) -> None:
        """Any move, as a stale or duplicated event would ask for it: allowed or refused."""
        before = self.task
        if wanted is TaskState.CANCELED and before is TaskState.CANCELLING:
            return self.finish_cancelling()
        if task_states.can_transition(before, wanted):
            self._set_task(wanted)
            return None
        with pytest.raises(InvalidTransition):
            ensure_transition(before, wanted)
        assert self.task is before
        return None

    @precondition(lambda self: self.task is TaskState.EXECUTING and len(self.runs) < MAX_RUNS)
    @rule()
    def dispatch_a_run(self) -> None:
        self.runs.append(StepRunState.PENDING)

    @precondition(lambda self: bool(self.runs))
    @rule(data=st.data(), wanted=st.sampled_from(StepRunState))
    def move_a_run(self, data: st.DataObject, wanted: StepRunState) -> None:
        index = data.draw(st.integers(0, len(self.runs) - 1))
        before = self.runs[index]
        if step_run_states.can_transition(before, wanted):
            self._set_run(index, wanted)
        else:
            assert before in TERMINAL_RUN_STATES or wanted in (before, StepRunState.PENDING)

    @precondition(lambda self: self.task is TaskState.CANCELLING)
    @rule()
    def finish_cancelling(self) -> None:
        """The orchestrator's rule: stopped runs, or abandoned after the grace period."""
        for index, state in enumerate(self.runs):
            if state in ACTIVE_RUN_STATES:
                self._set_run(index, StepRunState.CANCELED)
        self._set_task(TaskState.CANCELED)

    @invariant()
    def an_ended_task_never_changes(self) -> None:
        if self.task_ended_as is not None:
            assert self.task is self.task_ended_as
            assert all(not task_states.can_transition(self.task, target) for target in TaskState)

    @invariant()
    def an_ended_run_never_changes(self) -> None:
        for index, ended in self.runs_ended_as.items():
            assert self.runs[index] is ended
            assert all(not step_run_states.can_transition(ended, t) for t in StepRunState)

    @invariant()
    def nothing_is_stuck(self) -> None:
        assert _reaches_an_end(self.task, TaskState, task_states.can_transition, TERMINAL_STATES)
        for run in self.runs:
            assert _reaches_an_end(
                run, StepRunState, step_run_states.can_transition, TERMINAL_RUN_STATES
            )

    @invariant()
    def a_canceled_task_leaves_no_run_active(self) -> None:
        if self.task is TaskState.CANCELED:
            assert not any(state in ACTIVE_RUN_STATES for state in self.runs)


TaskLifecycle.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_the_task_lifecycle_never_leaves_an_end_and_never_sticks = TaskLifecycle.TestCase


@pytest.mark.parametrize("state", list(TaskState))
def test_every_task_state_reaches_an_end(state: TaskState) -> None:
    assert _reaches_an_end(state, TaskState, task_states.can_transition, TERMINAL_STATES)


@pytest.mark.parametrize("state", list(StepRunState))
def test_every_step_run_state_reaches_an_end(state: StepRunState) -> None:
    assert _reaches_an_end(state, StepRunState, step_run_states.can_transition, TERMINAL_RUN_STATES)
