"""A release, its plan per environment, deploying it, and the task page with its live log."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from cephalo_gateway.portal import forms
from cephalo_gateway.portal.plan import plan_of
from cephalo_gateway.portal.views import (
    PREFIX,
    TERMINAL,
    FormPortalDep,
    PortalDep,
    redirect,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)
LOG_PAGE = 1000


async def _none() -> None:
    return None


@router.get("/releases/{release_id}")
async def release(release_id: str, portal: PortalDep, environment: str = "") -> Response:
    found, environments, deployments = await asyncio.gather(
        portal.api.space("GET", f"/releases/{release_id}"),
        portal.api.items("/environments"),
        portal.api.items("/deployments", release_id=release_id),
    )
    chosen = next((e for e in environments if str(e["id"]) == environment), None)
    project, machines = await asyncio.gather(
        portal.api.space("GET", f"/projects/{found['project_id']}"),
        portal.api.items("/machines", environment_id=chosen["id"]) if chosen else _none(),
    )
    plan = plan_of(found["steps"], machines) if machines is not None else None
    return portal.render(
        "release.html",
        f"Release {found['version']} of {project['name']}",
        release=found,
        project=project,
        environments=environments,
        chosen=chosen,
        plan=plan,
        deployments=deployments,
    )


@router.post("/releases/{release_id}/deploy")
async def deploy(release_id: str, portal: FormPortalDep) -> Response:
    form = await portal.request.form()
    body: dict[str, Any] = {
        "release_id": release_id,
        "environment_id": forms.text(form, "environment_id"),
    }
    if forms.checked(form, "use_guided_failure"):
        body["use_guided_failure"] = True
    deployment = await portal.api.space("POST", "/deployments", json=body)
    return redirect(f"/deployments/{deployment['id']}")


@router.get("/deployments/{deployment_id}")
async def deployment(deployment_id: str, portal: PortalDep) -> Response:
    """The deployment's task once the orchestrator has claimed it; a waiting page until then."""
    tasks = await portal.api.items("/tasks", deployment_id=deployment_id)
    if tasks:
        return redirect(f"/tasks/{tasks[0]['id']}")
    found = await portal.api.space("GET", f"/deployments/{deployment_id}")
    return portal.render("deployment_waiting.html", "Deployment queued", deployment=found)


async def _interruptions(portal: Any, task_id: str) -> list[dict[str, Any]]:
    found = await portal.api.space("GET", f"/tasks/{task_id}/interruptions")
    return [i for i in found if i["is_pending"]]


@router.get("/tasks/{task_id}")
async def task(task_id: str, portal: PortalDep) -> Response:
    found, log, interruptions = await asyncio.gather(
        portal.api.space("GET", f"/tasks/{task_id}"),
        portal.api.space("GET", f"/tasks/{task_id}/log", params={"limit": LOG_PAGE}),
        _interruptions(portal, task_id),
    )
    return portal.render(
        "task.html",
        f"Task: {found['project_name']} {found['release_version']} to {found['environment_name']}",
        task=found,
        log=log,
        interruptions=interruptions,
        terminal=TERMINAL,
    )


@router.get("/tasks/{task_id}/log")
async def task_log(task_id: str, portal: PortalDep, after: int = Query(0, ge=0)) -> Response:
    """What the live log polls: new lines after `after`, the state, open interruptions."""
    found, lines, pending = await asyncio.gather(
        portal.api.space("GET", f"/tasks/{task_id}"),
        portal.api.space(
            "GET", f"/tasks/{task_id}/log", params={"after": after, "limit": LOG_PAGE}
        ),
        _interruptions(portal, task_id),
    )
    return JSONResponse(
        {
            "state": found["state"],
            "completed": found["state"] in TERMINAL,
            "interruptions": len(pending),
            "lines": [
                {
                    "id": line["id"],
                    "text": line["text"],
                    "machine": line.get("machine"),
                    "source": line.get("source"),
                }
                for line in lines
            ],
        },
        headers={"cache-control": "no-store"},
    )


@router.post("/tasks/{task_id}/interruptions/{interruption_id}")
async def answer(task_id: str, interruption_id: str, portal: FormPortalDep) -> Response:
    form = await portal.request.form()
    base = f"/tasks/{task_id}/interruptions/{interruption_id}"
    await portal.api.space("POST", f"{base}/responsible")
    body = {"result": forms.text(form, "result"), "notes": forms.text(form, "notes") or None}
    await portal.api.space("POST", f"{base}/submit", json=body)
    return redirect(f"/tasks/{task_id}")


@router.post("/tasks/{task_id}/cancel")
async def cancel(task_id: str, portal: FormPortalDep) -> Response:
    await portal.api.space("POST", f"/tasks/{task_id}/cancel")
    return redirect(f"/tasks/{task_id}")
