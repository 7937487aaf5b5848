"""Deployment process rules (Octopus §5): steps, actions, and what one deployment runs. Pure.

A step holds one action, or is a rolling parent (a window size) with child actions. Target
tags (roles) live on the step; environment and channel filters, required and disabled on
the action. Steps are stored as JSON documents in the shape `schemas/process.py` defines;
the flat "run a script" shape of the first releases is read as a one-action step.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cephalo_common.errors import Invalid
from cephalo_common.ids import uuid7

SCRIPT = "cephalo.script"
PACKAGE = "cephalo.package"
MANUAL = "cephalo.manual"
HEALTH_CHECK = "cephalo.health-check"
KUBERNETES_YAML = "cephalo.kubernetes-yaml"
ACTION_TYPES = (SCRIPT, PACKAGE, MANUAL, HEALTH_CHECK, KUBERNETES_YAML)
RUNS_ON_TARGETS = frozenset({SCRIPT, PACKAGE, HEALTH_CHECK, KUBERNETES_YAML})
LEGACY_KEYS = frozenset({"script_body", "syntax"})

Step = dict[str, Any]


def is_legacy_step(raw: Mapping[str, Any]) -> bool:
    """The first shape: one script inline on the step, no `actions`."""
    return "actions" not in raw and bool(LEGACY_KEYS & raw.keys())


def canonical_step(raw: Mapping[str, Any]) -> Step:
    """The step in today's shape; a legacy flat script step becomes a one-action step."""
    if not is_legacy_step(raw):
        return dict(raw)
    step = {key: value for key, value in raw.items() if key not in LEGACY_KEYS | {"action_type"}}
    properties: dict[str, Any] = {"script_source": "Inline"}
    for key in ("script_body", "syntax"):
        if key in raw:
            properties[key] = raw[key]
    action: dict[str, Any] = {
        "name": raw.get("name"),
        "action_type": raw.get("action_type", SCRIPT),
        "properties": properties,
    }
    if raw.get("id") is not None:
        action["id"] = raw["id"]
    step["actions"] = [action]
    return step


def with_ids(steps: Iterable[Step]) -> list[Step]:
    """Give every step and action an id (kept when the client sent the one it read)."""
    result = []
    for step in steps:
        actions = [{**action, "id": str(action.get("id") or uuid7())} for action in step["actions"]]
        result.append({**step, "id": str(step.get("id") or uuid7()), "actions": actions})
    return result


def _error(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message, "code": "invalid"}


def validate_process(
    steps: Sequence[Step],
    *,
    environment_ids: set[uuid.UUID],
    channel_ids: set[uuid.UUID],
) -> None:
    """Rules that span fields: unique names, roles where targets run, known references."""
    errors: list[dict[str, str]] = []
    step_names: set[str] = set()
    action_names: set[str] = set()
    for index, step in enumerate(steps):
        where = f"body.steps.{index}"
        if step["name"].lower() in step_names:
            errors.append(_error(f"{where}.name", "step names must be unique within a process"))
        step_names.add(step["name"].lower())
        errors.extend(_step_errors(step, where))
        for position, action in enumerate(step["actions"]):
            at = f"{where}.actions.{position}"
            name = str(action.get("name") or step["name"]).lower()
            if name in action_names:
                errors.append(_error(f"{at}.name", "action names must be unique within a process"))
            action_names.add(name)
            errors.extend(_action_errors(action, at, environment_ids, channel_ids))
    if errors:
        raise Invalid("the deployment process is not valid", errors=errors)


def _step_errors(step: Mapping[str, Any], where: str) -> list[dict[str, str]]:
    errors = []
    actions = step["actions"]
    if len(actions) > 1 and step.get("window_size") is None:
        errors.append(
            _error(
                f"{where}.actions",
                "only a rolling step (with a window_size) can hold several child actions",
            )
        )
    needs_targets = any(action["action_type"] in RUNS_ON_TARGETS for action in actions)
    if needs_targets and not step.get("target_roles"):
        errors.append(
            _error(f"{where}.target_roles", "a step that runs on targets needs a target tag")
        )
    if step.get("window_size") is not None and not step.get("target_roles"):
        errors.append(_error(f"{where}.window_size", "a rolling step needs a target tag"))
    if (step.get("condition") == "Variable") != bool(step.get("condition_expression")):
        errors.append(
            _error(
                f"{where}.condition_expression",
                "a Variable condition needs an expression, and only it may have one",
            )
        )
    return errors


