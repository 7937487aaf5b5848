"""Health checks per machine policy (after Octopus): connectivity, optionally a script.

- `OnlyConnectivity`: the agent answers `get_capabilities` → Healthy; no answer →
  Unavailable; an agent that answers with an error → Unhealthy.
- `RunScript`: connectivity first, then the policy's script with `NoIsolation` (it never
  waits for, or holds up, a deployment step): exit 0 → Healthy, or HasWarnings when it wrote
  to stderr; any other exit → Unhealthy; not finished within the policy's timeout →
  Unhealthy (the script is cancelled).

The `HealthMonitor` claims due machines in the table (so replicas share the work), checks
them concurrently (at most `max_concurrency` at once, each bounded by its policy timeout),
and records each result with its history; a changed status is announced as
`target.health-changed` in the same transaction. The next check is scheduled from the
policy's interval or cron expression (`health_schedule`), on the monitor's clock.

SSH targets are checked over SSH: reachable with the pinned host key and the account, and a
Python the runner can use → Healthy; otherwise Unavailable with the reason. (A policy's
health check script is not run on them yet.)
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cephalo_agent_gateway.db.models import HealthCheck, Machine, MachinePolicy
from cephalo_agent_gateway.db.repositories import OFFLINE_DROP, SSH, Repositories
from cephalo_agent_gateway.domain.health_schedule import next_check_at
from cephalo_agent_gateway.domain.machine_policies import (
    HealthCheckType,
    policy_for,
    schedule_of,
)
from cephalo_agent_gateway.domain.scripts import RemoteCallFailed, ScriptClient
from cephalo_agent_gateway.domain.ssh_service import SshTargets
from cephalo_agent_gateway.domain.transport import Transport, TransportError, TrustRefused
from cephalo_agent_gateway.events import publish
from cephalo_agent_gateway.events.contracts import TargetHealthChangedV1
from cephalo_common.agent_protocol import (
    LogSource,
    ProcessState,
    ScriptIsolation,
    ScriptSyntax,
    StartScriptCommand,
)
from cephalo_common.db.session import unit_of_work
from cephalo_common.ids import utc_now, uuid7
from cephalo_common.logging import get_logger

log = get_logger(__name__)
# A replica's claim on a due check; longer than any policy timeout (at most 300 s).
CLAIM_SECONDS = 330.0
MAX_MESSAGE_LINES = 10
SCRIPT_POLL_SECONDS = 0.2


class HealthStatus(StrEnum):
    HEALTHY = "Healthy"
    HAS_WARNINGS = "HasWarnings"
    UNHEALTHY = "Unhealthy"
    UNAVAILABLE = "Unavailable"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class HealthResult:
    status: HealthStatus
    message: str
    duration_ms: int


class HealthChecker:
    """Runs one machine's check as its policy says; never raises for a sick machine."""

    def __init__(self, transport: Transport, ssh: SshTargets | None = None) -> None:
        self._transport = transport
        self._ssh = ssh

    async def check(self, machine: Machine, policy: MachinePolicy) -> HealthResult:
        loop = asyncio.get_running_loop()
        began = loop.time()
        status, message = await self._check(machine, policy)
        return HealthResult(status, message, int((loop.time() - began) * 1000))

    async def _check(self, machine: Machine, policy: MachinePolicy) -> tuple[HealthStatus, str]:
        if machine.mode == SSH:
            return await self._check_ssh(machine, policy)
        if machine.mode == OFFLINE_DROP:
            return HealthStatus.HEALTHY, "Offline drop: steps become bundles to download"
        client = ScriptClient(self._transport, machine.id)
        timeout = float(policy.health_check_timeout_seconds)
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            async with asyncio.timeout(timeout):
                capabilities = await client.get_capabilities()
        except (TransportError, TimeoutError) as error:
            return HealthStatus.UNAVAILABLE, _reason(error, f"no answer within {timeout:g} s")
        except TrustRefused as error:
            return HealthStatus.UNAVAILABLE, str(error)
        except RemoteCallFailed as error:
            return HealthStatus.UNHEALTHY, str(error)
        summary = f"agent {capabilities.agent_version} on {capabilities.os}"
        if policy.health_check_type != HealthCheckType.RUN_SCRIPT or not policy.health_check_script:
            return HealthStatus.HEALTHY, f"Connected: {summary}"
        remaining = deadline - asyncio.get_running_loop().time()
        return await self._run_script(client, machine, policy, remaining)

    async def _check_ssh(self, machine: Machine, policy: MachinePolicy) -> tuple[HealthStatus, str]:
        if self._ssh is None:
            return HealthStatus.UNAVAILABLE, "SSH targets are not set up on this gateway"
        timeout = float(policy.health_check_timeout_seconds)
        try:
            async with asyncio.timeout(timeout):
                health = await self._ssh.health(machine)
        except TimeoutError:
            return HealthStatus.UNAVAILABLE, f"no answer over SSH within {timeout:g} s"
        if health.healthy:
            return HealthStatus.HEALTHY, f"Connected over SSH: {health.message}"
        return HealthStatus.UNAVAILABLE, health.message

    async def _run_script(
        self, client: ScriptClient, machine: Machine, policy: MachinePolicy, timeout: float
    ) -> tuple[HealthStatus, str]:
        ticket = f"health-{machine.id}-{uuid7().hex[-12:]}"
        command = StartScriptCommand(
            ticket=ticket,
            script_body=policy.health_check_script or "",
            syntax=ScriptSyntax(policy.health_check_syntax),
            isolation=ScriptIsolation.NONE,
            timeout_seconds=max(int(timeout), 1),
        )
        lines: list[tuple[LogSource, str]] = []
        cursor = 0
        try:
            async with asyncio.timeout(max(timeout, 0.1)):
                status = await client.start_script(command)
                while True:
                    lines.extend((line.source, line.text) for line in status.logs)
                    cursor = status.next_log_sequence or cursor
                    if status.state is ProcessState.COMPLETE:
                        break
                    await asyncio.sleep(SCRIPT_POLL_SECONDS)
                    status = await client.get_status(ticket, cursor)
        except (TimeoutError, TransportError, RemoteCallFailed, TrustRefused) as error:
            await self._abandon(client, ticket)
            if isinstance(error, TimeoutError):
                return HealthStatus.UNHEALTHY, (
                    f"the health check script did not finish within {timeout:g} s"
                )
            return HealthStatus.UNAVAILABLE, f"the health check script was lost: {error}"
        with contextlib.suppress(TransportError, RemoteCallFailed, TrustRefused):
            await client.complete_script(ticket, cursor)
        return _verdict(status.exit_code, lines)

    async def _abandon(self, client: ScriptClient, ticket: str) -> None:
        with contextlib.suppress(TransportError, RemoteCallFailed, TrustRefused, TimeoutError):
            async with asyncio.timeout(10):
                await client.cancel_script(ticket, 0)
                await client.complete_script(ticket, 0)


