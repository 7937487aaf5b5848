"""The plan a deploy page shows: which step runs on which target of the environment.

Derived from the release's snapshot and the environment's machines, the same rule the
orchestrator applies (a step runs on the enabled targets holding any of its roles; a step
without roles runs once on the server), so a user sees who is touched before deploying.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PlannedStep:
    number: int
    name: str
    action_types: tuple[str, ...]
    roles: tuple[str, ...]
    targets: tuple[str, ...]
    skipped_because: str | None


def _targets(roles: set[str], machines: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    return tuple(
        sorted(
            str(m["name"])
            for m in machines
            if not m.get("is_disabled") and roles & set(m.get("roles") or [])
        )
    )


def plan_of(
    steps: Sequence[Mapping[str, Any]], machines: Sequence[Mapping[str, Any]]
) -> list[PlannedStep]:
    planned = []
    for number, step in enumerate(steps, start=1):
        roles = {str(r) for r in step.get("target_roles") or []}
        actions = [a for a in step.get("actions") or [] if not a.get("is_disabled")]
        targets = _targets(roles, machines) if roles else ("the server",)
        reason = None
        if not actions:
            reason = "every action of this step is disabled"
        elif not targets:
            reason = "no enabled target in this environment has its roles"
        planned.append(
            PlannedStep(
                number=number,
                name=str(step.get("name", "")),
                action_types=tuple(str(a.get("action_type", "")) for a in actions),
                roles=tuple(sorted(roles)),
                targets=targets,
                skipped_because=reason,
            )
        )
    return planned
