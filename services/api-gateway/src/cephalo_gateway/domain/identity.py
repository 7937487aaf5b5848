"""Who is calling: users, service accounts, API keys, login sessions and their grants.

Nothing here knows HTTP: the edge middleware passes in what the request presented and
gets back a `Principal` (or None). Password hashing runs in a worker thread, so a login
never stalls other requests.
"""

from __future__ import annotations

import asyncio
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from cephalo_common.errors import Conflict, Invalid, NotFound
from cephalo_common.security import internal_token
from cephalo_gateway.db.models import ApiKey, RoleAssignment, Team, User
from cephalo_gateway.db.models import Session as SessionRow
from cephalo_gateway.db.repositories import Repositories
from cephalo_gateway.domain import credentials
from cephalo_gateway.domain.permissions import (
    ADMINISTRATOR,
    BUILT_IN_ROLES,
    Grant,
    is_administrator,
)

ADMINISTRATORS_TEAM = "Administrators"
BOOTSTRAP_ACCOUNT = "bootstrap"
SESSION_AUDIENCE = "cephalo-session"
LAST_USED_RESOLUTION = timedelta(seconds=60)
"""`last_used_at` is written at most this often per key: not a write per request."""
MAX_PASSWORD_LENGTH = 1024
MIN_PASSWORD_LENGTH = 12


class AuthMethod:
    API_KEY = "api-key"  # pragma: allowlist secret
    SESSION = "session"
    ANONYMOUS = "anonymous"
    WEBHOOK = "webhook"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller and everything their teams grant."""

    user_id: uuid.UUID | None
    username: str
    is_service_account: bool
    grants: tuple[Grant, ...]
    method: str
    session_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    display_name: str = ""
    team_ids: tuple[uuid.UUID, ...] = field(default=())

    @property
    def is_administrator(self) -> bool:
        return is_administrator(self.grants)

    def identity(self) -> dict[str, object]:
        """What upstream services are told (signed) in `X-Cephalo-Identity`."""
        return {
            "sub": str(self.user_id) if self.user_id else None,
            "name": self.username,
            "service_account": self.is_service_account,
            "via": self.method,
            "admin": self.is_administrator,
        }


ANONYMOUS_ADMIN = Principal(
    user_id=None,
    username="anonymous",
    is_service_account=False,
    grants=(Grant(ADMINISTRATOR),),
    method=AuthMethod.ANONYMOUS,
)
"""Who an unauthenticated request is when `auth_required` is off (the dev stack only)."""


def _grant(assignment: RoleAssignment, team: Team) -> Grant:
    space_id = assignment.space_id or team.space_id
    return Grant(
        role=assignment.role,
        space_id=space_id,
        project_ids=frozenset(assignment.project_ids or ()),
        project_group_ids=frozenset(assignment.project_group_ids or ()),
        environment_ids=frozenset(assignment.environment_ids or ()),
    )


async def principal_of(repos: Repositories, user: User, method: str, **extra: object) -> Principal:
    rows = await repos.role_assignments.of_user(user.id)
    teams = await repos.teams.teams_of(user.id)
    return Principal(
        user_id=user.id,
        username=user.username,
        is_service_account=user.is_service_account,
        grants=tuple(_grant(assignment, team) for assignment, team in rows),
        method=method,
        display_name=user.display_name,
        team_ids=tuple(team.id for team in teams),
        **extra,  # type: ignore[arg-type]
    )


def key_is_usable(key: ApiKey, user: User, now: datetime) -> bool:
    if key.revoked_at is not None or not user.is_active:
        return False
    return key.expires_at is None or key.expires_at > now


async def authenticate_api_key(repos: Repositories, key: str, now: datetime) -> Principal | None:
    """The key's owner, or None for an unknown, revoked or expired key or a disabled user."""
    if not credentials.looks_like_api_key(key):
        return None
    found = await repos.api_keys.find_by_hash(credentials.api_key_hash(key))
    if found is None or not key_is_usable(*found, now):
        return None
    api_key, user = found
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        await repos.api_keys.touch(api_key.id, now)
    return await principal_of(repos, user, AuthMethod.API_KEY, api_key_id=api_key.id)


# Sessions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewSession:
    cookie: str
    csrf_token: str
    expires_at: datetime
    principal: Principal


