"""How a dispatch becomes an agent script, and how results are read back from its log."""

from __future__ import annotations

import base64
import json

import pytest

from cephalo_agent_gateway.domain.step_actions import (
    ACTION_VARIABLE,
    RUNNER_BOOTSTRAP,
    ActionNotSupported,
    StepResults,
    plan_script,
)
from cephalo_common.agent_protocol import (
    CONTRACT_VERSION,
    STEP_RUNNER_FEATURE,
    Capabilities,
    LogSource,
    ProcessOutput,
    ScriptSyntax,
)
from cephalo_common.contracts import PackageAcquisitionV1, StepDispatchV1
from cephalo_common.variables.service_messages import encode_set_variable


def capabilities(*features: str) -> Capabilities:
    return Capabilities(
        contract_versions=[CONTRACT_VERSION, *features],
        agent_version="1",
        os="Linux",
        shells=["bash", "python"],
    )


def dispatch(**fields: object) -> StepDispatchV1:
    values: dict[str, object] = {
        "ticket": "t-1",
        "task_id": "task",
        "step_run_id": "step",
        "machine_id": "m",
        "script_body": "echo hi",
        "variables": {"Password": "pw-123456", "Name": "web"},
        "sensitive_variables": ["Password"],
    }
    values.update(fields)
    return StepDispatchV1.model_validate(values)


def test_an_agent_with_the_runner_gets_the_action_only_as_a_sensitive_variable() -> None:
    package = PackageAcquisitionV1(package_id="Shop", version="1.0.0", url="http://x/s?sig=1")
    plan = plan_script(
        dispatch(action_type="cephalo.deploy-package", packages=[package]),
        capabilities(STEP_RUNNER_FEATURE),
        "web-01",
    )
    assert plan.via_runner and plan.syntax is ScriptSyntax.PYTHON
    assert plan.script_body == RUNNER_BOOTSTRAP and "sig=1" not in plan.script_body
    assert plan.sensitive_variables == ["Password", ACTION_VARIABLE]
    action = json.loads(plan.variables[ACTION_VARIABLE])
    assert action["action_type"] == "cephalo.deploy-package"
    assert action["packages"][0]["url"] == "http://x/s?sig=1"
    assert action["sensitive_variables"] == ["Password"]
    assert plan.variables["Name"] == "web"


def test_an_older_agent_runs_plain_scripts_and_refuses_typed_steps() -> None:
    plan = plan_script(dispatch(), capabilities(), "web-01")
    assert not plan.via_runner and plan.script_body == "echo hi"
    assert ACTION_VARIABLE not in plan.variables
    with pytest.raises(ActionNotSupported, match=r"Machine web-01 cannot run cephalo\.deploy"):
        plan_script(dispatch(action_type="cephalo.deploy-package"), capabilities(), "web-01")


def test_a_plain_shell_script_skips_the_runner_and_its_secrets() -> None:
    plan = plan_script(dispatch(), capabilities(STEP_RUNNER_FEATURE), "web-01")
    assert not plan.via_runner and plan.script_body == "echo hi"
    assert plan.syntax is ScriptSyntax.BASH
    assert (plan.variables, plan.sensitive_variables) == ({"Name": "web"}, [])


@pytest.mark.parametrize(
    "fields",
    [
        {"script_body": "echo #{Name}"},
        {"script_body": "set_octopusvariable Color blue"},
        {"script_body": "echo $(get_cephalovariable Password)"},
        {"script_body": "new_OctopusArtifact report.txt"},
        {"script_body": "fail_step 'no'"},
        {"script_body": "echo \"##cephalo[setVariable name='Qw==' value='Yg==']\""},
        {"script_body": "print('hi')", "syntax": "python"},
        {"script_body": "", "action_properties": {"Octopus.Action.Script.ScriptBody": "echo"}},
        {"action_type": "cephalo.deploy-package"},
    ],
    ids=["substitution", "helper", "get", "artifact", "fail", "message", "python", "empty", "pkg"],
)
def test_a_step_that_uses_the_runner_goes_through_it(fields: dict[str, object]) -> None:
    plan = plan_script(dispatch(**fields), capabilities(STEP_RUNNER_FEATURE), "web-01")
    assert plan.via_runner and plan.script_body == RUNNER_BOOTSTRAP


def line(sequence: int, text: str, source: LogSource = LogSource.STDOUT) -> ProcessOutput:
    return ProcessOutput(sequence=sequence, source=source, text=text, time="")


def test_service_messages_become_results_and_plain_lines() -> None:
    summary = {
        "output_variables": {"A": "1", "Token": "tok-xyz"},
        "sensitive_output_variables": ["Token"],
        "artifacts": [{"path": "/w/r.txt", "name": "r.txt", "size": 3}],
    }
    data = base64.b64encode(json.dumps(summary).encode()).decode()
    results = StepResults()
    published = results.absorb(
        [
            line(1, "hello"),
            line(2, encode_set_variable("Token", "tok-xyz", sensitive=True)),
            line(3, encode_set_variable("A", "1", dialect="octopus")),
            line(4, encode_set_variable("Err", "e"), LogSource.STDERR),
            line(5, f"##cephalo[stepResults data='{data}']"),
        ]
    )
    assert [p.text for p in published[:3]] == [
        "hello",
        "Set sensitive output variable 'Token'.",
        "Set output variable 'A'.",
    ]
    assert published[3].text.startswith("##cephalo[setVariable"), "stderr is never parsed"
    assert published[4].text == "Step results: 2 output variable(s), 1 artifact(s)."
    assert [p.sequence for p in published] == [1, 2, 3, 4, 5]
    assert results.output_variables == {"Token": "tok-xyz", "A": "1"}
    assert results.sensitive_output_variables == ["Token"]
    assert [(a.name, a.size) for a in results.artifact_list] == [("r.txt", 3)]
    assert results.summarised