def _action_errors(
    action: Mapping[str, Any],
    at: str,
    environment_ids: set[uuid.UUID],
    channel_ids: set[uuid.UUID],
) -> list[dict[str, str]]:
    errors = []
    for key, known, noun in (
        ("environments", environment_ids, "environment"),
        ("excluded_environments", environment_ids, "environment"),
        ("channels", channel_ids, "channel of this project"),
    ):
        for ref in action.get(key) or []:
            if uuid.UUID(str(ref)) not in known:
                errors.append(_error(f"{at}.{key}", f"{ref} is not a known {noun}"))
    both = set(action.get("environments") or []) & set(action.get("excluded_environments") or [])
    if both:
        errors.append(
            _error(f"{at}.excluded_environments", "an environment cannot be both run and skipped")
        )
    if (action.get("condition") == "Variable") != bool(action.get("condition_expression")):
        errors.append(
            _error(
                f"{at}.condition_expression",
                "a Variable condition needs an expression, and only it may have one",
            )
        )
    names = [str(package.get("name", "")) for package in action.get("packages") or []]
    if len(names) != len(set(names)):
        errors.append(_error(f"{at}.packages", "package reference names must be unique"))
    referenced = _referenced_package(action)
    if referenced is not None and referenced not in names:
        errors.append(
            _error(f"{at}.properties", f'no package reference named "{referenced}" on this action')
        )
    return errors


def _referenced_package(action: Mapping[str, Any]) -> str | None:
    properties = action.get("properties") or {}
    if action["action_type"] == SCRIPT and properties.get("script_source") == "Package":
        return str(properties.get("script_package") or "")
    if action["action_type"] == PACKAGE:
        return str(properties.get("package_reference") or "")
    return None


def package_references(steps: Sequence[Step]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every (action name, package reference name, reference) a release must pin a version of."""
    return [
        (str(action.get("name") or step["name"]), str(package.get("name", "")), dict(package))
        for step in steps
        for action in step["actions"]
        for package in action.get("packages") or []
    ]


def resolve_skips(steps: Sequence[Step], refs: Sequence[str]) -> list[str]:
    """Action ids to skip, from ids or names; a required action can never be skipped."""
    by_ref: dict[str, Mapping[str, Any]] = {}
    for step in steps:
        for action in step["actions"]:
            by_ref[str(action["id"]).lower()] = action
            by_ref[str(action.get("name") or step["name"]).lower()] = action
    skipped: list[str] = []
    for ref in refs:
        action = by_ref.get(ref.strip().lower())
        if action is None:
            raise Invalid(f'cannot skip "{ref}": the release has no such step')
        if action.get("is_required"):
            raise Invalid(f'cannot skip "{ref}": the step is required')
        if str(action["id"]) not in skipped:
            skipped.append(str(action["id"]))
    return skipped


def _runs(
    action: Mapping[str, Any],
    environment_id: uuid.UUID,
    channel_id: uuid.UUID | None,
    skipped: set[str],
) -> bool:
    if action.get("is_disabled") or str(action["id"]) in skipped:
        return False
    only = {str(ref) for ref in action.get("environments") or []}
    if only and str(environment_id) not in only:
        return False
    if str(environment_id) in {str(ref) for ref in action.get("excluded_environments") or []}:
        return False
    channels = {str(ref) for ref in action.get("channels") or []}
    return not (channels and (channel_id is None or str(channel_id) not in channels))


def deployment_actions(
    steps: Sequence[Step],
    *,
    environment_id: uuid.UUID,
    channel_id: uuid.UUID | None,
    skipped: Iterable[str] = (),
    package_versions: Mapping[tuple[str, str], str] | None = None,
) -> list[dict[str, Any]]:
    """What one deployment runs, in order, as action snapshots the orchestrator reads.

    Each entry has `id`, `name`, `action_type`, `target_roles` and `properties`: the
    action's own properties (a script keeps `script_body` and `syntax` there) plus the
    step-level settings (`step_id`, `step_name`, `condition`, `start_trigger`,
    `window_size`, …) and the package versions the release pinned.
    """
    skip = set(skipped)
    versions = package_versions or {}
    snapshot = []
    for step in steps:
        actions = [a for a in step["actions"] if _runs(a, environment_id, channel_id, skip)]
        for position, action in enumerate(actions):
            name = str(action.get("name") or step["name"])
            packages = [
                {**package, "version": versions.get((name, str(package.get("name", ""))))}
                for package in action.get("packages") or []
            ]
            properties = {
                **(action.get("properties") or {}),
                "step_id": str(step["id"]),
                "step_name": step["name"],
                "condition": step.get("condition", "Success"),
                "condition_expression": step.get("condition_expression"),
                "start_trigger": step.get("start_trigger", "StartAfterPrevious"),
                "window_size": step.get("window_size"),
                "child_index": position if step.get("window_size") is not None else None,
                "action_condition": action.get("condition", "Success"),
                "action_condition_expression": action.get("condition_expression"),
                "is_required": bool(action.get("is_required")),
                "packages": packages,
            }
            snapshot.append(
                {
                    "id": str(action["id"]),
                    "name": name,
                    "action_type": action["action_type"],
                    "target_roles": list(step.get("target_roles") or []),
                    "properties": properties,
                }
            )
    return snapshot
