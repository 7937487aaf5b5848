"""The variables editor's rules: a form row in, the API's variable out, and scopes in words.

Sensitive values are write-only: the API never returns them, so the form never shows one,
and an edit that leaves the value empty sends the variable's id without a value, which
keeps the stored secret.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData

from cephalo_gateway.portal import forms

SENSITIVE = "Sensitive"
TYPES = ("Text", SENSITIVE)


@dataclass(frozen=True)
class ScopeKind:
    field: str
    """The API's scope field (`ScopeField`)."""
    form_name: str
    label: str


SCOPES = (
    ScopeKind("Environment", "environments", "Environments"),
    ScopeKind("Role", "roles", "Target roles"),
    ScopeKind("Machine", "machines", "Deployment targets"),
    ScopeKind("Channel", "channels", "Channels"),
    ScopeKind("Action", "steps", "Steps"),
)


def scope_of(form: FormData) -> dict[str, list[str]]:
    """The scope the form's selects (and the roles text) describe; empty fields left out."""
    scope: dict[str, list[str]] = {}
    for kind in SCOPES:
        read = forms.words if kind.field == "Role" else forms.chosen
        values = read(form, kind.form_name)
        if values:
            scope[kind.field] = values
    return scope


def variable_of(form: FormData, existing: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The variable the form describes; `existing` is the one being edited (its id, prompt)."""
    kind = forms.text(form, "type") or "Text"
    value: str | None = forms.raw(form, "value")
    if kind == SENSITIVE and not value and existing is not None and existing["type"] == SENSITIVE:
        value = None
    variable: dict[str, Any] = {
        "name": forms.text(form, "name"),
        "type": kind,
        "value": value,
        "description": forms.text(form, "description"),
        "scope": scope_of(form),
    }
    if existing is not None:
        variable |= {"id": existing["id"], "prompt": existing.get("prompt")}
    return variable


def kept(variable: Mapping[str, Any]) -> dict[str, Any]:
    """A variable as read, ready to be written back unchanged (a secret stays stored)."""
    return {
        key: variable.get(key)
        for key in ("id", "name", "type", "value", "description", "scope", "prompt")
    }


def find(variables: Sequence[Mapping[str, Any]], variable_id: str) -> Mapping[str, Any] | None:
    return next((v for v in variables if v["id"] == variable_id), None)


@dataclass(frozen=True)
class ScopeNames:
    """Names for the ids a scope holds, per scope field (an unknown id shows as itself)."""

    by_field: Mapping[str, Mapping[str, str]]

    def describe(self, scope: Mapping[str, Sequence[str]]) -> list[tuple[str, list[str]]]:
        labels = {kind.field: kind.label for kind in SCOPES}
        return [
            (labels.get(field, field), [self.by_field.get(field, {}).get(i, i) for i in ids])
            for field, ids in scope.items()
            if ids
        ]


def steps_of(process: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(action id, label) of every action of the process, for scoping to a step."""
    found = []
    for step in process.get("steps", []):
        for action in step.get("actions", []):
            label = step["name"] if action.get("name") in (None, step["name"]) else action["name"]
            found.append((str(action["id"]), str(label)))
    return found
