"""Sign-in, the caller's own identity and permissions, users and their API keys."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from cephalo_common.errors import Forbidden, Invalid, NotFound
from cephalo_common.ids import utc_now
from cephalo_gateway.db.models import User as UserRow
from cephalo_gateway.deps import PrincipalDep, ReposDep, SecurityDep, SettingsDep, require
from cephalo_gateway.domain import audit, identity
from cephalo_gateway.domain.permissions import (
    BUILT_IN_ROLES,
    ObjectScope,
    Permission,
    is_allowed,
    permissions_in,
)
from cephalo_gateway.edge import CSRF_COOKIE, SESSION_COOKIE
from cephalo_gateway.schemas.identity import (
    ApiKey,
    ApiKeyCreate,
    ApiKeyCreated,
    Grant,
    LoginRequest,
    LoginResponse,
    MyPermissions,
    User,
    UserCreate,
    UserUpdate,
)

router = APIRouter(prefix="/api/v1/users", tags=["users"])
WRONG_CREDENTIALS = "the username or password is wrong"


def _too_many(retry_after: int) -> JSONResponse:
    return JSONResponse(
        {
            "type": "https://cephalo.dev/problems/too-many-requests",
            "title": "Too many requests",
            "status": 429,
            "detail": "too many failed sign-ins; wait before trying again",
        },
        status_code=429,
        media_type="application/problem+json",
        headers={"Retry-After": str(retry_after)},
    )


@router.post("/login", response_model=LoginResponse, responses={401: {}, 429: {}})
async def login(
    body: LoginRequest,
    request: Request,
    repos: ReposDep,
    security: SecurityDep,
    settings: SettingsDep,
) -> Response:
    """Username and password → a session cookie (HttpOnly, Secure, SameSite=Lax) and a
    CSRF token. Unknown users and wrong passwords get the same answer."""
    ip = str(getattr(request.state, "client_ip", "unknown"))
    keys = (f"login-ip:{ip}", f"login-user:{body.username.strip().lower()[:200]}")
    request.state.audit_actor = body.username[:200]
    for key in keys:
        decision = security.limits.failed_logins.peek(key)
        if not decision.allowed:
            request.state.audit_category = audit.Category.LOGIN_FAILED
            request.state.audit_detail = "throttled"
            return _too_many(decision.retry_after_seconds)
    try:
        user = await identity.check_password(repos, security.hasher, body.username, body.password)
    except identity.LoginFailed:
        for key in keys:
            security.limits.failed_logins.take(key)
        request.state.audit_category = audit.Category.LOGIN_FAILED
        return JSONResponse(
            {
                "type": "https://cephalo.dev/problems/unauthorized",
                "title": "Unauthorized",
                "status": 401,
                "detail": WRONG_CREDENTIALS,
            },
            status_code=401,
            media_type="application/problem+json",
        )
    lifetime = timedelta(hours=settings.session_hours)
    session = await identity.start_session(
        repos, user, key=security.session_key, now=utc_now(), lifetime=lifetime, ip_address=ip
    )
    request.state.audit_category = audit.Category.LOGIN_SUCCEEDED
    request.state.audit_user_id = user.id
    answer = LoginResponse(
        user=User.model_validate(user), csrf_token=session.csrf_token, expires_at=session.expires_at
    )
    response = JSONResponse(answer.model_dump(mode="json"), headers={"Cache-Control": "no-store"})
    max_age = int(lifetime.total_seconds())
    secure = settings.session_cookie_secure
    response.set_cookie(
        SESSION_COOKIE,
        session.cookie,
        max_age=max_age,
        httponly=True,
        secure=secure,
        samesite="lax",
    )
    response.set_cookie(
        CSRF_COOKIE,
        session.csrf_token,
        max_age=max_age,
        httponly=False,
        secure=secure,
        samesite="lax",
    )
    return response


@router.post("/logout", status_code=204)
async def logout(principal: PrincipalDep, request: Request, repos: ReposDep) -> Response:
    """Ends the session of this cookie (API keys are revoked on their own route)."""
    if principal.session_id is not None:
        await identity.end_session(repos, principal.session_id, utc_now())
    request.state.audit_category = audit.Category.LOGGED_OUT
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CSRF_COOKIE)
    return response


def _me(principal: PrincipalDep) -> uuid.UUID:
    if principal.user_id is None:
        raise NotFound("anonymous callers have no user (authentication is off)")
    return principal.user_id


@router.get("/me")
async def me(principal: PrincipalDep, repos: ReposDep) -> User:
    return User.model_validate(await repos.users.get(_me(principal)))


@router.get("/me/permissions")
async def my_permissions(
    principal: PrincipalDep,
    space: uuid.UUID | None = None,
    project: uuid.UUID | None = None,
    project_group: uuid.UUID | None = None,
    environment: uuid.UUID | None = None,
) -> MyPermissions:
    """Every grant of the caller, and what they may do to an object in the scope given
    (all dimensions optional, like Octopus's "test permissions")."""
    scope = ObjectScope(
        space_id=space,
        project_id=project,
        project_group_id=project_group,
        environment_ids=frozenset({environment} if environment else ()),
    )
    return MyPermissions(
        user_id=principal.user_id,
        username=principal.username,
        is_administrator=principal.is_administrator,
        grants=[
            Grant(
                role=g.role,
                space_id=g.space_id,
                project_ids=sorted(g.project_ids),
                project_group_ids=sorted(g.project_group_ids),
                environment_ids=sorted(g.environment_ids),
                permissions=sorted(g.permissions),
            )
            for g in principal.grants
        ],
        scope={
            "space": space,
            "project": project,
            "project_group": project_group,
            "environment": environment,
        },
        permissions=sorted(permissions_in(principal.grants, scope)),
    )


# Administration -------------------------------------------------------------------------

user_viewer = require(Permission.USER_VIEW)
user_editor = require(Permission.USER_EDIT)


@router.get("", dependencies=[Depends(user_viewer)])
async def list_users(
    repos: ReposDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[User]:
    return [User.model_validate(u) for u in await repos.users.list_all(limit=limit, offset=offset)]


@router.post("", status_code=201, dependencies=[Depends(user_editor)])
async def create_user(body: UserCreate, repos: ReposDep, security: SecurityDep) -> User:
    """A person (with a password) or a service account (API keys only)."""
    user = await identity.create_user(
        repos,
        security.hasher,
        username=body.username,
        display_name=body.display_name,
        password=body.password,
        is_service_account=body.is_service_account,
    )
    return User.model_validate(user)


async def _user(repos: ReposDep, principal: PrincipalDep, user_ref: str) -> UserRow:
    """`me` or an id; other users' records need UserView (administrators)."""
    if user_ref == "me":
        return await repos.users.get(_me(principal))
    try:
        user_id = uuid.UUID(user_ref)
    except ValueError as error:
        raise NotFound(f"user {user_ref!r} was not found") from error
    if user_id != principal.user_id and not is_allowed(
        principal.grants, Permission.USER_VIEW, ObjectScope()
    ):
        raise Forbidden("this needs the UserView permission")
    return await repos.users.get(user_id)


def _may_edit(principal: PrincipalDep, user: UserRow) -> None:
    if user.id != principal.user_id and not is_allowed(
        principal.grants, Permission.USER_EDIT, ObjectScope()
    ):
        raise Forbidden("this needs the UserEdit permission")


@router.get("/{user_ref}")
async def get_user(user_ref: str, repos: ReposDep, principal: PrincipalDep) -> User:
    return User.model_validate(await _user(repos, principal, user_ref))


@router.patch("/{user_ref}")
async def update_user(
    user_ref: str, body: UserUpdate, repos: ReposDep, principal: PrincipalDep, security: SecurityDep
) -> User:
    """Anyone may change their own name and password; enabling and disabling users needs
    UserEdit. Disabling a user ends their sessions and stops their API keys at once."""
    user = await _user(repos, principal, user_ref)
    _may_edit(principal, user)
    if body.is_active is not None and not is_allowed(
        principal.grants, Permission.USER_EDIT, ObjectScope()
    ):
        raise Forbidden("this needs the UserEdit permission")
    if body.display_name is not None:
        user.display_name = body.display_name
    if body.password is not None:
        await identity.set_password(repos, security.hasher, user, body.password)
        await repos.sessions.revoke_all_of(user.id, utc_now())
    if body.is_active is not None:
        if not body.is_active and user.id == principal.user_id:
            raise Invalid("you cannot disable yourself")
        user.is_active = body.is_active
        if not body.is_active:
            await repos.sessions.revoke_all_of(user.id, utc_now())
    await repos.session.flush()
    return User.model_validate(user)


@router.get("/{user_ref}/api-keys")
async def list_api_keys(user_ref: str, repos: ReposDep, principal: PrincipalDep) -> list[ApiKey]:
    user = await _user(repos, principal, user_ref)
    return [ApiKey.model_validate(k) for k in await repos.api_keys.of_user(user.id)]


@router.post("/{user_ref}/api-keys", status_code=201)
async def create_api_key(
    user_ref: str,
    body: ApiKeyCreate,
    repos: ReposDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    response: Response,
) -> ApiKeyCreated:
    """The key is in this answer only; afterwards only its hash exists."""
    user = await _user(repos, principal, user_ref)
    _may_edit(principal, user)
    now = utc_now()
    expires_at = body.expires_at
    if body.never_expires and expires_at is not None:
        raise Invalid("give expires_at or never_expires, not both")
    if expires_at is None and not body.never_expires and settings.api_key_default_expiry_days:
        expires_at = now + timedelta(days=settings.api_key_default_expiry_days)
    if expires_at is not None and expires_at <= now:
        raise Invalid("expires_at must be in the future")
    row, plain = await identity.create_api_key(
        repos, user, purpose=body.purpose, expires_at=expires_at
    )
    response.headers["Cache-Control"] = "no-store"
    return ApiKeyCreated.model_validate({**ApiKey.model_validate(row).model_dump(), "key": plain})


@router.delete("/{user_ref}/api-keys/{key_id}")
async def revoke_api_key(
    user_ref: str, key_id: uuid.UUID, repos: ReposDep, principal: PrincipalDep
) -> ApiKey:
    """Revoked at once: the key's next request is refused."""
    user = await _user(repos, principal, user_ref)
    _may_edit(principal, user)
    return ApiKey.model_validate(await identity.revoke_api_key(repos, user.id, key_id, utc_now()))


roles_router = APIRouter(prefix="/api/v1", tags=["users"])


role_viewer = require(Permission.USER_ROLE_VIEW)


@roles_router.get("/roles", dependencies=[Depends(role_viewer)])
async def list_roles() -> list[dict[str, object]]:
    """The built-in roles and their permissions."""
    return [
        {
            "name": role.name,
            "title": role.title,
            "description": role.description,
            "is_system": role.is_system,
            "permissions": sorted(role.permissions),
        }
        for role in BUILT_IN_ROLES.values()
    ]


@roles_router.get("/permissions", dependencies=[Depends(role_viewer)])
async def list_permissions() -> list[str]:
    return sorted(Permission)
