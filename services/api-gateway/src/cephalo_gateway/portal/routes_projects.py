"""Projects, their deployment process, releases, and the package library."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from cephalo_gateway.portal import forms
from cephalo_gateway.portal.client import ApiError
from cephalo_gateway.portal.views import PREFIX, FormPortalDep, Portal, PortalDep, redirect

router = APIRouter(prefix=PREFIX, include_in_schema=False)
UPLOAD_CHUNK = 1024 * 1024


@router.get("/projects")
async def projects(portal: PortalDep) -> Response:
    found = await portal.api.items("/projects")
    return portal.render("projects.html", "Projects", projects=found)


@router.post("/projects")
async def create_project(portal: FormPortalDep) -> Response:
    form = await portal.request.form()
    body = {"name": forms.text(form, "name"), "description": forms.text(form, "description")}
    project = await portal.api.space("POST", "/projects", json=body)
    return redirect(f"/projects/{project['id']}")


async def _project_page(
    portal: Portal, project_id: str, status: int = 200, **errors: str
) -> Response:
    found, process, releases = await asyncio.gather(
        portal.api.space("GET", f"/projects/{project_id}"),
        portal.api.space("GET", f"/projects/{project_id}/deployment-process"),
        portal.api.items(f"/projects/{project_id}/releases"),
    )
    return portal.render(
        "project.html",
        found["name"],
        status=status,
        project=found,
        process=process,
        releases=releases,
        **errors,
    )


@router.get("/projects/{project_id}")
async def project(project_id: str, portal: PortalDep) -> Response:
    return await _project_page(portal, project_id)


def _step_of(form: Any) -> dict[str, Any]:
    """The step the add-step form describes: a script, or a package deployment."""
    name, roles = forms.text(form, "name"), forms.words(form, "roles")
    action: dict[str, Any]
    if forms.text(form, "kind") == "package":
        action = {
            "action_type": "cephalo.package",
            "packages": [{"package_id": forms.text(form, "package_id")}],
        }
    else:
        action = {
            "action_type": "cephalo.script",
            "properties": {
                "script_body": forms.text(form, "script_body"),
                "syntax": forms.text(form, "syntax") or "bash",
            },
        }
    return {"name": name, "target_roles": roles, "actions": [{"name": name, **action}]}


@router.post("/projects/{project_id}/steps")
async def add_step(project_id: str, portal: FormPortalDep) -> Response:
    form = await portal.request.form()
    path = f"/projects/{project_id}/deployment-process"
    try:
        process = await portal.api.space("GET", path)
        steps = [*process["steps"], _step_of(form)]
        await portal.api.space("PUT", path, json={"version": process["version"], "steps": steps})
    except ApiError as error:
        if error.status not in forms.FORM_ERRORS:
            raise
        return await _project_page(portal, project_id, status=422, step_error=error.message)
    return redirect(f"/projects/{project_id}")


@router.post("/projects/{project_id}/releases")
async def create_release(project_id: str, portal: FormPortalDep) -> Response:
    form = await portal.request.form()
    body: dict[str, Any] = {"release_notes": forms.text(form, "release_notes")}
    if version := forms.text(form, "version"):
        body["version"] = version
    try:
        release = await portal.api.space("POST", f"/projects/{project_id}/releases", json=body)
    except ApiError as error:
        if error.status not in forms.FORM_ERRORS:
            raise
        return await _project_page(portal, project_id, status=422, release_error=error.message)
    return redirect(f"/releases/{release['id']}")


@router.get("/packages")
async def packages(portal: PortalDep) -> Response:
    found = await portal.api.items("/packages")
    return portal.render("packages.html", "Packages", packages=found)


@router.post("/packages")
async def upload_package(portal: FormPortalDep) -> Response:
    form = await portal.request.form()
    file = forms.upload(form, "package")
    if file is None:
        raise ApiError(422, "Invalid", "choose a package file to upload", [])
    await file.seek(0)

    async def chunks() -> Any:
        while chunk := await file.read(UPLOAD_CHUNK):
            yield chunk

    response = await portal.api.raw(
        "POST",
        portal.api.space_base + "/packages/raw",
        params={"filename": file.filename},
        content=chunks(),
    )
    if response.status_code >= 400:
        raise ApiError.of(response)
    return redirect("/packages")