async def start_session(
    repos: Repositories,
    user: User,
    *,
    key: bytes,
    now: datetime,
    lifetime: timedelta,
    ip_address: str | None,
) -> NewSession:
    secret = credentials.new_session_secret()
    session = await repos.sessions.add(
        SessionRow(
            user_id=user.id,
            secret_hash=credentials.session_secret_hash(secret),
            expires_at=now + lifetime,
            ip_address=ip_address,
        )
    )
    cookie = internal_token.sign(
        {"sid": str(session.id), "sec": secret},
        SESSION_AUDIENCE,
        key,
        ttl_seconds=int(lifetime.total_seconds()),
        now=now.timestamp(),
    )
    principal = await principal_of(repos, user, AuthMethod.SESSION, session_id=session.id)
    return NewSession(
        cookie, credentials.csrf_token(key, str(session.id)), session.expires_at, principal
    )


async def authenticate_session(
    repos: Repositories, cookie: str, *, key: bytes, now: datetime
) -> Principal | None:
    """The session's user, unless the cookie is forged, expired, revoked or its user off."""
    try:
        claims = internal_token.verify(cookie, SESSION_AUDIENCE, key, now=now.timestamp())
        session_id = uuid.UUID(str(claims["sid"]))
        secret = str(claims["sec"])
    except (internal_token.InvalidToken, KeyError, ValueError):
        return None
    found = await repos.sessions.find_with_user(session_id)
    if found is None:
        return None
    session, user = found
    if session.revoked_at is not None or session.expires_at <= now or not user.is_active:
        return None
    if not _same(session.secret_hash, credentials.session_secret_hash(secret)):
        return None
    return await principal_of(repos, user, AuthMethod.SESSION, session_id=session.id)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


async def end_session(repos: Repositories, session_id: uuid.UUID, now: datetime) -> None:
    session = await repos.sessions.find(session_id)
    if session is not None and session.revoked_at is None:
        session.revoked_at = now
        await repos.session.flush()


# Passwords and login ---------------------------------------------------------------------


class LoginFailed(Exception):
    """Unknown user, wrong password, disabled user or service account: one answer for all."""


_DUMMY_HASHES: dict[tuple[str, int], str] = {}


async def _dummy_hash(hasher: credentials.PasswordHasher) -> str:
    """A hash to verify against for unknown users, so both cases cost the same time."""
    marker = (hasher.algorithm, hasher.cost.scrypt_log2_n)
    if marker not in _DUMMY_HASHES:
        _DUMMY_HASHES[marker] = await asyncio.to_thread(hasher.hash, uuid.uuid4().hex)
    return _DUMMY_HASHES[marker]


async def check_password(
    repos: Repositories, hasher: credentials.PasswordHasher, username: str, password: str
) -> User:
    """The user these credentials belong to (rehashing an outdated hash), or `LoginFailed`."""
    user = await repos.users.find_by_username(username) if len(username) <= 200 else None
    encoded = user.password_hash if user is not None and user.password_hash else None
    candidate = password[:MAX_PASSWORD_LENGTH]
    ok = await asyncio.to_thread(hasher.verify, encoded or await _dummy_hash(hasher), candidate)
    if user is None or encoded is None or not ok:
        raise LoginFailed
    if not user.is_active or user.is_service_account:
        raise LoginFailed
    if hasher.needs_rehash(encoded):
        user.password_hash = await asyncio.to_thread(hasher.hash, candidate)
        await repos.session.flush()
    return user


def validate_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise Invalid(
            f"a password needs {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters",
            errors=[{"field": "body.password", "message": "length", "code": "password"}],
        )


async def set_password(
    repos: Repositories, hasher: credentials.PasswordHasher, user: User, password: str
) -> None:
    validate_password(password)
    if user.is_service_account:
        raise Invalid("service accounts sign in with API keys only")
    user.password_hash = await asyncio.to_thread(hasher.hash, password)
    await repos.session.flush()


# Users, teams, keys ----------------------------------------------------------------------


