"""All SQL of api-gateway. Repositories flush; the edge commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cephalo_common.db.repository import RepositoryBase
from cephalo_common.ids import uuid7
from cephalo_gateway.db.models import (
    ApiKey,
    AuditEvent,
    RoleAssignment,
    Session,
    Team,
    TeamMember,
    User,
    Webhook,
    WebhookDelivery,
)


@dataclass(frozen=True)
class AuditFilter:
    user_id: uuid.UUID | None = None
    actor: str | None = None
    category: str | None = None
    space_id: uuid.UUID | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None


class AuditEventRepository(RepositoryBase[AuditEvent]):
    model = AuditEvent
    noun = "audit event"

    async def list_newest_first(
        self, *, limit: int, offset: int, filter: AuditFilter | None = None
    ) -> Sequence[AuditEvent]:
        statement = select(AuditEvent)
        f = filter or AuditFilter()
        if f.user_id is not None:
            statement = statement.where(AuditEvent.user_id == f.user_id)
        if f.actor is not None:
            statement = statement.where(func.lower(AuditEvent.actor) == f.actor.lower())
        if f.category is not None:
            statement = statement.where(AuditEvent.category == f.category)
        if f.space_id is not None:
            statement = statement.where(AuditEvent.space_id == f.space_id)
        if f.occurred_from is not None:
            statement = statement.where(AuditEvent.occurred_at >= f.occurred_from)
        if f.occurred_to is not None:
            statement = statement.where(AuditEvent.occurred_at < f.occurred_to)
        return await self.list(
            statement.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
            .limit(limit)
            .offset(offset)
        )

    async def categories(self) -> Sequence[str]:
        result = await self.session.execute(
            select(AuditEvent.category).distinct().order_by(AuditEvent.category)
        )
        return list(result.scalars().all())


class UserRepository(RepositoryBase[User]):
    model = User
    noun = "user"

    async def find_by_username(self, username: str) -> User | None:
        result = await self.session.execute(
            select(User).where(User.username_key == username.strip().lower())
        )
        return result.scalar_one_or_none()

    async def list_all(self, *, limit: int, offset: int) -> Sequence[User]:
        return await self.list(select(User).order_by(User.username_key).limit(limit).offset(offset))


class TeamRepository(RepositoryBase[Team]):
    model = Team
    noun = "team"

    async def find_by_name(self, name: str) -> Team | None:
        result = await self.session.execute(
            select(Team).where(Team.name_key == name.strip().lower())
        )
        return result.scalar_one_or_none()

    async def list_all(self) -> Sequence[Team]:
        return await self.list(select(Team).order_by(Team.name_key))

    async def member_ids(self, team_id: uuid.UUID) -> list[uuid.UUID]:
        result = await self.session.execute(
            select(TeamMember.user_id).where(TeamMember.team_id == team_id)
        )
        return list(result.scalars().all())

    async def add_member(self, team_id: uuid.UUID, user_id: uuid.UUID) -> None:
        await self.session.execute(
            insert(TeamMember)
            .values(id=uuid7(), team_id=team_id, user_id=user_id)
            .on_conflict_do_nothing(index_elements=["team_id", "user_id"])
        )

    async def set_members(self, team_id: uuid.UUID, user_ids: Sequence[uuid.UUID]) -> None:
        current = set(await self.member_ids(team_id))
        wanted = set(user_ids)
        for member in await self.session.scalars(
            select(TeamMember).where(
                TeamMember.team_id == team_id, TeamMember.user_id.in_(current - wanted)
            )
        ):
            await self.session.delete(member)
        for user_id in wanted - current:
            self.session.add(TeamMember(team_id=team_id, user_id=user_id))
        await self.session.flush()

    async def has_active_member(self, team_id: uuid.UUID) -> bool:
        result = await self.session.execute(
            select(
                exists().where(
                    TeamMember.team_id == team_id,
                    TeamMember.user_id == User.id,
                    User.is_active.is_(True),
                )
            )
        )
        return bool(result.scalar())

    async def teams_of(self, user_id: uuid.UUID) -> Sequence[Team]:
        return await self.list(
            select(Team)
            .join(TeamMember, TeamMember.team_id == Team.id)
            .where(TeamMember.user_id == user_id)
            .order_by(Team.name_key)
        )


class RoleAssignmentRepository(RepositoryBase[RoleAssignment]):
    model = RoleAssignment
    noun = "role assignment"

    async def of_team(self, team_id: uuid.UUID) -> Sequence[RoleAssignment]:
        return await self.list(
            select(RoleAssignment)
            .where(RoleAssignment.team_id == team_id)
            .order_by(RoleAssignment.created_at, RoleAssignment.id)
        )

    async def of_user(self, user_id: uuid.UUID) -> Sequence[tuple[RoleAssignment, Team]]:
        """Every assignment of every team the user is in, with its team."""
        result = await self.session.execute(
            select(RoleAssignment, Team)
            .join(Team, Team.id == RoleAssignment.team_id)
            .join(TeamMember, TeamMember.team_id == Team.id)
            .where(TeamMember.user_id == user_id)
        )
        return [(row[0], row[1]) for row in result.all()]

    async def delete(self, assignment: RoleAssignment) -> None:
        await self.session.delete(assignment)
        await self.session.flush()


class ApiKeyRepository(RepositoryBase[ApiKey]):
    model = ApiKey
    noun = "API key"

    async def find_by_hash(self, key_hash: str) -> tuple[ApiKey, User] | None:
        result = await self.session.execute(
            select(ApiKey, User)
            .join(User, User.id == ApiKey.user_id)
            .where(ApiKey.key_hash == key_hash)
        )
        row = result.first()
        return (row[0], row[1]) if row is not None else None

    async def exists_with_hash(self, key_hash: str) -> bool:
        result = await self.session.execute(select(exists().where(ApiKey.key_hash == key_hash)))
        return bool(result.scalar())

    async def of_user(self, user_id: uuid.UUID) -> Sequence[ApiKey]:
        return await self.list(
            select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at.desc())
        )

    async def touch(self, key_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now)
        )


class SessionRepository(RepositoryBase[Session]):
    model = Session
    noun = "session"

    async def find_with_user(self, session_id: uuid.UUID) -> tuple[Session, User] | None:
        result = await self.session.execute(
            select(Session, User)
            .join(User, User.id == Session.user_id)
            .where(Session.id == session_id)
        )
        row = result.first()
        return (row[0], row[1]) if row is not None else None

    async def revoke_all_of(self, user_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(Session)
            .where(Session.user_id == user_id, Session.revoked_at.is_(None))
            .values(revoked_at=now)
        )


class WebhookRepository(RepositoryBase[Webhook]):
    model = Webhook
    noun = "webhook"

    async def list_all(self) -> Sequence[Webhook]:
        return await self.list(select(Webhook).order_by(Webhook.created_at))

    async def record_delivery(self, webhook_id: uuid.UUID, delivery_id: str, event: str) -> bool:
        """False when this delivery id was already seen (a replay)."""
        result = await self.session.execute(
            insert(WebhookDelivery)
            .values(id=uuid7(), webhook_id=webhook_id, delivery_id=delivery_id, event=event)
            .on_conflict_do_nothing(index_elements=["webhook_id", "delivery_id"])
            .returning(WebhookDelivery.id)
        )
        return result.scalar_one_or_none() is not None

    async def set_outcome(self, webhook_id: uuid.UUID, delivery_id: str, outcome: str) -> None:
        await self.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.webhook_id == webhook_id,
                WebhookDelivery.delivery_id == delivery_id,
            )
            .values(outcome=outcome[:2000])
        )


class Repositories:
    """Every repository of this service over one session (one unit of work)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.audit_events = AuditEventRepository(session)
        self.users = UserRepository(session)
        self.teams = TeamRepository(session)
        self.role_assignments = RoleAssignmentRepository(session)
        self.api_keys = ApiKeyRepository(session)
        self.sessions = SessionRepository(session)
        self.webhooks = WebhookRepository(session)
