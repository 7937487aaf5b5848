"""System variable names: `Cephalo.*`, with every `Octopus.*` spelling accepted as an alias.

Scripts and templates written for Octopus keep working (`#{Octopus.Environment.Name}`),
and new ones can use Cephalo's own names. An explicitly set name always wins over the
alias derived from its other spelling.
"""

from __future__ import annotations

from collections.abc import Mapping

from cephalo_common.variables.ast import fold
from cephalo_common.variables.scopes import SourceKind, VariableSource, VariableValue

CEPHALO = "Cephalo"
OCTOPUS = "Octopus"
SYSTEM_SOURCE = VariableSource(kind=SourceKind.SYSTEM)


class SystemVariables:
    """Well-known names (§1.6), in Cephalo's spelling."""

    SPACE_ID = "Cephalo.Space.Id"
    SPACE_NAME = "Cephalo.Space.Name"
    PROJECT_ID = "Cephalo.Project.Id"
    PROJECT_NAME = "Cephalo.Project.Name"
    RELEASE_ID = "Cephalo.Release.Id"
    RELEASE_NUMBER = "Cephalo.Release.Number"
    RELEASE_NOTES = "Cephalo.Release.Notes"
    RELEASE_CHANNEL_NAME = "Cephalo.Release.Channel.Name"
    DEPLOYMENT_ID = "Cephalo.Deployment.Id"
    DEPLOYMENT_NAME = "Cephalo.Deployment.Name"
    DEPLOYMENT_CREATED_BY_USERNAME = "Cephalo.Deployment.CreatedBy.Username"
    DEPLOYMENT_TENANT_ID = "Cephalo.Deployment.Tenant.Id"
    DEPLOYMENT_TENANT_NAME = "Cephalo.Deployment.Tenant.Name"
    ENVIRONMENT_ID = "Cephalo.Environment.Id"
    ENVIRONMENT_NAME = "Cephalo.Environment.Name"
    MACHINE_ID = "Cephalo.Machine.Id"
    MACHINE_NAME = "Cephalo.Machine.Name"
    MACHINE_ROLES = "Cephalo.Machine.Roles"
    MACHINE_HOSTNAME = "Cephalo.Machine.Hostname"
    TASK_ID = "Cephalo.Task.Id"
    TASK_NAME = "Cephalo.Task.Name"
    ACTION_ID = "Cephalo.Action.Id"
    ACTION_NAME = "Cephalo.Action.Name"
    ACTION_NUMBER = "Cephalo.Action.Number"
    ACTION_TARGET_ROLES = "Cephalo.Action.TargetRoles"
    STEP_ID = "Cephalo.Step.Id"
    STEP_NAME = "Cephalo.Step.Name"
    STEP_NUMBER = "Cephalo.Step.Number"
    RUNBOOK_ID = "Cephalo.Runbook.Id"
    RUNBOOK_NAME = "Cephalo.Runbook.Name"
    WEB_SERVER_URI = "Cephalo.Web.ServerUri"


def alias_of(name: str) -> str | None:
    """`Cephalo.X` ↔ `Octopus.X` (case-insensitive prefix); None for other names."""
    head, dot, rest = name.partition(".")
    if not dot or not rest:
        return None
    if fold(head) == fold(CEPHALO):
        return f"{OCTOPUS}.{rest}"
    if fold(head) == fold(OCTOPUS):
        return f"{CEPHALO}.{rest}"
    return None


def canonical_name(name: str) -> str:
    """Cephalo's spelling of a system variable name (other names are returned unchanged)."""
    head, dot, rest = name.partition(".")
    return f"{CEPHALO}.{rest}" if dot and rest and fold(head) == fold(OCTOPUS) else name


def is_system_variable_name(name: str) -> bool:
    return alias_of(name) is not None


def with_aliases(values: Mapping[str, str]) -> dict[str, str]:
    """Both spellings of every `Cephalo.*`/`Octopus.*` name; explicit entries win."""
    result = dict(values)
    present = {fold(name) for name in values}
    for name, value in values.items():
        alias = alias_of(name)
        if alias is not None and fold(alias) not in present:
            result[alias] = value
            present.add(fold(alias))
    return result


def system_variable_values(values: Mapping[str, str]) -> list[VariableValue]:
    """System variables as resolution candidates (they win over any user value)."""
    return [
        VariableValue(name=name, value=value, source=SYSTEM_SOURCE, declaration_index=index)
        for index, (name, value) in enumerate(with_aliases(values).items())
    ]
