"""Planning: which steps run on which targets, and why a step or a target is left out. Pure.

The release's snapshot is a flat list of actions; consecutive actions sharing a `step_id`
form one step (a rolling step holds several child actions). A step that starts with the
previous one joins its parallel *group*; groups run one after another. Targets come from
the environment's machines filtered by the step's target tags, the deployer's choice of
machines and the project's connectivity policy. Run conditions that depend on how the
deployment goes (Success, Failure) are decided when the group starts (`decide`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from cephalo_common.contracts import DeploymentOptionsV1, ScriptActionSnapshot
from cephalo_common.variables import evaluate_truthy

MANUAL_INTERVENTION = "cephalo.manual"
RUNS_ON_SERVER = frozenset({MANUAL_INTERVENTION})
DEFAULT_MAX_PARALLEL_TARGETS = 10
DEFAULT_MAX_PARALLEL_STEPS = 10
SKIP_UNAVAILABLE = "SkipUnavailableMachines"


class Health(StrEnum):
    HEALTHY = "Healthy"
    HAS_WARNINGS = "HasWarnings"
    UNHEALTHY = "Unhealthy"
    UNAVAILABLE = "Unavailable"
    UNKNOWN = "Unknown"


class Condition(StrEnum):
    SUCCESS = "Success"
    FAILURE = "Failure"
    ALWAYS = "Always"
    VARIABLE = "Variable"


@dataclass(frozen=True)
class Target:
    """A deployment target as agent-gateway describes it."""

    id: uuid.UUID
    name: str
    roles: tuple[str, ...] = ()
    is_disabled: bool = False
    health_status: str = Health.HEALTHY.value


@dataclass(frozen=True)
class Exclusion:
    machine_id: uuid.UUID
    machine_name: str
    reason: str


@dataclass(frozen=True)
class PlannedAction:
    index: int
    id: str
    name: str
    action_type: str
    condition: str = Condition.SUCCESS.value
    condition_expression: str | None = None
    skip_reason: str | None = None


@dataclass(frozen=True)
class PlannedStep:
    number: int
    step_id: str
    name: str
    group: int
    actions: tuple[PlannedAction, ...]
    roles: tuple[str, ...] = ()
    condition: str = Condition.SUCCESS.value
    condition_expression: str | None = None
    is_required: bool = False
    window_size: int | None = None
    max_parallel_targets: int = DEFAULT_MAX_PARALLEL_TARGETS
    targets: tuple[Target, ...] = ()
    excluded: tuple[Exclusion, ...] = ()
    skip_reason: str | None = None

    @property
    def on_server(self) -> bool:
        return all(action.action_type in RUNS_ON_SERVER for action in self.actions)

    @property
    def window(self) -> int:
        """How many targets may be in progress at once (a rolling window or the step limit)."""
        return self.window_size or self.max_parallel_targets


@dataclass(frozen=True)
class Limits:
    max_parallel_steps: int = DEFAULT_MAX_PARALLEL_STEPS
    max_parallel_targets: int = DEFAULT_MAX_PARALLEL_TARGETS


@dataclass(frozen=True)
class DeploymentPlan:
    steps: tuple[PlannedStep, ...]
    max_parallel_steps: int = DEFAULT_MAX_PARALLEL_STEPS
    error: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def group_count(self) -> int:
        return max((step.group for step in self.steps), default=-1) + 1

    def group(self, index: int) -> list[PlannedStep]:
        return [step for step in self.steps if step.group == index]

    def action(self, index: int) -> tuple[PlannedStep, PlannedAction]:
        for step in self.steps:
            for action in step.actions:
                if action.index == index:
                    return step, action
        raise KeyError(index)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = _jsonable(asdict(self))
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DeploymentPlan:
        steps = tuple(_step_from_json(step) for step in data["steps"])
        return cls(
            steps=steps,
            max_parallel_steps=int(data["max_parallel_steps"]),
            error=data.get("error"),
            notes=tuple(data.get("notes") or ()),
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _step_from_json(data: Mapping[str, Any]) -> PlannedStep:
    targets = tuple(
        Target(
            id=uuid.UUID(t["id"]),
            name=t["name"],
            roles=tuple(t["roles"]),
            is_disabled=t["is_disabled"],
            health_status=t["health_status"],
        )
        for t in data["targets"]
    )
    excluded = tuple(
        Exclusion(uuid.UUID(e["machine_id"]), e["machine_name"], e["reason"])
        for e in data["excluded"]
    )
    actions = tuple(PlannedAction(**action) for action in data["actions"])
    scalars = {
        key: value
        for key, value in data.items()
        if key not in {"targets", "excluded", "actions", "roles"}
    }
    return PlannedStep(
        **scalars, actions=actions, roles=tuple(data["roles"]), targets=targets, excluded=excluded
    )


# --- building the plan -------------------------------------------------------------------


@dataclass(frozen=True)
class _RawStep:
    step_id: str
    name: str
    roles: tuple[str, ...]
    properties: Mapping[str, Any]
    actions: list[tuple[int, ScriptActionSnapshot]]


def _raw_steps(actions: Sequence[ScriptActionSnapshot]) -> list[_RawStep]:
    """Consecutive actions with the same `step_id` are one step (a legacy action is its own)."""
    steps: list[_RawStep] = []
    for index, action in enumerate(actions):
        step_id = str(action.properties.get("step_id") or action.id)
        if steps and steps[-1].step_id == step_id:
            steps[-1].actions.append((index, action))
            continue
        roles = tuple(dict.fromkeys(r.strip() for r in action.target_roles if r.strip()))
        name = str(action.properties.get("step_name") or action.name)
        steps.append(_RawStep(step_id, name, roles, action.properties, [(index, action)]))
    return steps


def build_plan(
    actions: Sequence[ScriptActionSnapshot],
    machines: Iterable[Target],
    options: DeploymentOptionsV1,
    *,
    environment_name: str,
    limits: Limits = Limits(),
) -> DeploymentPlan:
    """Steps x targets for one deployment; `error` says why it cannot run at all."""
    if not actions:
        return DeploymentPlan((), limits.max_parallel_steps, error="the release has no steps")
    known = list(machines)
    skip = {ref.lower() for ref in options.skip_action_ids}
    planned: list[PlannedStep] = []
    errors: list[str] = []
    group = -1
    for number, raw in enumerate(_raw_steps(actions), start=1):
        with_previous = raw.properties.get("start_trigger") == "StartWithPrevious"
        group = group if with_previous and planned else group + 1
        step = _plan_step(number, raw, group, known, options, skip, limits)
        if step.skip_reason is None and not step.on_server and not step.targets:
            if options.connectivity.allow_deployments_to_no_targets:
                step = replace(step, skip_reason=_no_targets(step, environment_name, True))
            else:
                errors.append(_no_targets(step, environment_name, False))
        planned.append(step)
    return DeploymentPlan(
        tuple(planned), limits.max_parallel_steps, error=errors[0] if errors else None
    )


def _plan_step(
    number: int,
    raw: _RawStep,
    group: int,
    machines: Sequence[Target],
    options: DeploymentOptionsV1,
    skip: set[str],
    limits: Limits,
) -> PlannedStep:
    planned_actions = tuple(_plan_action(index, action, skip) for index, action in raw.actions)
    is_required = any(bool(a.properties.get("is_required")) for _, a in raw.actions)
    step = PlannedStep(
        number=number,
        step_id=raw.step_id,
        name=raw.name,
        group=group,
        actions=planned_actions,
        roles=raw.roles,
        condition=str(raw.properties.get("condition") or Condition.SUCCESS.value),
        condition_expression=raw.properties.get("condition_expression"),
        is_required=is_required,
        window_size=_positive(raw.properties.get("window_size")),
        max_parallel_targets=_positive(raw.properties.get("max_parallelism"))
        or limits.max_parallel_targets,
    )
    if all(action.skip_reason for action in planned_actions):
        return replace(step, skip_reason="skipped by the person deploying")
    if step.on_server:
        return step
    targets, excluded = select_targets(machines, raw.roles, options)
    return replace(step, targets=tuple(targets), excluded=tuple(excluded))


def _plan_action(index: int, action: ScriptActionSnapshot, skip: set[str]) -> PlannedAction:
    properties = action.properties
    skipped = action.id.lower() in skip or action.name.lower() in skip
    required = bool(properties.get("is_required"))
    return PlannedAction(
        index=index,
        id=action.id,
        name=action.name,
        action_type=action.action_type,
        condition=str(properties.get("action_condition") or Condition.SUCCESS.value),
        condition_expression=properties.get("action_condition_expression"),
        skip_reason="skipped by the person deploying" if skipped and not required else None,
    )


def _positive(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def select_targets(
    machines: Iterable[Target], roles: Sequence[str], options: DeploymentOptionsV1
) -> tuple[list[Target], list[Exclusion]]:
    """The machines with any of `roles` (all when none), split into targets and exclusions."""
    wanted = {role.lower() for role in roles}
    unique = {
        machine.id: machine
        for machine in machines
        if not wanted or wanted & {role.lower() for role in machine.roles}
    }
    ordered = sorted(unique.values(), key=lambda m: (m.name.lower(), str(m.id)))
    targets: list[Target] = []
    excluded: list[Exclusion] = []
    for machine in ordered:
        reason = exclusion_reason(machine, options)
        if reason is None:
            targets.append(machine)
        else:
            excluded.append(Exclusion(machine.id, machine.name, reason))
    return targets, excluded


def exclusion_reason(machine: Target, options: DeploymentOptionsV1) -> str | None:
    """Why `machine` takes no part in the deployment, or None when it does."""
    specific = {ref.lower() for ref in options.specific_machine_ids}
    if specific and str(machine.id) not in specific and machine.name.lower() not in specific:
        return "not one of the machines chosen for this deployment"
    excluded = {ref.lower() for ref in options.excluded_machine_ids}
    if str(machine.id) in excluded or machine.name.lower() in excluded:
        return "excluded by the person deploying"
    if machine.is_disabled:
        return "disabled"
    policy = options.connectivity
    if machine.health_status == Health.UNAVAILABLE and (
        policy.skip_machine_behavior == SKIP_UNAVAILABLE
    ):
        return "unavailable (the connectivity policy skips unavailable machines)"
    if machine.health_status == Health.UNHEALTHY and policy.exclude_unhealthy_targets:
        return "unhealthy (the connectivity policy excludes unhealthy targets)"
    return None


def _no_targets(step: PlannedStep, environment: str, allowed: bool) -> str:
    if step.roles:
        what = (
            f"No deployment targets in {environment} have any of the roles: {', '.join(step.roles)}"
        )
    else:
        what = f"No deployment targets in {environment}"
    if step.excluded:
        count = len(step.excluded)
        reasons = sorted({exclusion.reason for exclusion in step.excluded})
        what += f" ({count} matching {'target is' if count == 1 else 'targets are'} excluded: "
        what += "; ".join(reasons) + ")"
    if allowed:
        return (
            f'{what}; step "{step.name}" is skipped (the project allows deployments to no targets)'
        )
    return f'{what} (step "{step.name}")'


# --- run conditions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    step: PlannedStep
    runs: bool
    reason: str | None = None


def decide(step: PlannedStep, *, failing: bool, variables: Mapping[str, str]) -> Decision:
    """Whether `step` runs, given whether an earlier step failed; its actions are filtered by
    their own conditions (a step whose every action is left out does not run)."""
    if step.skip_reason is not None:
        return Decision(step, False, step.skip_reason)
    runs, reason = _condition_holds(
        step.condition, step.condition_expression, failing=failing, variables=variables
    )
    if not runs:
        return Decision(step, False, reason)
    actions = []
    for action in step.actions:
        if action.skip_reason is not None:
            continue
        if action.condition == Condition.VARIABLE and not evaluate_truthy(
            action.condition_expression or "", variables
        ):
            continue
        actions.append(action)
    if not actions:
        return Decision(step, False, "the run condition of every action is false")
    return Decision(replace(step, actions=tuple(actions)), True)


def _condition_holds(
    condition: str, expression: str | None, *, failing: bool, variables: Mapping[str, str]
) -> tuple[bool, str | None]:
    if condition == Condition.ALWAYS:
        return True, None
    if condition == Condition.FAILURE:
        return (True, None) if failing else (False, "it runs only when an earlier step failed")
    if condition == Condition.VARIABLE:
        if evaluate_truthy(expression or "", variables):
            return True, None
        return False, f"its run condition {expression!r} is false"
    if failing:
        return False, "an earlier step failed"
    return True, None


# --- scheduling ----------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class RunKey:
    """One action on one target (None: on the server), the unit the scheduler starts."""

    action: int
    machine_id: uuid.UUID | None


@dataclass(frozen=True)
class Progress:
    active: frozenset[RunKey] = frozenset()
    done: frozenset[RunKey] = frozenset()
    failed: frozenset[RunKey] = frozenset()


def step_keys(step: PlannedStep, machine: Target | None) -> list[RunKey]:
    machine_id = machine.id if machine else None
    return [RunKey(action.index, machine_id) for action in step.actions]


def _machines(step: PlannedStep) -> Sequence[Target | None]:
    return [None] if step.on_server else step.targets


def step_done(step: PlannedStep, progress: Progress) -> bool:
    return all(
        key in progress.done for machine in _machines(step) for key in step_keys(step, machine)
    )


def group_done(steps: Sequence[PlannedStep], progress: Progress) -> bool:
    """Every step finished, or something failed and nothing is still running."""
    keys = {key for step in steps for m in _machines(step) for key in step_keys(step, m)}
    if progress.failed & keys:
        return not (progress.active & keys)
    return all(step_done(step, progress) for step in steps)


def next_runs(
    steps: Sequence[PlannedStep], progress: Progress, *, max_parallel_steps: int
) -> list[RunKey]:
    """What to start now in a group of steps that run: nothing after a failure; otherwise, per
    step in order, within the step limit, the targets' next actions within the step's window,
    never two at once on one target."""
    keys = {key for step in steps for m in _machines(step) for key in step_keys(step, m)}
    if progress.failed & keys:
        return []
    busy = {key.machine_id for key in progress.active if key.machine_id is not None}
    running_steps = sum(1 for step in steps if _active_in(step, progress.active))
    started: list[RunKey] = []
    for step in steps:
        if step_done(step, progress):
            continue
        was_running = _active_in(step, progress.active)
        if not was_running and running_steps >= max_parallel_steps:
            continue
        new = _step_next(step, progress, busy)
        if new and not was_running:
            running_steps += 1
        started.extend(new)
    return started


def _active_in(step: PlannedStep, active: frozenset[RunKey]) -> bool:
    return any(key in active for m in _machines(step) for key in step_keys(step, m))


def _step_next(step: PlannedStep, progress: Progress, busy: set[uuid.UUID]) -> list[RunKey]:
    in_progress = 0
    candidates: list[tuple[RunKey, bool]] = []
    for machine in _machines(step):
        keys = step_keys(step, machine)
        pending = [key for key in keys if key not in progress.done]
        if not pending:
            continue
        begun = len(pending) < len(keys) or pending[0] in progress.active
        in_progress += begun
        if pending[0] in progress.active:
            continue
        if machine is not None and machine.id in busy:
            continue
        candidates.append((pending[0], begun))
    started: list[RunKey] = []
    free = step.window - in_progress
    for key, begun in candidates:
        if not begun:
            if free <= 0:
                continue
            free -= 1
        started.append(key)
        if key.machine_id is not None:
            busy.add(key.machine_id)
    return started


# --- simulation (the plan endpoint's order) ------------------------------------------------


@dataclass(frozen=True)
class PlannedRun:
    """The `position`-th run to start, and the run whose end lets it start (None: at once)."""

    position: int
    key: RunKey
    after: RunKey | None


def simulate(
    plan: DeploymentPlan,
    *,
    variables_for: Callable[[PlannedStep], Mapping[str, str]],
) -> tuple[list[PlannedRun], list[Decision]]:
    """The order runs start in when every run succeeds and runs end first-started-first.

    A deployment whose runs end in that order starts exactly these runs in this order; when
    runs end in another order, the same runs start, in an order the same rules decide.
    """
    order: list[PlannedRun] = []
    decisions: list[Decision] = []
    done: set[RunKey] = set()
    last: RunKey | None = None
    for group in range(plan.group_count):
        chosen = [
            decide(step, failing=False, variables=variables_for(step)) for step in plan.group(group)
        ]
        decisions.extend(chosen)
        steps = [decision.step for decision in chosen if decision.runs]
        active: list[RunKey] = []
        while True:
            progress = Progress(frozenset(active), frozenset(done))
            for key in next_runs(steps, progress, max_parallel_steps=plan.max_parallel_steps):
                order.append(PlannedRun(len(order) + 1, key, last))
                active.append(key)
            if not active:
                break
            last = active.pop(0)
            done.add(last)
    return order, decisions
