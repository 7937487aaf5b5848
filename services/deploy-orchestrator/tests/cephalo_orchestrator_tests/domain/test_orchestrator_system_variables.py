"""Variables per (step, target): scopes, system names and aliases, prompts, outputs."""

from __future__ import annotations

import uuid

import pytest

from cephalo_common.variables import ScopeField, VariableValue
from cephalo_orchestrator.domain.planning import PlannedAction, PlannedStep, Target
from cephalo_orchestrator.domain.system_variables import (
    DeploymentContext,
    output_variables,
    resolve_step_variables,
)

CONTEXT = DeploymentContext(
    space_id="s",
    task_id="t",
    deployment_id="d",
    project_id="p",
    project_name="Web",
    release_id="r",
    release_number="1.2.3",
    environment_id="env-prod",
    environment_name="Production",
    channel_id="ch-1",
)
WEB1 = Target(uuid.UUID(int=1), "web-01", ("web",))
WEB2 = Target(uuid.UUID(int=2), "web-02", ("web", "api"))
ACTION = PlannedAction(0, "act-1", "Deploy", "cephalo.script")
STEP = PlannedStep(1, "step-1", "Deploy", 0, (ACTION,), roles=("web",))


def value(name: str, text: str, sensitive: bool = False, **scope: list[str]) -> VariableValue:
    return VariableValue(
        name=name,
        value=text,
        is_sensitive=sensitive,
        scope={ScopeField(field): frozenset(ids) for field, ids in scope.items()},
    )


VALUES = [
    value("Greeting", "hello"),
    value("Greeting", "hello prod", Environment=["env-prod"]),
    value("Greeting", "hello web-02", Machine=[str(WEB2.id)]),
    value("Port", "80"),
    value("Port", "8080", Role=["api"]),
    value("Port", "9090", Action=["act-other"]),
    value("Channel", "preview", Channel=["ch-2"]),
    value("Channel", "stable", Channel=["ch-1"]),
    value("Password", "s3cret!", sensitive=True),
    value("Octopus.Environment.Name", "spoofed"),
]


@pytest.mark.parametrize(
    ("machine", "name", "expected"),
    [
        (WEB1, "Greeting", "hello prod"),
        (WEB2, "Greeting", "hello web-02"),
        (None, "Greeting", "hello prod"),
        (WEB1, "Port", "80"),
        (WEB2, "Port", "8080"),
        (WEB1, "Channel", "stable"),
        (WEB1, "Cephalo.Environment.Name", "Production"),
        (WEB1, "Octopus.Environment.Name", "Production"),
        (WEB1, "Octopus.Machine.Name", "web-01"),
        (WEB2, "Cephalo.Machine.Roles", "web,api"),
        (WEB1, "Octopus.Action.Name", "Deploy"),
        (WEB1, "Cephalo.Step.Number", "1"),
        (WEB1, "Octopus.Release.Number", "1.2.3"),
    ],
)
def test_values_resolve_per_machine_and_system_variables_win(
    machine: Target | None, name: str, expected: str
) -> None:
    resolved = resolve_step_variables(CONTEXT, VALUES, step=STEP, action=ACTION, machine=machine)

    assert resolved.values[name] == expected


def test_sensitive_values_are_named_for_masking() -> None:
    resolved = resolve_step_variables(CONTEXT, VALUES, step=STEP, action=ACTION, machine=WEB1)

    assert resolved.sensitive_names == ["Password"]
    assert resolved.sensitive_values == frozenset({"s3cret!"})


def test_prompted_values_beat_flat_values_which_beat_the_release_but_not_system_names() -> None:
    resolved = resolve_step_variables(
        CONTEXT,
        VALUES,
        flat={"greeting": "flat", "Extra": "x", "Cephalo.Machine.Name": "spoofed"},
        prompted={"GREETING": "prompted", "Password": "typed-in"},
        step=STEP,
        action=ACTION,
        machine=WEB1,
    )

    folded = {name.lower(): text for name, text in resolved.values.items()}
    assert folded["greeting"] == "prompted"
    assert folded["extra"] == "x"
    assert resolved.values["Cephalo.Machine.Name"] == "web-01"
    assert resolved.sensitive_values == frozenset({"typed-in"})


def test_output_variables_of_earlier_steps_per_machine_and_unscoped() -> None:
    outputs = output_variables(
        [
            ("Build", "web-01", str(WEB1.id), {"Url": "http://one", "Token": "tok-1"}, ["Token"]),
            ("Build", "web-02", str(WEB2.id), {"Url": "http://two", "Token": "tok-2"}, ["Token"]),
        ]
    )

    on_web1 = resolve_step_variables(CONTEXT, [], outputs=outputs, machine=WEB1, step=STEP)
    on_server = resolve_step_variables(CONTEXT, [], outputs=outputs)

    assert on_web1.values["Cephalo.Action[Build].Output.Url"] == "http://one"
    assert on_web1.values["Octopus.Action[Build].Output.Url"] == "http://one"
    assert on_web1.values["Cephalo.Action[Build].Output[web-02].Url"] == "http://two"
    assert on_server.values["Cephalo.Action[Build].Output.Url"] == "http://two"
    assert "tok-1" in on_web1.sensitive_values and "tok-2" in on_web1.sensitive_values
    assert "Octopus.Action[Build].Output.Token" in on_web1.sensitive_names


def test_a_failing_deployment_exposes_its_error() -> None:
    resolved = resolve_step_variables(CONTEXT, [], error='Step "A" failed on web-01')

    assert resolved.values["Octopus.Deployment.Error"] == 'Step "A" failed on web-01'
