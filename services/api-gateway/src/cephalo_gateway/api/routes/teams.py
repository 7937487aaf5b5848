"""Teams, their members and their scoped role assignments (system administration)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Response
from sqlalchemy.exc import IntegrityError

from cephalo_common.errors import Conflict, Invalid
from cephalo_gateway.db.models import RoleAssignment as RoleAssignmentRow
from cephalo_gateway.db.models import Team as TeamRow
from cephalo_gateway.db.repositories import Repositories
from cephalo_gateway.deps import ReposDep, require
from cephalo_gateway.domain import identity
from cephalo_gateway.domain.permissions import BUILT_IN_ROLES
from cephalo_gateway.domain.permissions import Permission as P
from cephalo_gateway.schemas.identity import (
    RoleAssignment,
    RoleAssignmentCreate,
    Team,
    TeamCreate,
    TeamUpdate,
)

router = APIRouter(prefix="/api/v1/teams", tags=["teams"])
viewer = [Depends(require(P.TEAM_VIEW))]
editor = [Depends(require(P.TEAM_EDIT))]


async def render(repos: Repositories, team: TeamRow) -> Team:
    return Team(
        id=team.id,
        name=team.name,
        description=team.description,
        space_id=team.space_id,
        is_builtin=team.is_builtin,
        member_user_ids=await repos.teams.member_ids(team.id),
        role_assignments=[
            RoleAssignment.model_validate(a) for a in await repos.role_assignments.of_team(team.id)
        ],
    )


async def _members(repos: Repositories, user_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    unique = list(dict.fromkeys(user_ids))
    identity.member_ids_valid([await repos.users.find(u) for u in unique], unique)
    return unique


@router.get("", dependencies=viewer)
async def list_teams(repos: ReposDep) -> list[Team]:
    return [await render(repos, team) for team in await repos.teams.list_all()]


@router.post("", status_code=201, dependencies=editor)
async def create_team(body: TeamCreate, repos: ReposDep) -> Team:
    if await repos.teams.find_by_name(body.name) is not None:
        raise Conflict(f"a team named {body.name!r} already exists")
    members = await _members(repos, body.member_user_ids)
    try:
        team = await repos.teams.add(
            TeamRow(
                name=body.name,
                name_key=body.name.lower(),
                description=body.description,
                space_id=body.space_id,
                is_builtin=False,
            )
        )
    except IntegrityError as error:
        raise Conflict(f"a team named {body.name!r} already exists") from error
    await repos.teams.set_members(team.id, members)
    return await render(repos, team)


@router.get("/{team_id}", dependencies=viewer)
async def get_team(team_id: uuid.UUID, repos: ReposDep) -> Team:
    return await render(repos, await repos.teams.get(team_id))


@router.put("/{team_id}", dependencies=editor)
async def update_team(team_id: uuid.UUID, body: TeamUpdate, repos: ReposDep) -> Team:
    team = await repos.teams.get(team_id)
    if body.name is not None and body.name.lower() != team.name_key:
        if team.is_builtin:
            raise Invalid("built-in teams cannot be renamed")
        if await repos.teams.find_by_name(body.name) is not None:
            raise Conflict(f"a team named {body.name!r} already exists")
        team.name, team.name_key = body.name, body.name.lower()
    if body.description is not None:
        team.description = body.description
    if body.member_user_ids is not None:
        members = await _members(repos, body.member_user_ids)
        if team.is_builtin and not members:
            raise Invalid("the administrators team cannot be left without members")
        await repos.teams.set_members(team.id, members)
    await repos.session.flush()
    return await render(repos, team)


@router.delete("/{team_id}", status_code=204, dependencies=editor)
async def delete_team(team_id: uuid.UUID, repos: ReposDep) -> Response:
    team = await repos.teams.get(team_id)
    if team.is_builtin:
        raise Invalid("built-in teams cannot be deleted")
    await repos.session.delete(team)
    await repos.session.flush()
    return Response(status_code=204)


@router.post("/{team_id}/role-assignments", status_code=201, dependencies=editor)
async def assign_role(
    team_id: uuid.UUID, body: RoleAssignmentCreate, repos: ReposDep
) -> RoleAssignment:
    """A role for the team, scoped by space, projects, project groups and environments
    (empty lists leave a dimension unrestricted)."""
    team = await repos.teams.get(team_id)
    identity.check_role(body.role)
    role = BUILT_IN_ROLES[body.role]
    if team.space_id is not None and body.space_id not in (None, team.space_id):
        raise Invalid("a space team's roles apply in its own space only")
    restricted = body.project_ids or body.project_group_ids or body.environment_ids
    if role.is_system and (body.space_id or team.space_id or restricted):
        raise Invalid(f"{body.role!r} holds system permissions: assign it unscoped only")
    assignment = await repos.role_assignments.add(
        RoleAssignmentRow(
            team_id=team.id,
            role=body.role,
            space_id=body.space_id,
            project_ids=list(dict.fromkeys(body.project_ids)),
            project_group_ids=list(dict.fromkeys(body.project_group_ids)),
            environment_ids=list(dict.fromkeys(body.environment_ids)),
        )
    )
    return RoleAssignment.model_validate(assignment)


@router.delete("/{team_id}/role-assignments/{assignment_id}", status_code=204, dependencies=editor)
async def unassign_role(team_id: uuid.UUID, assignment_id: uuid.UUID, repos: ReposDep) -> Response:
    team = await repos.teams.get(team_id)
    assignment = await repos.role_assignments.get(assignment_id)
    if assignment.team_id != team.id:
        raise Invalid("that assignment belongs to another team")
    if team.is_builtin:
        raise Invalid("the administrators team keeps its role")
    await repos.role_assignments.delete(assignment)
    return Response(status_code=204)
