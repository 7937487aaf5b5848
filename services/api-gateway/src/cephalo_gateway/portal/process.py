"""The process editor's changes to a list of steps (as the API reads them): edit one step,
move it, disable or enable it. Plain functions; the routes read and write the process."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.datastructures import FormData

from cephalo_gateway.portal import forms

Step = dict[str, Any]
SCRIPT = "cephalo.script"
PACKAGE = "cephalo.package"


class UnknownStep(LookupError):
    """No step with that id in the process."""


def index_of(steps: Sequence[Step], step_id: str) -> int:
    for index, step in enumerate(steps):
        if str(step.get("id")) == step_id:
            return index
    raise UnknownStep(step_id)


def moved(steps: Sequence[Step], step_id: str, direction: str) -> list[Step]:
    """The steps with one moved a place up or down (at an end it stays where it is)."""
    result = list(steps)
    index = index_of(result, step_id)
    other = index - 1 if direction == "up" else index + 1
    if 0 <= other < len(result):
        result[index], result[other] = result[other], result[index]
    return result


def is_disabled(step: Step) -> bool:
    """A step is disabled when all its actions are (what a deployment skips)."""
    return all(action.get("is_disabled") for action in step.get("actions", []))


def toggled(steps: Sequence[Step], step_id: str, disabled: bool) -> list[Step]:
    index = index_of(steps, step_id)
    result = list(steps)
    step = result[index]
    actions = [{**a, "is_disabled": disabled} for a in step["actions"]]
    result[index] = {**step, "actions": actions}
    return result


def _edited_action(action: Step, form: FormData, old_name: str, new_name: str) -> Step:
    edited = dict(action)
    if action.get("name") in (None, old_name):
        edited["name"] = new_name
    if action["action_type"] == SCRIPT:
        properties = {**action.get("properties", {})}
        properties["script_body"] = forms.raw(form, "script_body")
        properties["syntax"] = forms.text(form, "syntax") or properties.get("syntax", "bash")
        edited["properties"] = properties
    elif action["action_type"] == PACKAGE and action.get("packages"):
        first = {**action["packages"][0], "package_id": forms.text(form, "package_id")}
        edited["packages"] = [first, *action["packages"][1:]]
    return edited


def edited(steps: Sequence[Step], step_id: str, form: FormData) -> list[Step]:
    """The steps with one renamed, retargeted and, for a one-action step, its script or
    package changed; everything the form does not show is kept as it was."""
    index = index_of(steps, step_id)
    result = list(steps)
    step = result[index]
    name = forms.text(form, "name")
    actions = step["actions"]
    if len(actions) == 1:
        actions = [_edited_action(actions[0], form, step["name"], name)]
    result[index] = {
        **step,
        "name": name,
        "target_roles": forms.words(form, "roles"),
        "actions": actions,
    }
    return result


def editable_action(step: Step) -> Step | None:
    """The action whose script or package the edit form shows (one-action steps only)."""
    actions = step.get("actions", [])
    return actions[0] if len(actions) == 1 else None
