"""Users, teams and their role assignments, and the built-in roles (system administration).

As far as the API goes: users are created, enabled and disabled (not deleted); teams are
created, edited (name, description, members) and deleted; roles are built in, so they are
listed and assigned to teams, scoped to a space, projects and environments.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.datastructures import FormData

from cephalo_gateway.portal import forms
from cephalo_gateway.portal.client import ApiError
from cephalo_gateway.portal.views import PREFIX, FormPortalDep, Portal, PortalDep, redirect

router = APIRouter(prefix=PREFIX, include_in_schema=False)
USERS, TEAMS, ROLES = "/api/v1/users", "/api/v1/teams", "/api/v1/roles"
EVERY_SPACE = "every"


def _path_id(value: str, what: str = "team") -> str:
    """The API answers 422 to a malformed id in its path; to the portal it is nothing found."""
    try:
        return str(uuid.UUID(value))
    except ValueError as error:
        raise ApiError(404, "Not found", f"no {what} {value!r}", []) from error


async def _refused_as_form(portal: Portal, call: Any, page: Any) -> Response | None:
    """Run one API write; a refusal to fix the form re-renders `page` with 422."""
    try:
        await call
    except ApiError as error:
        if error.status not in forms.FORM_ERRORS:
            raise
        response: Response = await page(status=422, error=error.message)
        return response
    return None


# Users -----------------------------------------------------------------------------------


async def _users_page(portal: Portal, status: int = 200, error: str = "") -> Response:
    users = await portal.api.call("GET", USERS, params={"limit": 500})
    return portal.render("users.html", "Users", status=status, users=users, error=error)


@router.get("/users")
async def users(portal: PortalDep) -> Response:
    return await _users_page(portal)


@router.post("/users")
async def create_user(portal: FormPortalDep) -> Response:
    form = await portal.request.form()
    service = forms.checked(form, "is_service_account")
    body = {
        "username": forms.text(form, "username"),
        "display_name": forms.text(form, "display_name") or None,
        "password": None if service else forms.raw(form, "password") or None,
        "is_service_account": service,
    }
    refused = await _refused_as_form(
        portal,
        portal.api.call("POST", USERS, json=body),
        lambda **kw: _users_page(portal, **kw),
    )
    return refused or redirect("/users")


@router.post("/users/{user_id}/active")
async def set_active(user_id: str, portal: FormPortalDep) -> Response:
    """Enable or disable a user (disabling ends their sessions and stops their keys)."""
    path = f"{USERS}/{_path_id(user_id, 'user')}"
    active = forms.text(await portal.request.form(), "active")
    if active not in ("true", "false"):
        raise forms.invalid("choose to enable or disable the user")
    refused = await _refused_as_form(
        portal,
        portal.api.call("PATCH", path, json={"is_active": active == "true"}),
        lambda **kw: _users_page(portal, **kw),
    )
    return refused or redirect("/users")


# Teams -----------------------------------------------------------------------------------


async def _directory(portal: Portal) -> dict[str, Any]:
    """Who and what a team's page names: users, the space, its projects and environments."""
    users, space, projects, environments = await asyncio.gather(
        portal.api.call("GET", USERS, params={"limit": 500}),
        portal.api.call("GET", portal.api.space_base),
        portal.api.items("/projects", take=500),
        portal.api.items("/environments", take=500),
    )
    return {
        "users": users,
        "space": space,
        "projects": projects,
        "environments": environments,
        "names": {
            **{str(u["id"]): u["username"] for u in users},
            str(space["id"]): space["name"],
            **{str(p["id"]): p["name"] for p in projects},
            **{str(e["id"]): e["name"] for e in environments},
        },
    }


async def _teams_page(portal: Portal, status: int = 200, error: str = "") -> Response:
    teams, directory = await asyncio.gather(portal.api.call("GET", TEAMS), _directory(portal))
    return portal.render(
        "teams.html", "Teams", status=status, teams=teams, error=error, **directory
    )


@router.get("/teams")
async def teams(portal: PortalDep) -> Response:
    return await _teams_page(portal)


def _team_of(form: FormData) -> dict[str, Any]:
    return {
        "name": forms.text(form, "name"),
        "description": forms.text(form, "description"),
        "member_user_ids": forms.chosen(form, "members"),
    }


@router.post("/teams")
async def create_team(portal: FormPortalDep) -> Response:
    body = _team_of(await portal.request.form())
    refused = await _refused_as_form(
        portal,
        portal.api.call("POST", TEAMS, json=body),
        lambda **kw: _teams_page(portal, **kw),
    )
    return refused or redirect("/teams")


async def _team_page(portal: Portal, team_id: str, status: int = 200, error: str = "") -> Response:
    team, roles, directory = await asyncio.gather(
        portal.api.call("GET", f"{TEAMS}/{_path_id(team_id)}"),
        portal.api.call("GET", ROLES),
        _directory(portal),
    )
    return portal.render(
        "team.html",
        f"Team {team['name']}",
        status=status,
        team=team,
        roles=roles,
        error=error,
        every_space=EVERY_SPACE,
        **directory,
    )


@router.get("/teams/{team_id}")
async def team(team_id: str, portal: PortalDep) -> Response:
    return await _team_page(portal, team_id)


@router.post("/teams/{team_id}")
async def save_team(team_id: str, portal: FormPortalDep) -> Response:
    body = _team_of(await portal.request.form())
    refused = await _refused_as_form(
        portal,
        portal.api.call("PUT", f"{TEAMS}/{_path_id(team_id)}", json=body),
        lambda **kw: _team_page(portal, team_id, **kw),
    )
    return refused or redirect(f"/teams/{team_id}")


@router.post("/teams/{team_id}/delete")
async def delete_team(team_id: str, portal: FormPortalDep) -> Response:
    refused = await _refused_as_form(
        portal,
        portal.api.call("DELETE", f"{TEAMS}/{_path_id(team_id)}"),
        lambda **kw: _team_page(portal, team_id, **kw),
    )
    return refused or redirect("/teams")


def _assignment_of(form: FormData) -> dict[str, Any]:
    space = forms.text(form, "space")
    return {
        "role": forms.text(form, "role"),
        "space_id": None if space in ("", EVERY_SPACE) else space,
        "project_ids": forms.chosen(form, "projects"),
        "environment_ids": forms.chosen(form, "environments"),
    }


@router.post("/teams/{team_id}/role-assignments")
async def assign_role(team_id: str, portal: FormPortalDep) -> Response:
    body = _assignment_of(await portal.request.form())
    path = f"{TEAMS}/{_path_id(team_id)}/role-assignments"
    refused = await _refused_as_form(
        portal,
        portal.api.call("POST", path, json=body),
        lambda **kw: _team_page(portal, team_id, **kw),
    )
    return refused or redirect(f"/teams/{team_id}")


@router.post("/teams/{team_id}/role-assignments/{assignment_id}/delete")
async def unassign_role(team_id: str, assignment_id: str, portal: FormPortalDep) -> Response:
    path = (
        f"{TEAMS}/{_path_id(team_id)}/role-assignments/{_path_id(assignment_id, 'role assignment')}"
    )
    refused = await _refused_as_form(
        portal,
        portal.api.call("DELETE", path),
        lambda **kw: _team_page(portal, team_id, **kw),
    )
    return refused or redirect(f"/teams/{team_id}")


# Roles -----------------------------------------------------------------------------------


@router.get("/roles")
async def roles(portal: PortalDep) -> Response:
    found = await portal.api.call("GET", ROLES)
    return portal.render("roles.html", "Roles", roles=found)
