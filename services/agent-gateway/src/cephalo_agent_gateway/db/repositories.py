"""All SQL of agent-gateway. Repositories flush; the edge commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Text, delete, select, update
from sqlalchemy.dialects.postgresql import array, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cephalo_agent_gateway.db.models import Machine, ScriptRun
from cephalo_common.db.repository import RepositoryBase
from cephalo_common.errors import Conflict

COMPLETE = "Complete"


class MachineRepository(RepositoryBase[Machine]):
    model = Machine
    noun = "machine"

    async def find_in_space(self, space_id: uuid.UUID, id: uuid.UUID) -> Machine | None:
        statement = select(Machine).where(Machine.id == id, Machine.space_id == space_id)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def find_by_name(self, space_id: uuid.UUID, name: str) -> Machine | None:
        statement = select(Machine).where(
            Machine.space_id == space_id, Machine.name_key == name.lower()
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def find_by_thumbprint(self, thumbprint: str) -> Machine | None:
        statement = select(Machine).where(Machine.thumbprint == thumbprint.upper())
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def search(
        self,
        space_id: uuid.UUID,
        *,
        environment_id: uuid.UUID | None = None,
        roles: Sequence[str] = (),
    ) -> Sequence[Machine]:
        """Machines of the space in `environment_id` (if given) with ANY of `roles` (if any)."""
        statement = select(Machine).where(Machine.space_id == space_id)
        if environment_id is not None:
            statement = statement.where(Machine.environment_ids.contains([str(environment_id)]))
        if roles:
            statement = statement.where(Machine.roles.has_any(array(list(roles), type_=Text)))
        return await self.list(statement.order_by(Machine.name_key))

    async def insert(self, machine: Machine) -> Machine:
        """Add the machine; a concurrent duplicate name or certificate is a Conflict, not a 500."""
        try:
            async with self.session.begin_nested():
                self.session.add(machine)
                await self.session.flush()
        except IntegrityError as error:
            what = "certificate" if "thumbprint" in str(error.orig) else "name"
            raise Conflict(f"another machine was just registered with the same {what}") from error
        return machine

    async def remove(self, machine: Machine) -> None:
        await self.session.execute(delete(Machine).where(Machine.id == machine.id))

    async def touch(self, id: uuid.UUID, seen_at: datetime) -> None:
        await self.session.execute(
            update(Machine).where(Machine.id == id).values(last_seen_at=seen_at)
        )

    async def certificate_pems(self) -> Sequence[str]:
        """Every registered certificate: the polling listener's trust store."""
        result = await self.session.execute(select(Machine.certificate_pem))
        return result.scalars().all()


class ScriptRunRepository:
    """Script runs by ticket; updates are guarded so a stale driver changes nothing."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_if_absent(self, values: dict[str, Any]) -> bool:
        """Record a dispatch; False when its ticket was already recorded."""
        statement = (
            insert(ScriptRun)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[ScriptRun.ticket])
            .returning(ScriptRun.ticket)
        )
        return (await self.session.execute(statement)).first() is not None

    async def find(self, ticket: str) -> ScriptRun | None:
        return await self.session.get(ScriptRun, ticket, populate_existing=True)

    async def unfinished_tickets(self) -> Sequence[str]:
        result = await self.session.execute(
            select(ScriptRun.ticket)
            .where(ScriptRun.state != COMPLETE)
            .order_by(ScriptRun.created_at)
        )
        return result.scalars().all()

    async def mark_running(
        self, ticket: str, *, dispatch: dict[str, Any], started_at: datetime
    ) -> bool:
        return await self._guarded_update(
            ScriptRun.ticket == ticket,
            ScriptRun.state != COMPLETE,
            values={"state": "Running", "dispatch": dispatch, "started_at": started_at},
        )

    async def advance_cursor(self, ticket: str, *, expected: int, new: int) -> bool:
        return await self._guarded_update(
            ScriptRun.ticket == ticket,
            ScriptRun.state != COMPLETE,
            ScriptRun.last_log_sequence == expected,
            values={"last_log_sequence": new},
        )

    async def finish(
        self,
        ticket: str,
        *,
        exit_code: int | None,
        error: str | None,
        dispatch: dict[str, Any],
        finished_at: datetime,
    ) -> bool:
        return await self._guarded_update(
            ScriptRun.ticket == ticket,
            ScriptRun.state != COMPLETE,
            values={
                "state": COMPLETE,
                "exit_code": exit_code,
                "error": error,
                "dispatch": dispatch,
                "finished_at": finished_at,
            },
        )

    async def _guarded_update(self, *conditions: Any, values: dict[str, Any]) -> bool:
        statement = (
            update(ScriptRun)
            .where(*conditions)
            .values(**values)
            .returning(ScriptRun.ticket)
            .execution_options(synchronize_session=False)
        )
        return (await self.session.execute(statement)).first() is not None


class Repositories:
    """Every repository of this service over one session (one unit of work)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.machines = MachineRepository(session)
        self.script_runs = ScriptRunRepository(session)
