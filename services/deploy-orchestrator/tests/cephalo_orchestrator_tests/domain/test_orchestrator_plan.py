"""Reading a release's steps as a plan, choosing machines, and the words the task log uses."""

from __future__ import annotations

import pytest

from cephalo_common.agent_protocol import ScriptSyntax
from cephalo_common.contracts import ScriptActionSnapshot
from cephalo_orchestrator.domain import plan
from cephalo_orchestrator.domain.plan import InvalidStep, RunFailure


def snapshot(**properties: object) -> dict[str, object]:
    return {
        "id": "s1",
        "name": "Deploy web",
        "action_type": "cephalo.script",
        "target_roles": ["web", " web ", "api", ""],
        "properties": properties,
    }


def action(**properties: object) -> ScriptActionSnapshot:
    return ScriptActionSnapshot.model_validate(snapshot(**properties))


def test_an_action_is_read_with_its_script_and_syntax() -> None:
    script = plan.action_script(action(script_body="echo hi", syntax="Python"))
    assert script.syntax is ScriptSyntax.PYTHON
    assert script.body == "echo hi"


def test_bash_is_the_default_syntax() -> None:
    assert plan.action_script(action(script_body="echo hi")).syntax is ScriptSyntax.BASH


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({}, 'step "Deploy web" has no script to run'),
        ({"script_body": "   "}, 'step "Deploy web" has no script to run'),
        ({"script_body": "x", "syntax": "cobol"}, "uses script syntax 'cobol'"),
    ],
)
def test_an_action_that_cannot_run_is_refused_with_a_clear_message(
    properties: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidStep, match=message):
        plan.action_script(action(**properties))


def test_a_package_action_needs_no_script() -> None:
    package = ScriptActionSnapshot.model_validate(
        {**snapshot(), "action_type": "cephalo.package", "properties": {}}
    )
    assert plan.action_script(package).body == ""


def test_a_malformed_snapshot_or_an_empty_release_is_refused() -> None:
    with pytest.raises(InvalidStep, match="step 2 of the release is malformed"):
        plan.read_actions([snapshot(script_body="x"), {"name": "no id"}])
    with pytest.raises(InvalidStep, match="the release has no steps to deploy"):
        plan.read_actions([])


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
