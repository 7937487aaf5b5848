"""Lifecycle progression: where a release may be deployed now, and why not (Octopus §2.2).

Pure: the caller passes the lifecycle, the space's environments in their sort order and
the release's deployments oldest first; nothing here touches a database.

The rules:
- Phases are reached in order. A phase is *complete* when at least `required` of its
  environments have a successful deployment of the release (the latest finished
  deployment to each environment counts; one running now does not undo it). `required`
  is every environment of the phase ("all must complete") unless the phase sets a
  minimum. An *optional* phase never holds back the phases after it.
- An environment can be deployed now when its phase is reached (every earlier non-optional
  phase is complete), or when the release was already deployed there (redeploy).
- No phases: one implicit phase per environment, in environment order, all manual.
- A phase that names no environment takes every environment no other phase names
  ("any environment not in an earlier phase"), including environments created later.
- Automatic environments of a reached, non-optional phase are deployed without anyone
  asking, once per release and environment.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

SUCCESS = "Success"
FINISHED_STATES = frozenset({"Success", "Failed", "Canceled", "TimedOut"})
RUNNING_STATES = frozenset({"Queued", "Executing", "Scheduled"})

PHASE_COMPLETE = "Complete"
PHASE_CURRENT = "Current"
PHASE_BLOCKED = "Blocked"


@dataclass(frozen=True)
class EnvironmentRef:
    id: uuid.UUID
    name: str


@dataclass(frozen=True)
class PhaseSpec:
    """A phase as configured: `optional_environment_ids` are the manual ones (Octopus's name)."""

    name: str
    automatic_environment_ids: tuple[uuid.UUID, ...] = ()
    optional_environment_ids: tuple[uuid.UUID, ...] = ()
    minimum_environments_before_promotion: int = 0
    is_optional_phase: bool = False
    id: str = ""


@dataclass(frozen=True)
class LifecycleSpec:
    name: str
    phases: tuple[PhaseSpec, ...] = ()


@dataclass(frozen=True)
class DeploymentRecord:
    """One deployment of the release; the history is passed oldest first."""

    environment_id: uuid.UUID
    state: str


@dataclass(frozen=True)
class PhaseEnvironment:
    environment: EnvironmentRef
    automatic: bool


@dataclass(frozen=True)
class EffectivePhase:
    """A phase with its environments resolved (implicit and catch-all phases expanded)."""

    index: int
    id: str
    name: str
    environments: tuple[PhaseEnvironment, ...]
    required: int
    is_optional: bool
    is_catch_all: bool = False


@dataclass(frozen=True)
class EnvironmentProgress:
    environment_id: uuid.UUID
    name: str
    automatic: bool
    latest_state: str | None
    can_deploy: bool
    reason: str | None


@dataclass(frozen=True)
class PhaseProgress:
    index: int
    id: str
    name: str
    is_optional: bool
    required: int
    succeeded: int
    is_complete: bool
    is_reached: bool
    state: str
    environments: tuple[EnvironmentProgress, ...]


@dataclass(frozen=True)
class Progression:
    lifecycle_name: str
    phases: tuple[PhaseProgress, ...]
    next_deployments: tuple[uuid.UUID, ...] = field(default_factory=tuple)

    def environment(self, environment_id: uuid.UUID) -> EnvironmentProgress | None:
        for phase in self.phases:
            for environment in phase.environments:
                if environment.environment_id == environment_id:
                    return environment
        return None

    def blocking_reason(self, environment: EnvironmentRef) -> str | None:
        """None when `environment` can be deployed now; otherwise why not."""
        found = self.environment(environment.id)
        if found is None:
            return not_in_lifecycle_reason(environment.name, self.lifecycle_name)
        return found.reason


def not_in_lifecycle_reason(environment: str, lifecycle: str) -> str:
    return f'Cannot deploy to "{environment}": it is not part of lifecycle "{lifecycle}"'


def incomplete_phase_reason(
    environment: str, phase: str, succeeded: int, required: int, failed: Sequence[str]
) -> str:
    detail = f"{succeeded} of {required} required environments succeeded"
    if failed:
        detail += f"; failed: {', '.join(failed)}"
    return f'Cannot deploy to "{environment}": phase "{phase}" is not complete ({detail})'


def effective_phases(
    lifecycle: LifecycleSpec, environments: Sequence[EnvironmentRef]
) -> tuple[EffectivePhase, ...]:
    """The phases with their environments, in the order `environments` are sorted."""
    if not lifecycle.phases:
        return tuple(
            EffectivePhase(
                index=index,
                id=f"implicit-{environment.id}",
                name=environment.name,
                environments=(PhaseEnvironment(environment, automatic=False),),
                required=1,
                is_optional=False,
            )
            for index, environment in enumerate(environments)
        )
    claimed = {
        environment_id
        for phase in lifecycle.phases
        for environment_id in (*phase.automatic_environment_ids, *phase.optional_environment_ids)
    }
    taken_by_catch_all: set[uuid.UUID] = set()
    resolved: list[EffectivePhase] = []
    for index, phase in enumerate(lifecycle.phases):
        automatic = set(phase.automatic_environment_ids)
        named = automatic | set(phase.optional_environment_ids)
        catch_all = not named
        if catch_all:
            members = [
                PhaseEnvironment(env, automatic=False)
                for env in environments
                if env.id not in claimed and env.id not in taken_by_catch_all
            ]
            taken_by_catch_all.update(member.environment.id for member in members)
        else:
            members = [
                PhaseEnvironment(env, automatic=env.id in automatic)
                for env in environments
                if env.id in named
            ]
        minimum = phase.minimum_environments_before_promotion
        required = min(minimum, len(members)) if minimum > 0 else len(members)
        resolved.append(
            EffectivePhase(
                index=index,
                id=phase.id,
                name=phase.name,
                environments=tuple(members),
                required=required,
                is_optional=phase.is_optional_phase,
                is_catch_all=catch_all,
            )
        )
    return tuple(resolved)


@dataclass(frozen=True)
class _History:
    latest: dict[uuid.UUID, str]
    latest_finished: dict[uuid.UUID, str]

    @classmethod
    def of(cls, records: Iterable[DeploymentRecord]) -> _History:
        latest: dict[uuid.UUID, str] = {}
        finished: dict[uuid.UUID, str] = {}
        for record in records:
            latest[record.environment_id] = record.state
            if record.state in FINISHED_STATES:
                finished[record.environment_id] = record.state
        return cls(latest, finished)

    def succeeded(self, environment_id: uuid.UUID) -> bool:
        return self.latest_finished.get(environment_id) == SUCCESS

    def failed(self, environment_id: uuid.UUID) -> bool:
        state = self.latest_finished.get(environment_id)
        return state is not None and state != SUCCESS

    def deployed(self, environment_id: uuid.UUID) -> bool:
        return environment_id in self.latest


def progression(
    lifecycle: LifecycleSpec,
    environments: Sequence[EnvironmentRef],
    history: Iterable[DeploymentRecord],
) -> Progression:
    """Per phase and environment: can the release be deployed there now, and why not."""
    seen = _History.of(history)
    blocker: EffectivePhase | None = None
    phases: list[PhaseProgress] = []
    for phase in effective_phases(lifecycle, environments):
        reached = blocker is None
        succeeded = sum(1 for member in phase.environments if seen.succeeded(member.environment.id))
        complete = succeeded >= phase.required
        rows = tuple(
            _environment_progress(member, seen, reached, blocker) for member in phase.environments
        )
        phases.append(
            PhaseProgress(
                index=phase.index,
                id=phase.id,
                name=phase.name,
                is_optional=phase.is_optional,
                required=phase.required,
                succeeded=succeeded,
                is_complete=complete,
                is_reached=reached,
                state=PHASE_COMPLETE if complete else PHASE_CURRENT if reached else PHASE_BLOCKED,
                environments=rows,
            )
        )
        if blocker is None and not phase.is_optional and not complete:
            blocker = phase
    return Progression(
        lifecycle_name=lifecycle.name,
        phases=tuple(phases),
        next_deployments=_next(phases, seen),
    )


def _environment_progress(
    member: PhaseEnvironment, seen: _History, reached: bool, blocker: EffectivePhase | None
) -> EnvironmentProgress:
    environment = member.environment
    can_deploy = reached or seen.deployed(environment.id)
    reason = None
    if not can_deploy and blocker is not None:
        succeeded = sum(1 for m in blocker.environments if seen.succeeded(m.environment.id))
        failed = [m.environment.name for m in blocker.environments if seen.failed(m.environment.id)]
        reason = incomplete_phase_reason(
            environment.name, blocker.name, succeeded, blocker.required, failed
        )
    return EnvironmentProgress(
        environment_id=environment.id,
        name=environment.name,
        automatic=member.automatic,
        latest_state=seen.latest.get(environment.id),
        can_deploy=can_deploy,
        reason=reason,
    )


def _next(phases: Sequence[PhaseProgress], seen: _History) -> tuple[uuid.UUID, ...]:
    """Environments the release can reach now and has not yet succeeded in (nor is running)."""
    return tuple(
        environment.environment_id
        for phase in phases
        for environment in phase.environments
        if environment.can_deploy
        and not seen.succeeded(environment.environment_id)
        and environment.latest_state not in RUNNING_STATES
    )


def automatic_deployments(
    result: Progression, already_requested: Iterable[uuid.UUID] = ()
) -> tuple[uuid.UUID, ...]:
    """Automatic environments of reached, non-optional phases the release never went to."""
    skip = set(already_requested)
    return tuple(
        environment.environment_id
        for phase in result.phases
        if phase.is_reached and not phase.is_optional
        for environment in phase.environments
        if environment.automatic
        and environment.latest_state is None
        and environment.environment_id not in skip
    )
