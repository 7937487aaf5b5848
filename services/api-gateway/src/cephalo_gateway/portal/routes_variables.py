"""A project's variables: the grid of values and scopes, add, edit, delete, and the preview
that says which value wins in a context and why.

Every change reads the variable set and writes the whole list back with the version it
read (one API write: nothing is half-saved, and a concurrent edit is a conflict to show).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from starlette.datastructures import FormData

from cephalo_gateway.portal import forms
from cephalo_gateway.portal import variables as rules
from cephalo_gateway.portal.client import ApiError
from cephalo_gateway.portal.views import PREFIX, FormPortalDep, Portal, PortalDep, redirect

router = APIRouter(prefix=PREFIX, include_in_schema=False)
Change = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


async def _choices(portal: Portal, path: str) -> list[Any]:
    """What a select offers (targets, library sets): nothing when the user may not list
    them or their service is away, rather than no editor at all."""
    try:
        return await portal.api.items(path, take=100)
    except ApiError:
        return []


async def _editor(portal: Portal, project_id: str) -> dict[str, Any]:
    """Everything the grid and its forms show, read in one round."""
    found, variable_set, environments, channels, process, machines = await asyncio.gather(
        portal.api.space("GET", f"/projects/{project_id}"),
        portal.api.space("GET", f"/projects/{project_id}/variables"),
        portal.api.items("/environments"),
        portal.api.items(f"/projects/{project_id}/channels"),
        portal.api.space("GET", f"/projects/{project_id}/deployment-process"),
        _choices(portal, "/machines"),
    )
    steps = rules.steps_of(process)
    names = rules.ScopeNames(
        {
            "Environment": {str(e["id"]): e["name"] for e in environments},
            "Channel": {str(c["id"]): c["name"] for c in channels},
            "Machine": {str(m["id"]): m["name"] for m in machines},
            "Action": dict(steps),
        }
    )
    return {
        "project": found,
        "variable_set": variable_set,
        "variables": variable_set["variables"],
        "environments": environments,
        "channels": channels,
        "machines": machines,
        "steps": steps,
        "scope_names": names,
        "types": rules.TYPES,
    }


async def _grid(portal: Portal, project_id: str, status: int = 200, error: str = "") -> Response:
    editor, library_sets = await asyncio.gather(
        _editor(portal, project_id), _choices(portal, "/library-variable-sets")
    )
    included = [str(s["id"]) for s in editor["variable_set"]["library_variable_sets"]]
    title = f"Variables of {editor['project']['name']}"
    return portal.render(
        "variables.html",
        title,
        status=status,
        error=error,
        library_sets=library_sets,
        included=included,
        **editor,
    )


async def _save(
    portal: Portal, project_id: str, change: Change, library_sets: list[str] | None = None
) -> dict[str, Any]:
    """Read the set, apply `change` to its list (and include `library_sets` when given),
    write it back under the version read."""
    path = f"/projects/{project_id}/variables"
    current = await portal.api.space("GET", path)
    listed = [rules.kept(v) for v in current["variables"]]
    included = [str(s["id"]) for s in current["library_variable_sets"]]
    body = {
        "version": current["version"],
        "variables": change(listed),
        "library_variable_sets": included if library_sets is None else library_sets,
    }
    saved: dict[str, Any] = await portal.api.space("PUT", path, json=body)
    return saved


@router.get("/projects/{project_id}/variables")
async def variables(project_id: str, portal: PortalDep) -> Response:
    return await _grid(portal, project_id)


@router.post("/projects/{project_id}/variables")
async def add_variable(project_id: str, portal: FormPortalDep) -> Response:
    added = rules.variable_of(await portal.request.form())
    try:
        await _save(portal, project_id, lambda listed: [*listed, added])
    except ApiError as error:
        if error.status not in forms.FORM_ERRORS:
            raise
        return await _grid(portal, project_id, status=422, error=error.message)
    return redirect(f"/projects/{project_id}/variables")


@router.post("/projects/{project_id}/variables/library-sets")
async def include_library_sets(project_id: str, portal: FormPortalDep) -> Response:
    """Which library variable sets the project includes (earlier ones win ties)."""
    chosen = forms.chosen(await portal.request.form(), "library_sets")
    try:
        await _save(portal, project_id, lambda listed: listed, library_sets=chosen)
    except ApiError as error:
        if error.status not in forms.FORM_ERRORS:
            raise
        return await _grid(portal, project_id, status=422, error=error.message)
    return redirect(f"/projects/{project_id}/variables")


@router.get("/projects/{project_id}/variables/preview")
async def preview(
    project_id: str,
    portal: PortalDep,
    environment: str = Query("", max_length=200),
    channel: str = Query("", max_length=200),
    machine: str = Query("", max_length=200),
    role: str = Query("", max_length=1000),
    step: str = Query("", max_length=200),
) -> Response:
    """Which value every variable takes in one context, the rule that chose it, and the
    candidates that lost (sensitive values masked by the API)."""
    chosen = {"environment": environment, "channel": channel, "machine": machine, "step": step}
    params: dict[str, Any] = {k: v for k, v in chosen.items() if v}
    if roles := role.replace(",", " ").split():
        params["role"] = roles
    editor = await _editor(portal, project_id)
    status, error, resolved = 200, "", None
    try:
        resolved = await portal.api.space(
            "GET", f"/projects/{project_id}/variables/preview", params=params
        )
    except ApiError as failed:
        if failed.status not in {*forms.FORM_ERRORS, 404}:
            raise
        status, error = 422, failed.message
    return portal.render(
        "variables_preview.html",
        f"Variable preview of {editor['project']['name']}",
        status=status,
        error=error,
        preview=resolved,
        chosen={**chosen, "role": role},
        **editor,
    )


def _variable_in(editor: dict[str, Any], variable_id: str) -> Any:
    variable = rules.find(editor["variables"], variable_id)
    if variable is None:
        raise ApiError(404, "Not found", f"no variable {variable_id} in this project", [])
    return variable


async def _edit_page(
    portal: Portal, project_id: str, variable_id: str, status: int = 200, error: str = ""
) -> Response:
    editor = await _editor(portal, project_id)
    variable = _variable_in(editor, variable_id)
    return portal.render(
        "variable_edit.html",
        f"Edit variable {variable['name']}",
        status=status,
        error=error,
        variable=variable,
        **editor,
    )


@router.get("/projects/{project_id}/variables/{variable_id}")
async def edit_variable(project_id: str, variable_id: str, portal: PortalDep) -> Response:
    return await _edit_page(portal, project_id, variable_id)


def _replacing(variable_id: str, form: FormData) -> Change:
    def change(listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
        existing = rules.find(listed, variable_id)
        if existing is None:
            raise ApiError(404, "Not found", f"no variable {variable_id} in this project", [])
        edited = rules.variable_of(form, existing)
        return [edited if v["id"] == variable_id else v for v in listed]

    return change


@router.post("/projects/{project_id}/variables/{variable_id}")
async def save_variable(project_id: str, variable_id: str, portal: FormPortalDep) -> Response:
    form = await portal.request.form()
    try:
        await _save(portal, project_id, _replacing(variable_id, form))
    except ApiError as error:
        if error.status not in forms.FORM_ERRORS:
            raise
        return await _edit_page(portal, project_id, variable_id, status=422, error=error.message)
    return redirect(f"/projects/{project_id}/variables")


@router.post("/projects/{project_id}/variables/{variable_id}/delete")
async def delete_variable(project_id: str, variable_id: str, portal: FormPortalDep) -> Response:
    def change(listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if rules.find(listed, variable_id) is None:
            raise ApiError(404, "Not found", f"no variable {variable_id} in this project", [])
        return [v for v in listed if v["id"] != variable_id]

    await _save(portal, project_id, change)
    return redirect(f"/projects/{project_id}/variables")
