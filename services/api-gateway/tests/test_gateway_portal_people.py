"""Users, teams and roles administration in the portal (in process): an administrator adds
a user and a team, assigns a scoped role, disables the user; bad input is the form again
with 422, unknown ids 404; anyone else sees no administration and is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from cephalo_common.testing import running
from cephalo_gateway.app import create_app
from cephalo_gateway.portal.audit import page_problems
from cephalo_gateway.portal.testing import (
    PASSWORD,
    csrf_of,
    new_user,
    signed_in,
    unique,
    well_formed,
)
from cephalo_gateway.settings import GatewaySettings


@pytest.fixture
def portal_app(gateway_settings: GatewaySettings) -> FastAPI:
    """Plain-HTTP test client: the portal cookie must not be `Secure` here."""
    return create_app(gateway_settings.model_copy(update={"session_cookie_secure": False}))


@pytest.fixture
async def admin(portal_app: FastAPI, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with running(portal_app) as client:
        client.headers["X-Cephalo-Api-Key"] = admin_key
        yield client


def refused_form(response: httpx.Response, text: str) -> None:
    assert response.status_code == 422, response.text
    assert 'role="alert"' in response.text and text in response.text, response.text
    assert page_problems(response.text) == []


async def test_an_administrator_manages_users_teams_and_scoped_roles(
    portal_app: FastAPI, admin: httpx.AsyncClient
) -> None:
    environment = await admin.post(
        "/api/v1/spaces/default/environments", json={"name": unique("PeopleEnv")}
    )
    assert environment.status_code == 201
    async with signed_in(portal_app, await new_user(admin, "administrator")) as browser:
        users_page = well_formed(await browser.get("/app/users"))
        assert "Administration" in users_page
        token = csrf_of(users_page)
        username = unique("newcomer")
        person = {"csrf_token": token, "username": username, "password": PASSWORD}
        assert (await browser.post("/app/users", data=person)).status_code == 303
        refused_form(await browser.post("/app/users", data=person), "already exists")
        service = {"csrf_token": token, "username": unique("svc"), "is_service_account": "on"}
        assert (await browser.post("/app/users", data=service)).status_code == 303
        listed = (await admin.get("/api/v1/users", params={"limit": 500})).json()
        user = next(u for u in listed if u["username"] == username)
        assert f'data-user="{username}"' in well_formed(await browser.get("/app/users"))

        team_name = unique("Team")
        team_form = {"csrf_token": token, "name": team_name, "members": user["id"]}
        assert (await browser.post("/app/teams", data=team_form)).status_code == 303
        refused_form(await browser.post("/app/teams", data=team_form), "already exists")
        teams = (await admin.get("/api/v1/teams")).json()
        team = next(t for t in teams if t["name"] == team_name)
        assert team["member_user_ids"] == [user["id"]]
        assert username in well_formed(await browser.get("/app/teams"))

        team_page = f"/app/teams/{team['id']}"
        well_formed(await browser.get(team_page))
        assignment = {
            "csrf_token": token,
            "role": "project-deployer",
            "environments": environment.json()["id"],
        }
        assert (
            await browser.post(f"{team_page}/role-assignments", data=assignment)
        ).status_code == 303
        shown = well_formed(await browser.get(team_page))
        assert 'data-assignment="project-deployer"' in shown
        assert environment.json()["name"] in shown
        system_scoped = {**assignment, "role": "administrator"}
        refused_form(
            await browser.post(f"{team_page}/role-assignments", data=system_scoped), "unscoped"
        )
        refused_form(
            await browser.post(
                f"{team_page}/role-assignments", data={**assignment, "role": "wizard"}
            ),
            "",
        )
        assigned = (await admin.get(f"/api/v1/teams/{team['id']}")).json()["role_assignments"]
        assert [a["role"] for a in assigned] == ["project-deployer"]
        removed = await browser.post(
            f"{team_page}/role-assignments/{assigned[0]['id']}/delete", data={"csrf_token": token}
        )
        assert removed.status_code == 303
        renamed = {"csrf_token": token, "name": team_name + "-b", "description": "on call"}
        assert (await browser.post(team_page, data=renamed)).status_code == 303
        after = (await admin.get(f"/api/v1/teams/{team['id']}")).json()
        assert (after["name"], after["member_user_ids"], after["role_assignments"]) == (
            team_name + "-b",
            [],
            [],
        )

        assert (await browser.get("/app/teams/not-a-team")).status_code == 404
        assert (await browser.get(f"/app/teams/{user['id']}")).status_code == 404
        roles = well_formed(await browser.get("/app/roles"))
        assert 'data-role="project-viewer"' in roles and "DeploymentCreate" in roles

        disabled = await browser.post(
            f"/app/users/{user['id']}/active", data={"csrf_token": token, "active": "false"}
        )
        assert disabled.status_code == 303
        assert not (await admin.get(f"/api/v1/users/{user['id']}")).json()["is_active"]
        bad = await browser.post(f"/app/users/{user['id']}/active", data={"csrf_token": token})
        assert bad.status_code == 422
        deleted = await browser.post(f"{team_page}/delete", data={"csrf_token": token})
        assert deleted.status_code == 303
        assert (await browser.get(team_page)).status_code == 404

    async with signed_in(portal_app, await new_user(admin, "space-manager")) as manager:
        dashboard = well_formed(await manager.get("/app/dashboard"))
        assert "Administration" not in dashboard
        assert (await manager.get("/app/users")).status_code == 403
        post = {
            "csrf_token": csrf_of(dashboard),
            "username": unique("sneaky"),
            "password": PASSWORD,
        }
        assert (await manager.post("/app/users", data=post)).status_code == 403
        names = [
            u["username"] for u in (await admin.get("/api/v1/users", params={"limit": 500})).json()
        ]
        assert post["username"] not in names
        team_post = {"csrf_token": csrf_of(dashboard), "name": unique("SneakyTeam")}
        assert (await manager.post("/app/teams", data=team_post)).status_code == 403
