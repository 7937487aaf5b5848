"""The process editor's changes to existing steps: edit, move up or down, disable, enable.

Each reads the process and writes the whole list back under the version it read: one API
write, so a step is never half-changed and a concurrent edit is a conflict to show.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from cephalo_gateway.portal import forms
from cephalo_gateway.portal import process as steps_of
from cephalo_gateway.portal.client import ApiError
from cephalo_gateway.portal.views import PREFIX, FormPortalDep, Portal, PortalDep, redirect

router = APIRouter(prefix=PREFIX, include_in_schema=False)
Change = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


def _not_found(step_id: str) -> ApiError:
    return ApiError(404, "Not found", f"no step {step_id} in this deployment process", [])


async def _changed(portal: Portal, project_id: str, step_id: str, change: Change) -> Response:
    path = f"/projects/{project_id}/deployment-process"
    process = await portal.api.space("GET", path)
    try:
        steps = change(process["steps"])
    except steps_of.UnknownStep as unknown:
        raise _not_found(step_id) from unknown
    await portal.api.space("PUT", path, json={"version": process["version"], "steps": steps})
    return redirect(f"/projects/{project_id}")


async def _edit_page(
    portal: Portal, project_id: str, step_id: str, status: int = 200, error: str = ""
) -> Response:
    found = await portal.api.space("GET", f"/projects/{project_id}")
    process = await portal.api.space("GET", f"/projects/{project_id}/deployment-process")
    try:
        step = process["steps"][steps_of.index_of(process["steps"], step_id)]
    except steps_of.UnknownStep as unknown:
        raise _not_found(step_id) from unknown
    return portal.render(
        "step_edit.html",
        f"Edit step {step['name']}",
        status=status,
        error=error,
        project=found,
        step=step,
        action=steps_of.editable_action(step),
    )


@router.get("/projects/{project_id}/steps/{step_id}")
async def edit_step(project_id: str, step_id: str, portal: PortalDep) -> Response:
    return await _edit_page(portal, project_id, step_id)


@router.post("/projects/{project_id}/steps/{step_id}")
async def save_step(project_id: str, step_id: str, portal: FormPortalDep) -> Response:
    form = await portal.request.form()
    try:
        return await _changed(
            portal, project_id, step_id, lambda s: steps_of.edited(s, step_id, form)
        )
    except ApiError as error:
        if error.status not in forms.FORM_ERRORS:
            raise
        return await _edit_page(portal, project_id, step_id, status=422, error=error.message)


@router.post("/projects/{project_id}/steps/{step_id}/move")
async def move_step(project_id: str, step_id: str, portal: FormPortalDep) -> Response:
    direction = forms.text(await portal.request.form(), "direction")
    if direction not in ("up", "down"):
        raise forms.invalid("move a step up or down")
    return await _changed(
        portal, project_id, step_id, lambda s: steps_of.moved(s, step_id, direction)
    )


@router.post("/projects/{project_id}/steps/{step_id}/disable")
async def disable_step(project_id: str, step_id: str, portal: FormPortalDep) -> Response:
    return await _changed(portal, project_id, step_id, lambda s: steps_of.toggled(s, step_id, True))


@router.post("/projects/{project_id}/steps/{step_id}/enable")
async def enable_step(project_id: str, step_id: str, portal: FormPortalDep) -> Response:
    return await _changed(
        portal, project_id, step_id, lambda s: steps_of.toggled(s, step_id, False)
    )
