"""Dashboard, environments, deployment targets and pending agent registrations."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from cephalo_gateway.portal import forms
from cephalo_gateway.portal.dashboard import rows_of
from cephalo_gateway.portal.views import PREFIX, FormPortalDep, PortalDep, redirect

router = APIRouter(prefix=PREFIX, include_in_schema=False)


async def _nothing() -> list[Any]:
    return []


@router.get("/dashboard")
async def dashboard(portal: PortalDep, project_group: str = "") -> Response:
    """One dashboard call for the whole grid (plus the groups for the filter)."""
    params = {"project_group": project_group} if project_group else None
    board, groups = await asyncio.gather(
        portal.api.space("GET", "/dashboard", params=params), portal.api.items("/project-groups")
    )
    return portal.render(
        "dashboard.html",
        "Dashboard",
        rows=rows_of(board, PREFIX),
        environment_names=[e["name"] for e in board["environments"]],
        groups=groups,
        project_group=project_group,
    )


@router.get("/environments")
async def environments(portal: PortalDep) -> Response:
    found = await portal.api.items("/environments")
    return portal.render("environments.html", "Environments", environments=found)


@router.post("/environments")
async def create_environment(portal: FormPortalDep) -> Response:
    form = await portal.request.form()
    body = {
        "name": forms.text(form, "name"),
        "description": forms.text(form, "description"),
        "use_guided_failure": forms.checked(form, "use_guided_failure"),
    }
    await portal.api.space("POST", "/environments", json=body)
    return redirect("/environments")


@router.get("/machines")
async def machines(portal: PortalDep) -> Response:
    found, pending, environments = await asyncio.gather(
        portal.api.items("/machines"),
        portal.api.items("/machines/pending") if portal.viewer.can("MachineCreate") else _nothing(),
        portal.api.items("/environments"),
    )
    names = {str(e["id"]): e["name"] for e in environments}
    return portal.render(
        "machines.html",
        "Deployment targets",
        machines=found,
        pending=pending,
        environments=environments,
        environment_names=names,
    )


@router.post("/machines/pending/{pending_id}/approve")
async def approve(pending_id: str, portal: FormPortalDep) -> Response:
    form = await portal.request.form()
    body = {
        "name": forms.text(form, "name") or None,
        "environments": form.getlist("environments"),
        "roles": forms.words(form, "roles"),
    }
    await portal.api.space("POST", f"/machines/pending/{pending_id}/approve", json=body)
    return redirect("/machines")
