"""Per-step timeouts: the action's `timeout_seconds` (or the setting's default) goes to the
agent; its timeout exit code ends the run TimedOut, and the task says so."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from cephalo_common.agent_protocol import ExitCodes
from cephalo_common.contracts import ScriptActionSnapshot
from cephalo_orchestrator.domain.plan import (
    ORCHESTRATOR_LOST,
    RunFailure,
    finished_line,
    step_failed_reason,
)
from cephalo_orchestrator.domain.step_run_states import (
    FAILED_RUN_STATES,
    TERMINAL_RUN_STATES,
    StepRunState,
    can_transition,
    outcome,
)
from cephalo_orchestrator.events.publish import step_timeout


def action(**properties: Any) -> ScriptActionSnapshot:
    return ScriptActionSnapshot(
        id=str(uuid.uuid4()),
        name="Deploy",
        action_type="cephalo.script",
        properties={"script_body": "true", **properties},
    )


def test_the_agents_timeout_code_ends_a_run_timed_out() -> None:
    assert outcome(ExitCodes.TIMED_OUT) is StepRunState.TIMED_OUT
    assert outcome(0) is StepRunState.SUCCESS
    assert outcome(1) is StepRunState.FAILED
    assert outcome(None) is StepRunState.FAILED
    assert StepRunState.TIMED_OUT in TERMINAL_RUN_STATES & FAILED_RUN_STATES
    assert can_transition(StepRunState.RUNNING, StepRunState.TIMED_OUT)
    assert not can_transition(StepRunState.TIMED_OUT, StepRunState.SUCCESS)


def test_a_timed_out_run_is_named_so_in_the_log_and_the_reason() -> None:
    line = finished_line("Deploy", "web-01", ExitCodes.TIMED_OUT, "TimedOut: exceeded")
    assert line == "Deploy on web-01 timed out: it ran longer than its timeout_seconds"
    reason = step_failed_reason(
        "Deploy",
        [RunFailure("web-02", 1), RunFailure("web-01", ExitCodes.TIMED_OUT)],
    )
    assert reason == 'Step "Deploy" failed on web-01 (timed out), web-02 (exit code 1)'


def test_a_lost_run_names_the_orchestrator_lost_reason() -> None:
    lost = RunFailure("web-01", None, f"{ORCHESTRATOR_LOST}: never received")
    assert (
        step_failed_reason("Deploy", [lost]) == 'Step "Deploy" failed on web-01 (orchestrator-lost)'
    )


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({"timeout_seconds": 30}, 30),
        ({"timeout_seconds": "45"}, 45),
        ({}, None),
        ({"timeout_seconds": 0}, None),
        ({"timeout_seconds": -5}, None),
        ({"timeout_seconds": "soon"}, None),
        ({"timeout_seconds": True}, None),
    ],
)
def test_the_step_timeout_is_a_positive_whole_number(
    properties: dict[str, Any], expected: int | None
) -> None:
    assert step_timeout(action(**properties)) == expected