def _verdict(exit_code: int | None, lines: list[tuple[LogSource, str]]) -> tuple[HealthStatus, str]:
    tail = "\n".join(text for _, text in lines[-MAX_MESSAGE_LINES:])
    if exit_code != 0:
        return (
            HealthStatus.UNHEALTHY,
            f"the health check script exited with {exit_code}\n{tail}".strip(),
        )
    if any(source is LogSource.STDERR for source, _ in lines):
        return HealthStatus.HAS_WARNINGS, f"the health check script wrote warnings\n{tail}".strip()
    return HealthStatus.HEALTHY, f"the health check script succeeded\n{tail}".strip()


def _reason(error: BaseException, fallback: str) -> str:
    return str(error) or fallback


@dataclass(frozen=True)
class HealthSettings:
    scan_seconds: float
    max_concurrency: int
    history_limit: int


class HealthMonitor:
    """Checks machines when their policy says they are due, concurrently and bounded."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        checker: HealthChecker,
        settings: HealthSettings,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._checker = checker
        self._settings = settings
        self._clock = clock
        self._running: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Claim due checks and run them; until cancelled."""
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._settings.scan_seconds)
                self._wake.clear()
                try:
                    await self.scan()
                except Exception as error:  # noqa: BLE001 - Postgres may be down; next scan
                    log.warning("health check scan failed", error=str(error))
        finally:
            tasks = list(self._running)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def scan(self) -> int:
        """Start a check for each due machine, up to the free concurrency; returns how many."""
        free = self._settings.max_concurrency - len(self._running)
        if free <= 0:
            return 0
        async with unit_of_work(self._sessionmaker) as session:
            due = await Repositories(session).machines.claim_due_health_checks(
                limit=free, claim_seconds=CLAIM_SECONDS
            )
        for machine_id in due:
            task = asyncio.create_task(self._check_quietly(machine_id))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return len(due)

    async def check_now(
        self,
        machine_id: uuid.UUID,
        *,
        space_id: uuid.UUID | None = None,
        kind: str | None = None,
    ) -> HealthCheck | None:
        """Check one machine now (the API's "check health"), outside the schedule.

        None when there is no such machine (in `space_id`, of `kind`, when given).
        """
        async with unit_of_work(self._sessionmaker) as session:
            repos = Repositories(session)
            machine = await repos.machines.find(machine_id)
            if machine is None or (space_id is not None and machine.space_id != space_id):
                return None
            if kind is not None and machine.kind != kind:
                return None
            policy = await policy_for(repos, machine)
        result = await self._checker.check(machine, policy)
        return await self._record(machine, policy, result)

    async def _check_quietly(self, machine_id: uuid.UUID) -> None:
        try:
            await self.check_now(machine_id)
        except Exception as error:  # noqa: BLE001 - the claim expires; checked again later
            log.warning("health check failed to run", machine=str(machine_id), error=str(error))

    async def _record(
        self, machine: Machine, policy: MachinePolicy, result: HealthResult
    ) -> HealthCheck:
        now = self._clock()
        async with unit_of_work(self._sessionmaker) as session:
            repos = Repositories(session)
            current = await repos.machines.find(machine.id)
            previous = current.health_status if current is not None else machine.health_status
            check = HealthCheck(
                space_id=machine.space_id,
                machine_id=machine.id,
                status=result.status.value,
                previous_status=previous,
                message=result.message,
                duration_ms=result.duration_ms,
            )
            if current is None:
                return check
            await repos.machines.record_health(
                machine.id,
                status=result.status.value,
                message=result.message,
                checked_at=now,
                next_at=next_check_at(schedule_of(policy), now),
            )
            session.add(check)
            await session.flush()
            await repos.health_checks.prune(machine.id, self._settings.history_limit)
            if previous != result.status.value:
                publish.target_health_changed(
                    session,
                    current,
                    TargetHealthChangedV1(
                        machine_id=str(machine.id),
                        name=machine.name,
                        kind=machine.kind,
                        previous_status=previous,
                        status=result.status.value,
                        message=result.message,
                        checked_at=now.isoformat(),
                    ),
                )
        return check
