from __future__ import annotations

from cephalo_orchestrator.domain.system_variables import (
    DeploymentContext,
    step_variables,
    system_variables,
)

CONTEXT = DeploymentContext(
    space_id="s",
    task_id="t",
    deployment_id="d",
    project_id="p",
    project_name="Web",
    release_id="r",
    release_number="1.2.3",
    environment_id="e",
    environment_name="Production",
)


def test_system_variables_use_octopus_names() -> None:
    variables = system_variables(CONTEXT, step_name="Deploy", machine_id="m", machine_name="web-01")
    assert variables["Octopus.Environment.Name"] == "Production"
    assert variables["Octopus.Release.Number"] == "1.2.3"
    assert variables["Octopus.Machine.Name"] == "web-01"
    assert variables["Octopus.Action.Name"] == "Deploy"


def test_system_variables_win_over_user_variables_whatever_the_case() -> None:
    system = system_variables(CONTEXT, step_name="Deploy", machine_id="m", machine_name="web-01")
    merged = step_variables({"octopus.environment.name": "spoofed", "Greeting": "hi"}, system)
    assert merged["Octopus.Environment.Name"] == "Production"
    assert "octopus.environment.name" not in merged
    assert merged["Greeting"] == "hi"
