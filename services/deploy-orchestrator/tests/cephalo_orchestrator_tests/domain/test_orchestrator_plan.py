"""Reading a release's steps as a plan, choosing machines, and the words the task log uses."""

from __future__ import annotations

import uuid

import pytest

from cephalo_common.agent_protocol import ScriptSyntax
from cephalo_orchestrator.domain import plan
from cephalo_orchestrator.domain.plan import InvalidStep, RunFailure
from cephalo_orchestrator.domain.targets import Machine, eligible


def snapshot(**properties: object) -> dict[str, object]:
    return {
        "id": "s1",
        "name": "Deploy web",
        "action_type": "cephalo.script",
        "target_roles": ["web", " web ", "api", ""],
        "properties": properties,
    }


def test_a_step_is_read_with_its_script_syntax_and_distinct_roles() -> None:
    step = plan.step_plan([snapshot(script_body="echo hi", syntax="Python")], 0)
    assert step.name == "Deploy web"
    assert step.target_roles == ("web", "api")
    assert step.syntax is ScriptSyntax.PYTHON
    assert step.script_body == "echo hi"


def test_bash_is_the_default_syntax() -> None:
    assert plan.step_plan([snapshot(script_body="echo hi")], 0).syntax is ScriptSyntax.BASH


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({}, 'step "Deploy web" has no script to run'),
        ({"script_body": "   "}, 'step "Deploy web" has no script to run'),
        ({"script_body": "x", "syntax": "powershell"}, "uses script syntax 'powershell'"),
    ],
)
def test_a_step_that_cannot_run_is_refused_with_a_clear_message(
    properties: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidStep, match=message):
        plan.step_plan([snapshot(**properties)], 0)


def test_a_malformed_snapshot_or_missing_step_is_refused() -> None:
    with pytest.raises(InvalidStep, match="malformed"):
        plan.step_plan([{"name": "no id"}], 0)
    with pytest.raises(InvalidStep, match="no step 2"):
        plan.step_plan([snapshot(script_body="x")], 1)
    with pytest.raises(InvalidStep, match="the release has no steps to deploy"):
        plan.step_plan([], 0)


def test_eligible_machines_skip_disabled_ones_and_repeat_none() -> None:
    web1, web2 = uuid.uuid4(), uuid.uuid4()
    chosen = eligible(
        [
            Machine(web2, "web-02"),
            Machine(uuid.uuid4(), "web-03", is_disabled=True),
            Machine(web1, "Web-01"),
            Machine(web2, "web-02"),
        ]
    )
    assert [machine.id for machine in chosen] == [web1, web2]


def test_the_no_targets_reason_names_the_environment_and_roles() -> None:
    assert (
        plan.no_targets_reason("Production", ("web",))
        == "No deployment targets in Production have any of the roles: web"
    )
    assert plan.no_targets_reason("Test", ("web", "api"), disabled=2).endswith(
        "roles: web, api (2 matching targets are disabled)"
    )
    assert plan.no_targets_reason("Test", ()) == "No deployment targets in Test"


def test_a_failed_step_names_each_failed_machine_and_exit_code() -> None:
    reason = plan.step_failed_reason(
        "Deploy web", [RunFailure("web-02", 3), RunFailure("web-01", None)]
    )
    assert reason == 'Step "Deploy web" failed on web-01 (no exit code), web-02 (exit code 3)'


def test_the_log_lines_read_like_octopus() -> None:
    assert (
        plan.deploying_line("Shop", "1.2.3", "Production")
        == "Deploying Shop release 1.2.3 to Production"
    )
    assert (
        plan.finished_line("Deploy web", "web-01", 0, None)
        == "Deploy web on web-01 finished with exit code 0"
    )
    assert "without an exit code: lost" in plan.finished_line("Deploy web", "web-01", None, "lost")
    assert (
        plan.waiting_reason("d-1", "Production")
        == "waiting for deployment d-1 of the same project to Production"
    )


def test_step_start_retries_back_off_to_a_ceiling() -> None:
    delays = [plan.retry_delay(failures) for failures in range(1, 10)]
    assert delays == sorted(delays)
    assert delays[0] == 1.0 and delays[-1] == plan.STEP_START_BACKOFF_SECONDS[-1]


def test_the_last_step_is_known() -> None:
    steps = [snapshot(script_body="a"), snapshot(script_body="b")]
    assert not plan.is_last_step(steps, 0)
    assert plan.is_last_step(steps, 1)
