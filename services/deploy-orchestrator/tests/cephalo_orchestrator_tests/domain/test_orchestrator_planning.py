"""Planning, table-driven: targets, exclusions, conditions, groups, windows and limits."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from cephalo_common.contracts import (
    ConnectivityPolicyV1,
    DeploymentOptionsV1,
    ScriptActionSnapshot,
)
from cephalo_orchestrator.domain.planning import (
    DeploymentPlan,
    Limits,
    PlannedStep,
    Progress,
    RunKey,
    Target,
    build_plan,
    decide,
    next_runs,
    simulate,
)

ENV = "Production"


def machine(name: str, *roles: str, disabled: bool = False, health: str = "Healthy") -> Target:
    return Target(uuid.uuid5(uuid.NAMESPACE_DNS, name), name, roles, disabled, health)


def action(name: str, roles: list[str] | None = None, **properties: Any) -> ScriptActionSnapshot:
    return ScriptActionSnapshot(
        id=f"id-{name}",
        name=name,
        action_type=properties.pop("action_type", "cephalo.script"),
        target_roles=roles if roles is not None else ["web"],
        properties={"script_body": "echo", **properties},
    )


WEB = [machine("web-01", "web"), machine("web-02", "web", "api"), machine("db-01", "db")]


def plan_of(
    actions: list[ScriptActionSnapshot],
    machines: list[Target] = WEB,
    limits: Limits = Limits(),
    **options: Any,
) -> DeploymentPlan:
    return build_plan(
        actions, machines, DeploymentOptionsV1(**options), environment_name=ENV, limits=limits
    )


def names(step: PlannedStep) -> list[str]:
    return [target.name for target in step.targets]


def order_of(plan: DeploymentPlan, variables: dict[str, str] | None = None) -> list[str]:
    """The simulated start order as 'action@machine' (machine names looked up in the plan)."""
    by_id = {t.id: t.name for step in plan.steps for t in step.targets}
    runs, _ = simulate(plan, variables_for=lambda _: variables or {})
    return [
        f"{plan.action(run.key.action)[1].name}@{by_id.get(run.key.machine_id, 'server')}"  # type: ignore[arg-type]
        for run in runs
    ]


@pytest.mark.parametrize(
    ("machines", "roles", "options", "targets", "excluded"),
    [
        (WEB, ["web"], {}, ["web-01", "web-02"], []),
        (WEB, ["WEB"], {}, ["web-01", "web-02"], []),
        (WEB, ["api", "db"], {}, ["db-01", "web-02"], []),
        (WEB, [], {}, ["db-01", "web-01", "web-02"], []),
        (
            WEB,
            ["web"],
            {"specific_machine_ids": ["web-02"]},
            ["web-02"],
            [("web-01", "not one of the machines chosen for this deployment")],
        ),
        (
            WEB,
            ["web"],
            {"excluded_machine_ids": [str(WEB[0].id)]},
            ["web-02"],
            [("web-01", "excluded by the person deploying")],
        ),
        (
            [machine("web-01", "web", disabled=True), WEB[1]],
            ["web"],
            {},
            ["web-02"],
            [("web-01", "disabled")],
        ),
        (
            [machine("web-01", "web", health="Unavailable"), WEB[1]],
            ["web"],
            {},
            ["web-01", "web-02"],
            [],
        ),
        (
            [machine("web-01", "web", health="Unavailable"), WEB[1]],
            ["web"],
            {"connectivity": ConnectivityPolicyV1(skip_machine_behavior="SkipUnavailableMachines")},
            ["web-02"],
            [("web-01", "unavailable (the connectivity policy skips unavailable machines)")],
        ),
        (
            [machine("web-01", "web", health="Unhealthy"), WEB[1]],
            ["web"],
            {},
            ["web-01", "web-02"],
            [],
        ),
        (
            [machine("web-01", "web", health="Unhealthy"), WEB[1]],
            ["web"],
            {"connectivity": ConnectivityPolicyV1(exclude_unhealthy_targets=True)},
            ["web-02"],
            [("web-01", "unhealthy (the connectivity policy excludes unhealthy targets)")],
        ),
    ],
    ids=[
        "tag",
        "tag-case-insensitive",
        "any-of-tags",
        "no-tag-means-all",
        "specific-machines",
        "excluded-machines",
        "disabled",
        "unavailable-kept-by-default",
        "unavailable-skipped-by-policy",
        "unhealthy-kept-by-default",
        "unhealthy-excluded-by-policy",
    ],
)
def test_targets_and_exclusions(
    machines: list[Target],
    roles: list[str],
    options: dict[str, Any],
    targets: list[str],
    excluded: list[tuple[str, str]],
) -> None:
    plan = plan_of([action("Deploy", roles)], machines, **options)

    assert plan.error is None
    (step,) = plan.steps
    assert names(step) == targets
    assert [(e.machine_name, e.reason) for e in step.excluded] == excluded


@pytest.mark.parametrize(
    ("allow", "error", "skip_reason"),
    [
        (
            False,
            'No deployment targets in Production have any of the roles: cache (step "Deploy")',
            None,
        ),
        (
            True,
            None,
            "No deployment targets in Production have any of the roles: cache; "
            'step "Deploy" is skipped (the project allows deployments to no targets)',
        ),
    ],
    ids=["fails", "allowed-by-policy"],
)
def test_a_step_without_targets(allow: bool, error: str | None, skip_reason: str | None) -> None:
    policy = ConnectivityPolicyV1(allow_deployments_to_no_targets=allow)
    plan = plan_of([action("Deploy", ["cache"])], connectivity=policy)

    assert plan.error == error
    assert plan.steps[0].skip_reason == skip_reason


def test_no_targets_names_why_the_matching_ones_are_excluded() -> None:
    plan = plan_of([action("Deploy", ["web"])], [machine("web-01", "web", disabled=True)])

    assert plan.error == (
        "No deployment targets in Production have any of the roles: web "
        '(1 matching target is excluded: disabled) (step "Deploy")'
    )


@pytest.mark.parametrize(
    ("skip", "required", "skipped"),
    [
        (["Deploy"], False, "skipped by the person deploying"),
        (["id-Deploy"], False, "skipped by the person deploying"),
        (["Deploy"], True, None),
        ([], False, None),
    ],
    ids=["by-name", "by-id", "required-is-never-skipped", "not-skipped"],
)
def test_skipped_and_required_steps(skip: list[str], required: bool, skipped: str | None) -> None:
    plan = plan_of([action("Deploy", is_required=required)], skip_action_ids=skip)

    assert plan.steps[0].skip_reason == skipped
    assert plan.steps[0].is_required is required
    assert order_of(plan) == ([] if skipped else ["Deploy@web-01", "Deploy@web-02"])


@pytest.mark.parametrize(
    ("condition", "expression", "failing", "variables", "runs", "reason"),
    [
        ("Success", None, False, {}, True, None),
        ("Success", None, True, {}, False, "an earlier step failed"),
        ("Failure", None, False, {}, False, "it runs only when an earlier step failed"),
        ("Failure", None, True, {}, True, None),
        ("Always", None, True, {}, True, None),
        ("Always", None, False, {}, True, None),
        ("Variable", "#{Run}", False, {"Run": "True"}, True, None),
        ("Variable", "#{Run}", True, {"Run": "true"}, True, None),
        (
            "Variable",
            "#{Run}",
            False,
            {"Run": "False"},
            False,
            "its run condition '#{Run}' is false",
        ),
        ("Variable", "#{Run}", False, {}, False, "its run condition '#{Run}' is false"),
    ],
)
def test_run_conditions(
    condition: str,
    expression: str | None,
    failing: bool,
    variables: dict[str, str],
    runs: bool,
    reason: str | None,
) -> None:
    plan = plan_of([action("Deploy", condition=condition, condition_expression=expression)])

    decision = decide(plan.steps[0], failing=failing, variables=variables)

    assert (decision.runs, decision.reason) == (runs, reason)


def test_an_action_condition_leaves_out_one_child_action() -> None:
    step = {"step_id": "s", "step_name": "Roll", "window_size": 1}
    plan = plan_of(
        [
            action("A", **step),
            action("B", **step, action_condition="Variable", action_condition_expression="#{X}"),
        ]
    )

    assert [a.name for a in decide(plan.steps[0], failing=False, variables={}).step.actions] == [
        "A"
    ]
    assert order_of(plan, {"X": "false"}) == ["A@web-01", "A@web-02"]


@pytest.mark.parametrize(
    ("triggers", "groups"),
    [
        (["StartAfterPrevious"] * 3, [0, 1, 2]),
        (["StartAfterPrevious", "StartWithPrevious", "StartAfterPrevious"], [0, 0, 1]),
        (["StartWithPrevious", "StartWithPrevious", "StartAfterPrevious"], [0, 0, 1]),
        (["StartAfterPrevious", "StartAfterPrevious", "StartWithPrevious"], [0, 1, 1]),
    ],
)
def test_parallel_groups(triggers: list[str], groups: list[int]) -> None:
    plan = plan_of([action(f"S{i}", start_trigger=t) for i, t in enumerate(triggers)])

    assert [step.group for step in plan.steps] == groups


def test_steps_run_one_after_another_and_parallel_steps_together() -> None:
    plan = plan_of(
        [
            action("A", ["db"]),
            action("B", ["db"], start_trigger="StartWithPrevious"),
            action("C", ["api"], start_trigger="StartWithPrevious"),
            action("D", ["db"]),
        ]
    )

    # B waits for A on db-01 (one step at a time per target); C runs beside A.
    assert order_of(plan) == ["A@db-01", "C@web-02", "B@db-01", "D@db-01"]
    runs, _ = simulate(plan, variables_for=lambda _: {})
    b_run = runs[2]
    assert b_run.after == runs[0].key


def test_max_parallel_steps_limits_a_group() -> None:
    group = [action("A", ["db"])] + [
        action(name, ["api"] if name == "B" else ["web"], start_trigger="StartWithPrevious")
        for name in ("B", "C")
    ]
    plan = plan_of(group, WEB, Limits(max_parallel_steps=2))

    assert order_of(plan) == ["A@db-01", "B@web-02", "C@web-01", "C@web-02"]
    first = next_runs(plan.group(0), Progress(), max_parallel_steps=2)
    assert [plan.action(key.action)[1].name for key in first] == ["A", "B"]


@pytest.mark.parametrize(
    ("count", "configured", "limits", "first_wave"),
    [
        (12, None, Limits(), 10),
        (12, 3, Limits(), 3),
        (12, None, Limits(max_parallel_targets=4), 4),
        (5, None, Limits(), 5),
    ],
    ids=["default-10", "per-step", "setting", "fewer-than-limit"],
)
def test_max_parallel_targets(
    count: int, configured: int | None, limits: Limits, first_wave: int
) -> None:
    machines = [machine(f"m-{i:02}", "web") for i in range(count)]
    props = {"max_parallelism": configured} if configured else {}
    plan = plan_of([action("Deploy", **props)], machines, limits)

    first = next_runs(plan.steps, Progress(), max_parallel_steps=10)
    runs, _ = simulate(plan, variables_for=lambda _: {})

    assert len(first) == first_wave
    assert len(runs) == count
    assert all(run.after is None for run in runs[:first_wave])
    assert all(run.after is not None for run in runs[first_wave:])


def test_a_rolling_window_runs_child_actions_per_machine() -> None:
    machines = [machine(f"m-{i}", "web") for i in range(1, 5)]
    step = {"step_id": "roll", "step_name": "Roll", "window_size": 2}
    plan = plan_of([action("Stop", **step), action("Start", **step)], machines)

    (rolling,) = plan.steps
    assert rolling.name == "Roll" and [a.name for a in rolling.actions] == ["Stop", "Start"]
    assert order_of(plan) == [
        "Stop@m-1",
        "Stop@m-2",
        "Start@m-1",
        "Start@m-2",
        "Stop@m-3",
        "Stop@m-4",
        "Start@m-3",
        "Start@m-4",
    ]


@pytest.mark.parametrize(
    ("done", "active", "expected"),
    [
        ([], [], ["Stop@m-1", "Stop@m-2"]),
        (["Stop@m-1"], ["Stop@m-2"], ["Start@m-1"]),
        (["Stop@m-1", "Start@m-1"], ["Stop@m-2"], ["Stop@m-3"]),
        (["Stop@m-1", "Start@m-1", "Stop@m-2", "Start@m-2"], [], ["Stop@m-3"]),
    ],
)
def test_the_window_counts_machines_in_progress(
    done: list[str], active: list[str], expected: list[str]
) -> None:
    machines = [machine(f"m-{i}", "web") for i in range(1, 4)]
    step = {"step_id": "roll", "step_name": "Roll", "window_size": 2}
    plan = plan_of([action("Stop", **step), action("Start", **step)], machines)
    keys = {
        f"{a.name}@{t.name}": RunKey(a.index, t.id)
        for t in plan.steps[0].targets
        for a in plan.steps[0].actions
    }
    progress = Progress(
        active=frozenset(keys[k] for k in active), done=frozenset(keys[k] for k in done)
    )

    started = next_runs(plan.steps, progress, max_parallel_steps=10)

    assert started == [keys[k] for k in expected]


def test_nothing_new_starts_in_a_group_after_a_failure() -> None:
    plan = plan_of([action("Deploy")], WEB, Limits(max_parallel_targets=1))
    first = next_runs(plan.steps, Progress(), max_parallel_steps=10)

    after_failure = Progress(done=frozenset(first), failed=frozenset(first))

    assert next_runs(plan.steps, after_failure, max_parallel_steps=10) == []


def test_a_manual_intervention_step_runs_once_on_the_server() -> None:
    plan = plan_of(
        [action("Approve", [], action_type="cephalo.manual"), action("Deploy")],
    )

    assert plan.error is None and plan.steps[0].on_server and plan.steps[0].targets == ()
    assert order_of(plan) == ["Approve@server", "Deploy@web-01", "Deploy@web-02"]


def test_the_plan_survives_a_json_round_trip() -> None:
    plan = plan_of(
        [action("A"), action("B", ["db"], start_trigger="StartWithPrevious", window_size=1)],
        WEB,
        excluded_machine_ids=["web-02"],
    )

    assert DeploymentPlan.from_json(plan.to_json()) == plan