async def create_user(
    repos: Repositories,
    hasher: credentials.PasswordHasher,
    *,
    username: str,
    display_name: str | None = None,
    password: str | None = None,
    is_service_account: bool = False,
) -> User:
    username = username.strip()
    if not username:
        raise Invalid("a username cannot be empty")
    if await repos.users.find_by_username(username) is not None:
        raise Conflict(f"a user named {username!r} already exists")
    if password is not None:
        if is_service_account:
            raise Invalid("service accounts sign in with API keys only")
        validate_password(password)
    hashed = await asyncio.to_thread(hasher.hash, password) if password is not None else None
    try:
        return await repos.users.add(
            User(
                username=username,
                username_key=username.lower(),
                display_name=display_name or username,
                password_hash=hashed,
                is_service_account=is_service_account,
                is_active=True,
            )
        )
    except IntegrityError as error:
        raise Conflict(f"a user named {username!r} already exists") from error


async def administrators_team(repos: Repositories) -> Team:
    """The built-in system team whose members administer everything (made on first use)."""
    team = await repos.teams.find_by_name(ADMINISTRATORS_TEAM)
    if team is not None:
        return team
    team = await repos.teams.add(
        Team(
            name=ADMINISTRATORS_TEAM,
            name_key=ADMINISTRATORS_TEAM.lower(),
            description="System administrators: every permission in every space.",
            space_id=None,
            is_builtin=True,
        )
    )
    await repos.role_assignments.add(RoleAssignment(team_id=team.id, role=ADMINISTRATOR))
    return team


async def administrator_exists(repos: Repositories) -> bool:
    team = await repos.teams.find_by_name(ADMINISTRATORS_TEAM)
    return team is not None and await repos.teams.has_active_member(team.id)


async def make_administrator(repos: Repositories, user: User) -> None:
    team = await administrators_team(repos)
    await repos.teams.add_member(team.id, user.id)


async def create_api_key(
    repos: Repositories,
    user: User,
    *,
    purpose: str,
    expires_at: datetime | None,
    key: str | None = None,
) -> tuple[ApiKey, str]:
    """A new key for `user`; the plain key is returned once and never stored."""
    plain = key or credentials.new_api_key()
    row = await repos.api_keys.add(
        ApiKey(
            user_id=user.id,
            purpose=purpose,
            key_hash=credentials.api_key_hash(plain),
            display=credentials.api_key_display(plain),
            expires_at=expires_at,
        )
    )
    return row, plain


async def revoke_api_key(
    repos: Repositories, user_id: uuid.UUID, key_id: uuid.UUID, now: datetime
) -> ApiKey:
    key = await repos.api_keys.find(key_id)
    if key is None or key.user_id != user_id:
        raise NotFound(f"API key {key_id} was not found")
    if key.revoked_at is None:
        key.revoked_at = now
        await repos.session.flush()
    return key


async def ensure_bootstrap_key(
    repos: Repositories, hasher: credentials.PasswordHasher, key: str
) -> bool:
    """Register the configured bootstrap key for an administrator service account, once.

    Keyed by the key's hash, so restarts, several replicas and other administrators leave
    it alone, and a key revoked through the API stays revoked. True when it was added.
    """
    if not credentials.looks_like_api_key(key):
        raise ValueError("the bootstrap API key must look like API-<16+ letters and digits>")
    if await repos.api_keys.exists_with_hash(credentials.api_key_hash(key)):
        return False
    account = await repos.users.find_by_username(BOOTSTRAP_ACCOUNT)
    if account is None:
        account = await create_user(
            repos,
            hasher,
            username=BOOTSTRAP_ACCOUNT,
            display_name="Bootstrap service account",
            is_service_account=True,
        )
    await make_administrator(repos, account)
    await create_api_key(
        repos, account, purpose="bootstrap (from settings)", expires_at=None, key=key
    )
    return True


async def ensure_initial_admin(
    repos: Repositories, hasher: credentials.PasswordHasher, username: str, password: str
) -> bool:
    """Create the configured administrator when no administrator exists yet."""
    if await administrator_exists(repos):
        return False
    user = await repos.users.find_by_username(username)
    if user is None:
        user = await create_user(repos, hasher, username=username, password=password)
    await make_administrator(repos, user)
    return True


def check_role(role: str) -> None:
    if role not in BUILT_IN_ROLES:
        known = ", ".join(sorted(BUILT_IN_ROLES))
        raise Invalid(f"unknown role {role!r}; the roles are {known}")


def member_ids_valid(found: Sequence[User | None], wanted: Sequence[uuid.UUID]) -> None:
    missing = [str(user_id) for user_id, user in zip(wanted, found, strict=True) if user is None]
    if missing:
        raise Invalid(f"unknown users: {', '.join(missing)}")
