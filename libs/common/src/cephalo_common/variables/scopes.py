"""Scoped variable values and the rule that says which of them apply to a deployment.

A variable is every value sharing a name (case-insensitively); each value carries a scope,
a set of allowed ids per `ScopeField`. A value applies when, for every field it is scoped
on, the context has one of the allowed ids: OR within a field, AND across fields. A value
scoped on a field the context lacks (a channel, for a runbook run) never applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from pydantic import BaseModel, ConfigDict, Field

from cephalo_common.variables.ast import fold


class ScopeField(StrEnum):
    ACTION = "Action"
    MACHINE = "Machine"
    ROLE = "Role"
    TENANT = "Tenant"
    TENANT_TAG = "TenantTag"
    ENVIRONMENT = "Environment"
    CHANNEL = "Channel"
    PROCESS = "ProcessOwner"
    PROJECT = "Project"


class Level(IntEnum):
    """Specificity of a matched scope dimension (§1.3); lower is more specific."""

    ACTION = 1
    MACHINE = 2
    TARGETED_ROLE = 3
    MACHINE_ROLE = 4
    TENANT = 5
    TENANT_TAG = 6
    ENVIRONMENT = 7
    CHANNEL = 8
    PROCESS = 9
    PROJECT = 10
    UNSCOPED = 11

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Level.ACTION: "step",
    Level.MACHINE: "machine",
    Level.TARGETED_ROLE: "target tag on the machine and targeted by the step",
    Level.MACHINE_ROLE: "target tag on the machine",
    Level.TENANT: "tenant",
    Level.TENANT_TAG: "tenant tag",
    Level.ENVIRONMENT: "environment",
    Level.CHANNEL: "channel",
    Level.PROCESS: "deployment/runbook process",
    Level.PROJECT: "project",
    Level.UNSCOPED: "unscoped",
}
_FIELD_LEVELS = {
    ScopeField.ACTION: Level.ACTION,
    ScopeField.MACHINE: Level.MACHINE,
    ScopeField.TENANT: Level.TENANT,
    ScopeField.TENANT_TAG: Level.TENANT_TAG,
    ScopeField.ENVIRONMENT: Level.ENVIRONMENT,
    ScopeField.CHANNEL: Level.CHANNEL,
    ScopeField.PROCESS: Level.PROCESS,
    ScopeField.PROJECT: Level.PROJECT,
}


class SourceKind(StrEnum):
    SYSTEM = "system"
    PROJECT = "project"
    LIBRARY_SET = "library_set"


class VariableSource(BaseModel):
    """Where a value was declared; `order` is a library set's place among the project's sets."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: SourceKind = SourceKind.PROJECT
    id: str | None = None
    order: int = 0


class VariableValue(BaseModel):
    """One candidate value of a variable."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    value: str
    scope: dict[ScopeField, frozenset[str]] = Field(default_factory=dict)
    is_sensitive: bool = False
    source: VariableSource = Field(default_factory=VariableSource)
    declaration_index: int = 0
    id: str | None = None


class ResolutionContext(BaseModel):
    """What is being run: the ids each scope field is matched against.

    `machine_roles` are the target tags of the current machine, `step_roles` those the
    current step targets; `process` is the deployment process or runbook being run.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    environment: str | None = None
    machine: str | None = None
    machine_roles: frozenset[str] = frozenset()
    step_roles: frozenset[str] = frozenset()
    action: str | None = None
    channel: str | None = None
    tenant: str | None = None
    tenant_tags: frozenset[str] = frozenset()
    process: str | None = None
    project: str | None = None

    def ids(self, field: ScopeField) -> frozenset[str]:
        single = {
            ScopeField.ACTION: self.action,
            ScopeField.MACHINE: self.machine,
            ScopeField.TENANT: self.tenant,
            ScopeField.ENVIRONMENT: self.environment,
            ScopeField.CHANNEL: self.channel,
            ScopeField.PROCESS: self.process,
            ScopeField.PROJECT: self.project,
        }
        if field is ScopeField.ROLE:
            return self.machine_roles if self.machine is not None else self.step_roles
        if field is ScopeField.TENANT_TAG:
            return self.tenant_tags
        value = single[field]
        return frozenset() if value is None else frozenset({value})


@dataclass(frozen=True, slots=True)
class ScopeMatch:
    """Whether a value applies; if so at which levels, if not on which field and why."""

    matched: bool
    levels: tuple[Level, ...] = ()
    mismatch: ScopeField | None = None
    reason: str = ""


def _folded(ids: frozenset[str]) -> dict[str, str]:
    return {fold(item): item for item in ids}


def match_scope(value: VariableValue, context: ResolutionContext) -> ScopeMatch:
    """Ids compare case-insensitively; an empty id set means "not scoped on this field"."""
    levels: list[Level] = []
    matched_on: list[str] = []
    for field in ScopeField:
        allowed = value.scope.get(field)
        if not allowed:
            continue
        available = context.ids(field)
        wanted = ", ".join(sorted(allowed))
        if not available:
            reason = f"scoped to {field.value} [{wanted}] but this context has no {field.value}"
            return ScopeMatch(False, mismatch=field, reason=reason)
        hits = _folded(allowed).keys() & _folded(available).keys()
        if not hits:
            have = ", ".join(sorted(available))
            reason = (
                f"scoped to {field.value} [{wanted}] but this context has {field.value} [{have}]"
            )
            return ScopeMatch(False, mismatch=field, reason=reason)
        if field is ScopeField.ROLE:
            targeted = hits & _folded(context.step_roles).keys()
            levels.append(Level.TARGETED_ROLE if targeted else Level.MACHINE_ROLE)
        else:
            levels.append(_FIELD_LEVELS[field])
        shown = ", ".join(sorted(_folded(allowed)[hit] for hit in hits))
        matched_on.append(f"{field.value} [{shown}]")
    if not levels:
        return ScopeMatch(True, (Level.UNSCOPED,), reason="unscoped")
    return ScopeMatch(True, tuple(sorted(levels)), reason="matched " + ", ".join(matched_on))


def scope_problems(value: VariableValue) -> list[str]:
    """Scopes a value may not have: library sets cannot be scoped to steps or channels."""
    if value.source.kind is not SourceKind.LIBRARY_SET:
        return []
    return [
        f"a library variable set value cannot be scoped to {field.value}"
        for field in (ScopeField.ACTION, ScopeField.CHANNEL)
        if value.scope.get(field)
    ]
