"""The gateway's SSH side: one connection pool and step runner, endpoints opened from rows.

Refused connections (a changed host key) are written to the audit trail here, in their own
transaction, whichever step or health check ran into them.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncssh
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cephalo_agent_gateway.db import models
from cephalo_agent_gateway.db.repositories import Repositories
from cephalo_agent_gateway.domain.ssh_accounts import AccountCipher, AccountUnreadable
from cephalo_agent_gateway.domain.ssh_machines import NO_ACCOUNT_KEY, record_refusal
from cephalo_agent_gateway.domain.ssh_targets import (
    SshConnections,
    SshEndpoint,
    SshHealth,
    SshSettings,
    SshStepRunner,
    SshUnavailable,
    capture_host_key,
)
from cephalo_common.db.session import unit_of_work
from cephalo_common.logging import get_logger

log = get_logger(__name__)


def account_cipher(key_text: str | None) -> AccountCipher | None:
    """The cipher of the configured key; a malformed key stops the gateway at start."""
    if not key_text:
        return None
    try:
        return AccountCipher.from_setting(key_text)
    except ValueError as error:
        raise ValueError(f"CEPHALO_AGENT_GATEWAY_SSH_ACCOUNT_KEY: {error}") from None


class SshTargets:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        cipher: AccountCipher | None,
        settings: SshSettings,
    ) -> None:
        self._sessionmaker = sessionmaker
        self.cipher = cipher
        self.pool = SshConnections(settings, on_host_key_changed=self._refused)
        self.runner = SshStepRunner(self.pool)
        self._isolation: dict[uuid.UUID, asyncio.Lock] = {}

    def isolation(self, machine_id: uuid.UUID) -> asyncio.Lock:
        """Deployment steps on one SSH target run one at a time (in this replica)."""
        return self._isolation.setdefault(machine_id, asyncio.Lock())

    async def capture_host_key(self, host: str, port: int) -> str:
        return await capture_host_key(host, port, self.pool.settings.connect_timeout_seconds)

    async def endpoint(self, machine: models.Machine) -> SshEndpoint:
        """Where and as whom to connect; SshUnavailable when that cannot be known here."""
        if self.cipher is None:
            raise SshUnavailable(f"SSH target {machine.name}: {NO_ACCOUNT_KEY}")
        async with self._sessionmaker() as session:
            row = await session.get(models.SshEndpoint, machine.id, populate_existing=True)
        if row is None:
            raise SshUnavailable(f"SSH target {machine.name} has no SSH endpoint")
        try:
            account = self.cipher.open(row.sealed_account, context=str(machine.id))
        except AccountUnreadable as error:
            raise SshUnavailable(
                f"SSH target {machine.name}: {error} (was the account key changed?)"
            ) from None
        return SshEndpoint(
            machine.name, row.host, row.port, account, row.host_key, machine_id=str(machine.id)
        )

    async def health(self, machine: models.Machine) -> SshHealth:
        try:
            endpoint = await self.endpoint(machine)
        except SshUnavailable as error:
            return SshHealth(False, str(error))
        return await self.runner.health(endpoint)

    async def recorded_outcome(self, machine: models.Machine, ticket: str) -> str:
        """What the target recorded for a step whose gateway stopped while it ran (a fast
        step writes its exit code there): a note for the step's error, or ""."""
        try:
            endpoint = await self.endpoint(machine)
            code = await self.runner.recorded_exit_code(endpoint, ticket)
        except (SshUnavailable, OSError, asyncssh.Error, ValueError) as error:
            log.info("no recorded outcome on the SSH target", ticket=ticket, error=str(error))
            return ""
        if code is None:
            return ""
        return (
            f" (the target recorded exit code {code}; its log lines and output variables "
            "after the stop are lost)"
        )

    async def _refused(self, endpoint: SshEndpoint, presented: str) -> None:
        log.warning(
            "an SSH target presented a changed host key; refused",
            machine=endpoint.machine_id,
            host=endpoint.host,
            port=endpoint.port,
        )
        if endpoint.machine_id is None:
            return
        try:
            async with unit_of_work(self._sessionmaker) as session:
                repos = Repositories(session)
                await record_refusal(repos, uuid.UUID(endpoint.machine_id), presented)
        except Exception as error:  # noqa: BLE001 - the refusal stands even if unrecorded
            log.error("could not record a refused SSH host key", error=str(error))

    async def aclose(self) -> None:
        await self.pool.aclose()
