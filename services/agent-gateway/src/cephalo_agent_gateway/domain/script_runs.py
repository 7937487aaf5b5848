"""Script runs: a dispatched step, driven on its machine until the agent reports it Complete.

Crash-safety rests on three facts. The run row (keyed by the dispatch's ticket) is written
before anything is sent; the agent runs a ticket at most once; and every batch of log lines
is written to the outbox in the same transaction that advances the run's log cursor. So a
run can be resumed at any point (new connection, new gateway process, another replica) by
asking the agent for the lines after the cursor: none is lost and none is sent twice.

The last lines travel with the end: `complete_script` answers with the lines after the
cursor (the agent keeps its journal after completing), and they are written together with
`step.finished` in one transaction: three transactions per run, not one per status call.

Deployment steps on a target run with `FullIsolation` (one at a time per target, through the
agent's named mutex); scripts on workers do not wait for each other.

SSH targets have no agent to resume from: their step runs in one SSH session
(`run_ssh_step`), its log numbered and written to the outbox as it arrives. A run found
Running after a crash finishes with an error saying its outcome is unknown, never re-run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sys
import uuid
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeGuard, TypeVar

import httpx
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cephalo_agent_gateway.db.models import Machine, ScriptRun
from cephalo_agent_gateway.db.repositories import OFFLINE_DROP, SSH, TARGET, Repositories
from cephalo_agent_gateway.domain.agent_artifacts import keep_agent_artifacts
from cephalo_agent_gateway.domain.files import FileTransferClient, StreamTransport
from cephalo_agent_gateway.domain.offline_drop import IncompleteDrop, drop_for
from cephalo_agent_gateway.domain.scripts import RemoteCallFailed, ScriptClient
from cephalo_agent_gateway.domain.ssh_service import SshTargets
from cephalo_agent_gateway.domain.ssh_steps import KeepArtifact, run_ssh_step
from cephalo_agent_gateway.domain.ssh_targets import SshEndpoint, SshUnavailable
from cephalo_agent_gateway.domain.step_actions import (
    ActionNotSupported,
    ScriptPlan,
    StepResults,
    plan_script,
)
from cephalo_agent_gateway.domain.transport import Transport, TransportError, TrustRefused
from cephalo_agent_gateway.events import publish
from cephalo_common.agent_protocol import (
    CONTRACT_VERSION,
    STATUS_WAIT_FEATURE,
    STEP_ARTIFACTS_FEATURE,
    Capabilities,
    ExitCodes,
    LogSource,
    ProcessOutput,
    ProcessState,
    ScriptIsolation,
    ScriptStatusResponse,
    StartScriptCommand,
)
from cephalo_common.contracts import (
    ArtifactV1,
    PackageAcquisitionV1,
    StepDispatchV1,
    StepFinishedV1,
    StepLogV1,
)
from cephalo_common.db.session import unit_of_work
from cephalo_common.errors import Conflict, NotFound
from cephalo_common.ids import utc_now
from cephalo_common.logging import get_logger
from cephalo_common.messaging.artifacts import MAX_ARTIFACT_BYTES, TaskArtifactStore
from cephalo_common.messaging.broker import PermanentFailure
from cephalo_common.messaging.envelope import Envelope

log = get_logger(__name__)
MASK = "********"
MAX_TICKET_LENGTH = 200
T = TypeVar("T")
# A driver that resumed mid-log re-reads this many lines before the end for the results.
RESULTS_TAIL_LINES = 200


class Outcome:
    """How a run ended, as `script_runs.outcome` records it."""

    SUCCESS = "Success"
    FAILED = "Failed"
    CANCELED = "Canceled"
    TIMED_OUT = "TimedOut"
    INTERRUPTED = "Interrupted"
    ERROR = "Error"  # no exit code: the run could not be carried out


_SPECIAL_EXITS: dict[int, tuple[str, str]] = {
    ExitCodes.CANCELLED: (Outcome.CANCELED, "Canceled"),
    ExitCodes.OUTCOME_UNKNOWN: (
        Outcome.INTERRUPTED,
        "Interrupted: the agent restarted while the script ran; its outcome is unknown",
    ),
    ExitCodes.TIMED_OUT: (Outcome.TIMED_OUT, "TimedOut: the script exceeded its timeout"),
    ExitCodes.FAILED_TO_START: (Outcome.FAILED, "the agent could not start the script"),
    ExitCodes.ISOLATION_TIMEOUT: (
        Outcome.FAILED,
        "the script did not start: another script held the target's isolation mutex too long",
    ),
}


def outcome_of(exit_code: int | None) -> tuple[str, str | None]:
    """The outcome of an exit code, and the error line that explains a special one."""
    if exit_code is None:
        return Outcome.ERROR, None
    if exit_code in _SPECIAL_EXITS:
        outcome, error = _SPECIAL_EXITS[exit_code]
        return outcome, error
    return (Outcome.SUCCESS if exit_code == 0 else Outcome.FAILED), None


async def record_dispatch(repos: Repositories, envelope: Envelope) -> bool:
    """Remember a `step.dispatch` command; the supervisor drives it. False for a known ticket."""
    try:
        dispatch = envelope.payload(StepDispatchV1)
        machine_id = uuid.UUID(dispatch.machine_id)
        space_id = uuid.UUID(envelope.cephalospace)
    except (ValidationError, ValueError) as error:
        raise PermanentFailure(f"malformed step dispatch: {error}") from error
    if not dispatch.ticket or len(dispatch.ticket) > MAX_TICKET_LENGTH:
        raise PermanentFailure(f"a ticket is 1-{MAX_TICKET_LENGTH} characters")
    return await repos.script_runs.insert_if_absent(
        {
            "ticket": dispatch.ticket,
            "space_id": space_id,
            "task_id": dispatch.task_id,
            "step_run_id": dispatch.step_run_id,
            "machine_id": machine_id,
            "dispatch": dispatch.model_dump(mode="json"),
            "state": ProcessState.PENDING.value,
            "last_log_sequence": 0,
            "correlation_id": envelope.correlationid or envelope.id,
            "causation_id": envelope.id,
        }
    )


async def get_run(repos: Repositories, space_id: uuid.UUID, ticket: str) -> ScriptRun:
    run = await repos.script_runs.find_in_space(space_id, ticket)
    if run is None:
        raise NotFound(f"script run {ticket} was not found in this space")
    return run


async def request_cancel(repos: Repositories, space_id: uuid.UUID, ticket: str) -> ScriptRun:
    """Record that the run must be cancelled; its driver (on any replica) acts on it."""
    run = await get_run(repos, space_id, ticket)
    if run.state == ProcessState.COMPLETE:
        raise Conflict(f"script run {ticket} has already finished ({run.outcome})")
    await repos.script_runs.request_cancel(ticket, utc_now())
    return run


def scrub_secrets(dispatch: dict[str, Any]) -> dict[str, Any]:
    """The dispatch without sensitive values: once the agent has them, we keep none at rest."""
    sensitive = set(dispatch.get("sensitive_variables") or ())
    variables = dispatch.get("variables") or {}
    return {
        **dispatch,
        "variables": {k: MASK if k in sensitive else v for k, v in variables.items()},
    }


def log_batches(lines: Sequence[ProcessOutput], max_bytes: int) -> Iterator[list[ProcessOutput]]:
    """Split lines into events that stay well under the NATS message limit."""
    batch: list[ProcessOutput] = []
    size = 0
    for line in lines:
        length = len(line.text.encode()) + 100
        if batch and size + length > max_bytes:
            yield batch
            batch, size = [], 0
        batch.append(line)
        size += length
    if batch:
        yield batch


@dataclass(frozen=True)
class RunSettings:
    pickup_timeout_seconds: float
    status_poll_seconds: float
    start_wait_seconds: float = 2.0
    status_wait_seconds: float = 10.0
    max_log_event_bytes: int = 256 * 1024
    capabilities_cache_seconds: float = 60.0
    isolation_mutex_timeout_seconds: float = 3600.0


class RunRefused(Exception):
    """A verdict that ends the run without retry (unknown or disabled machine, no support)."""


class Cancelled(Exception):
    """Cancelled before the script started: nothing ran on the agent."""


class StaleRun(Exception):
    """The row moved on under us (another driver); reload it and decide again."""


class _Contact:
    """When we last heard from the agent: waiting for it is bounded from that moment."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.at = self._loop.time()

    def touch(self) -> None:
        self.at = self._loop.time()

    def remaining(self, budget: float) -> float:
        return max(budget - (self._loop.time() - self.at), 0.0)


def describe_seconds(seconds: float) -> str:
    return f"{seconds:g} s"


class CapabilitiesCache:
    """An agent's capabilities, asked once per `ttl` (Tentacle caches them for 10 minutes)."""

    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self._entries: dict[uuid.UUID, tuple[float, Capabilities]] = {}

    async def get(self, client: ScriptClient, machine_id: uuid.UUID) -> Capabilities:
        now = asyncio.get_running_loop().time()
        entry = self._entries.get(machine_id)
        if entry is not None and now - entry[0] < self._ttl:
            return entry[1]
        capabilities = await client.get_capabilities()
        self._entries[machine_id] = (now, capabilities)
        return capabilities

    def forget(self, machine_id: uuid.UUID) -> None:
        self._entries.pop(machine_id, None)


async def _fetch_package(package: PackageAcquisitionV1) -> bytes:
    """A package by its signed URL, for a bundle (the bundle checks its SHA-256)."""
    if not package.url:
        raise IncompleteDrop(f"package {package.package_id} {package.version} has no URL")
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.get(package.url)
        response.raise_for_status()
        return response.content


async def _unless_cancelled(awaitable: Awaitable[T], cancel: asyncio.Event) -> T:
    """Await `awaitable`, but raise `Cancelled` as soon as `cancel` is set, once the work has
    wound down (an SSH step stops its remote processes on the way out)."""
    work = asyncio.ensure_future(awaitable)
    stop = asyncio.create_task(cancel.wait())
    try:
        await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        work.cancel()  # the driver itself was cancelled: the work must not outlive it
        raise
    finally:
        stop.cancel()
    if not work.done():
        work.cancel()
        await asyncio.wait({work})
        raise Cancelled
    return work.result()


async def _take(lock: asyncio.Lock, cancel: asyncio.Event, seconds: float) -> bool:
    """Acquire `lock` within `seconds`: False on timeout, `Cancelled` if `cancel` is set first.
    However this ends, the lock is either held by the caller (True) or not taken at all."""
    take = asyncio.ensure_future(lock.acquire())
    stop = asyncio.ensure_future(cancel.wait())
    try:
        await asyncio.wait({take, stop}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not take.done():
            take.cancel()
        elif not take.cancelled() and sys.exc_info()[0] is not None:
            lock.release()
    if take.cancelled() or not take.done():
        if cancel.is_set():
            raise Cancelled
        return False
    return True


class ScriptRunDriver:
    """Drives a run to completion; `drive(ticket)` is safe to call again after any crash."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        transport: Transport,
        settings: RunSettings,
        ssh: SshTargets | None = None,
        artifacts: TaskArtifactStore | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._transport = transport
        self._settings = settings
        self._ssh = ssh
        self._artifacts = artifacts
        self.capabilities = CapabilitiesCache(settings.capabilities_cache_seconds)
        self._results: dict[str, StepResults] = {}

    async def aclose(self) -> None:
        if self._artifacts is not None:
            await self._artifacts.aclose()

    async def drive(self, ticket: str, cancel: asyncio.Event | None = None) -> None:
        """Run to the end; setting `cancel` kills the script (or stops it from starting)."""
        cancel = cancel or asyncio.Event()
        contact = _Contact()
        while True:
            loaded = await self._load(ticket)
            if loaded is None:
                return
            run, machine = loaded
            self._results.setdefault(ticket, StepResults(whole_log=run.last_log_sequence == 0))
            if run.cancel_requested_at is not None:
                cancel.set()
            try:
                admitted = _admit(run, machine)
                if admitted.mode == SSH:
                    await self._attempt_ssh(run, admitted, cancel)
                elif admitted.mode == OFFLINE_DROP:
                    await self._attempt_drop(run, admitted)
                else:
                    await self._attempt(run, admitted, contact, cancel)
                return
            except Cancelled:
                await self._finish(run, None, "Canceled before the script started")
                return
            except (RunRefused, TrustRefused) as refusal:
                await self._finish(run, None, str(refusal))
                return
            except RemoteCallFailed as error:
                label = machine.name if machine else run.machine_id
                await self._finish(run, None, f"Machine {label}: {error}")
                return
            except TransportError as error:
                log.info("lost contact with the agent; waiting", ticket=ticket, error=str(error))
                await asyncio.sleep(self._settings.status_poll_seconds)
            except StaleRun:
                log.info("script run changed under this driver; reloading", ticket=ticket)

    async def _load(self, ticket: str) -> tuple[ScriptRun, Machine | None] | None:
        async with self._sessionmaker() as session:
            repos = Repositories(session)
            run = await repos.script_runs.find(ticket)
            if run is None or run.state == ProcessState.COMPLETE:
                return None
            machine = await repos.machines.find(run.machine_id)
            return run, machine

    async def _attempt(
        self, run: ScriptRun, machine: Machine, contact: _Contact, cancel: asyncio.Event
    ) -> None:
        """Start (if not yet started), follow the log to Complete, complete, finish."""
        budget = self._settings.pickup_timeout_seconds
        pending = run.state == ProcessState.PENDING
        if pending and cancel.is_set():
            raise Cancelled
        waiting = self._transport.wait_until_connected(machine.id, contact.remaining(budget))
        reachable = await (_unless_cancelled(waiting, cancel) if pending else waiting)
        if not reachable:
            raise RunRefused(_unreachable(run, machine.name, budget))
        client = ScriptClient(self._transport, machine.id)
        capabilities = await self.capabilities.get(client, machine.id)
        waits = STATUS_WAIT_FEATURE in capabilities.contract_versions
        status: ScriptStatusResponse | None = None
        started_at: datetime | None = None
        if pending:
            dispatch = StepDispatchV1.model_validate(run.dispatch)
            _check_capabilities(capabilities, machine.name, dispatch)
            try:
                plan = plan_script(dispatch, capabilities, machine.name)
            except ActionNotSupported as refusal:
                raise RunRefused(str(refusal)) from None
            command = self._command(dispatch, plan, machine, waits)
            started_at = utc_now()
            status = await client.start_script(command, capabilities)
            contact.touch()
            if status.state is not ProcessState.COMPLETE:
                await self._mark_running(run, started_at)
                started_at = None
        loop = asyncio.get_running_loop()
        asked_at = loop.time()
        cancel_sent = False
        while status is None or not await self._absorb_unless_complete(run, status):
            if cancel.is_set() and not cancel_sent:
                status = await client.cancel_script(run.ticket, run.last_log_sequence)
                cancel_sent = True
                contact.touch()
                continue
            if status is not None:
                pause = self._settings.status_poll_seconds
                if waits:
                    pause = max(pause - (loop.time() - asked_at), 0.0)
                await _pause(pause, cancel, cancel_sent)
            asked_at = loop.time()
            status = await self._next_status(client, run, waits, cancel, cancel_sent)
            contact.touch()
        results = self._results.setdefault(run.ticket, StepResults(whole_log=False))
        if not results.whole_log and not results.summarised:
            start = max(0, run.last_log_sequence - RESULTS_TAIL_LINES)
            earlier = (await client.get_status(run.ticket, start)).logs
            results.absorb([line for line in earlier if line.sequence <= run.last_log_sequence])
        tail = list(status.logs)
        results.absorb(_after(run.last_log_sequence, tail))
        problems = await self._keep_agent_artifacts(client, machine, run, results)
        try:
            completed = await client.complete_script(run.ticket, run.last_log_sequence)
            tail += completed.logs
        except RemoteCallFailed as error:
            log.warning("complete_script failed; the agent keeps its work files", error=str(error))
        _, explanation = outcome_of(status.exit_code)
        lines = tail + _notes(run, tail, problems)
        await self._finish(run, status.exit_code, explanation, lines, started_at=started_at)

    async def _next_status(
        self,
        client: ScriptClient,
        run: ScriptRun,
        waits: bool,
        cancel: asyncio.Event,
        cancel_sent: bool,
    ) -> ScriptStatusResponse | None:
        """The next status; an agent that can wait holds the call until there is news. None
        when a cancellation came meanwhile (the loop then sends it at once)."""
        wait = self._settings.status_wait_seconds if waits else 0.0
        call = client.get_status(run.ticket, run.last_log_sequence, wait or None)
        if not wait or cancel_sent:
            return await call
        try:
            return await _unless_cancelled(call, cancel)
        except Cancelled:
            return None

    async def _keep_agent_artifacts(
        self, client: ScriptClient, machine: Machine, run: ScriptRun, results: StepResults
    ) -> list[str]:
        """Artifacts' bytes go from the agent to the task artifact store, when both can."""
        store, transport = self._artifacts, self._transport
        if store is None or not results.artifacts or not _streams(transport):
            return []
        capabilities = await self.capabilities.get(client, machine.id)
        if STEP_ARTIFACTS_FEATURE not in capabilities.contract_versions:
            return [f"Machine {machine.name}: its agent cannot hand out artifacts; upgrade it"]
        return await keep_agent_artifacts(
            FileTransferClient(transport, machine.id), store, run, results
        )

    async def _attempt_ssh(self, run: ScriptRun, machine: Machine, cancel: asyncio.Event) -> None:
        """Open the session, run the step through the pushed runner, finish with its verdict."""
        if self._ssh is None:
            raise RunRefused(f"Machine {machine.name} is an SSH target; SSH is not set up here")
        if run.state != ProcessState.PENDING:
            recorded = await self._ssh.recorded_outcome(machine, run.ticket)
            await self._finish(
                run,
                None,
                f"Machine {machine.name}: the gateway stopped while the step ran over SSH; "
                f"its outcome is unknown{recorded}",
            )
            return
        if cancel.is_set():
            raise Cancelled
        dispatch = StepDispatchV1.model_validate(run.dispatch)
        try:
            endpoint = await self._ssh.endpoint(machine)
        except SshUnavailable as error:
            raise RunRefused(str(error)) from None
        isolation = self._ssh.isolation(machine.id)
        if not await _take(isolation, cancel, self._settings.isolation_mutex_timeout_seconds):
            code = ExitCodes.ISOLATION_TIMEOUT
            await self._finish(run, code, outcome_of(code)[1])
            return
        try:
            await self._run_ssh(self._ssh, run, dispatch, endpoint, cancel)
        finally:
            isolation.release()

    async def _run_ssh(
        self,
        ssh: SshTargets,
        run: ScriptRun,
        dispatch: StepDispatchV1,
        endpoint: SshEndpoint,
        cancel: asyncio.Event,
    ) -> None:
        await self._mark_running(run)

        async def publish_lines(lines: list[ProcessOutput]) -> None:
            if lines:
                async with unit_of_work(self._sessionmaker) as session:
                    self._publish_lines(session, run, lines)
                    await self._advance(Repositories(session), run, lines)

        tail: list[ProcessOutput] = []
        step = run_ssh_step(
            ssh.runner,
            endpoint,
            dispatch,
            publish_lines,
            timeout_seconds=dispatch.timeout_seconds,
            keep=self._keeper(ssh, run, endpoint),
            tail=tail,
        )
        try:
            finished = await _unless_cancelled(step, cancel)
        except Cancelled:
            await self._finish(run, None, "Canceled: the SSH session was closed")
            return
        _, explanation = outcome_of(finished.exit_code)
        await self._finish(
            run, finished.exit_code, finished.error or explanation, tail, gathered=finished
        )

    async def _attempt_drop(self, run: ScriptRun, machine: Machine) -> None:
        """Build the step's bundle and keep it as the step's artifact; nothing runs here."""
        store = self._artifacts
        if store is None:
            raise RunRefused(f"Machine {machine.name} is an offline drop; no artifact store here")
        await self._mark_running(run)
        dispatch = StepDispatchV1.model_validate(run.dispatch)
        try:
            bundle = await drop_for(dispatch, _fetch_package)
        except (IncompleteDrop, httpx.HTTPError) as error:
            await self._finish(run, None, f"Machine {machine.name}: no offline drop ({error})")
            return
        name = f"{machine.name}-{run.ticket}.tar.gz"
        object_name = f"{run.space_id}/{run.task_id}/{run.ticket}/offline-drop"
        await store.put(object_name, bundle)
        artifact = ArtifactV1(
            name=name,
            size=len(bundle),
            object_name=object_name,
            sha256=hashlib.sha256(bundle).hexdigest(),
        )
        line = ProcessOutput(
            sequence=run.last_log_sequence + 1,
            source=LogSource.STDOUT,
            text=f"Offline drop {name} is ready: download it from the task's artifacts, copy "
            "it to the host, extract it and run deploy.sh.",
            time=utc_now().isoformat(),
        )
        finished = StepFinishedV1(
            ticket=run.ticket,
            task_id=run.task_id,
            step_run_id=run.step_run_id,
            machine_id=str(run.machine_id),
            exit_code=0,
            artifacts=[artifact],
        )
        await self._finish(run, 0, None, [line], gathered=finished)

    def _keeper(
        self, ssh: SshTargets, run: ScriptRun, endpoint: SshEndpoint
    ) -> KeepArtifact | None:
        """Artifacts' bytes go from the target to the task artifact store."""
        store = self._artifacts
        if store is None:
            return None

        async def keep(index: int, path: str, artifact: ArtifactV1) -> ArtifactV1:
            data = await ssh.runner.fetch(endpoint, path, MAX_ARTIFACT_BYTES)
            object_name = f"{run.space_id}/{run.task_id}/{run.ticket}/{index}"
            try:
                await store.put(object_name, data)
            except Exception as error:  # NATS errors have no common base
                raise OSError(f"the artifact store refused it ({error})") from error
            digest = hashlib.sha256(data).hexdigest()
            return artifact.model_copy(
                update={"size": len(data), "object_name": object_name, "sha256": digest}
            )

        return keep

    def _command(
        self, dispatch: StepDispatchV1, plan: ScriptPlan, machine: Machine, waits: bool
    ) -> StartScriptCommand:
        """Deployment steps on a target are isolated; scripts on workers are not. An agent that
        can wait answers the start once a short script is done: one call instead of three."""
        isolation = ScriptIsolation.FULL if machine.kind == TARGET else ScriptIsolation.NONE
        wait = self._settings.start_wait_seconds if waits else 0.0
        return StartScriptCommand(
            ticket=dispatch.ticket,
            script_body=plan.script_body,
            syntax=plan.syntax,
            variables=plan.variables,
            sensitive_variables=plan.sensitive_variables,
            timeout_seconds=dispatch.timeout_seconds,
            isolation=isolation,
            isolation_mutex_timeout_seconds=self._settings.isolation_mutex_timeout_seconds,
            wait_seconds=wait or None,
        )

    async def _mark_running(self, run: ScriptRun, started_at: datetime | None = None) -> None:
        async with unit_of_work(self._sessionmaker) as session:
            repos = Repositories(session)
            marked = await repos.script_runs.mark_running(
                run.ticket, dispatch=scrub_secrets(run.dispatch), started_at=started_at or utc_now()
            )
            if not marked:
                raise StaleRun(run.ticket)
        run.state = ProcessState.RUNNING.value

    async def _absorb_unless_complete(self, run: ScriptRun, status: ScriptStatusResponse) -> bool:
        """True once Complete (its lines are left for `_finish`); else publish the new lines
        (service messages taken out) and advance the cursor, atomically."""
        if status.state is ProcessState.COMPLETE:
            return True
        results = self._results.setdefault(run.ticket, StepResults(whole_log=False))
        fresh = results.absorb(_after(run.last_log_sequence, status.logs))
        if fresh:
            async with unit_of_work(self._sessionmaker) as session:
                self._publish_lines(session, run, fresh)
                await self._advance(Repositories(session), run, fresh)
        return False

    def _publish_lines(
        self, session: AsyncSession, run: ScriptRun, lines: list[ProcessOutput]
    ) -> None:
        for batch in log_batches(lines, self._settings.max_log_event_bytes):
            publish.step_log(
                session,
                run,
                StepLogV1(
                    ticket=run.ticket,
                    task_id=run.task_id,
                    step_run_id=run.step_run_id,
                    machine_id=str(run.machine_id),
                    lines=batch,
                ),
            )

    async def _advance(
        self, repos: Repositories, run: ScriptRun, lines: list[ProcessOutput]
    ) -> None:
        """Move the cursor past `lines`; `StaleRun` if another driver moved it meanwhile."""
        cursor = lines[-1].sequence
        if not await repos.script_runs.advance_cursor(
            run.ticket, expected=run.last_log_sequence, new=cursor
        ):
            raise StaleRun(run.ticket)
        run.last_log_sequence = cursor

    async def _finish(
        self,
        run: ScriptRun,
        exit_code: int | None,
        error: str | None,
        tail: Sequence[ProcessOutput] = (),
        gathered: StepFinishedV1 | None = None,
        *,
        started_at: datetime | None = None,
    ) -> None:
        """Publish the last lines, mark the run Complete and announce `step.finished`, once,
        in one transaction. `gathered` carries results collected elsewhere (an SSH step
        gathers its own); `started_at` is set for a run that finished before it was marked
        Running (its start answered Complete)."""
        outcome, _ = outcome_of(exit_code)
        if exit_code is None and error is not None and error.startswith("Canceled"):
            outcome = Outcome.CANCELED
        results = self._results.pop(run.ticket, None) or StepResults()
        if gathered is not None:
            results = StepResults(
                output_variables=dict(gathered.output_variables),
                sensitive=set(gathered.sensitive_output_variables),
                artifacts={str(i): artifact for i, artifact in enumerate(gathered.artifacts)},
            )
        fresh = results.absorb(_after(run.last_log_sequence, tail))
        cursor = (run.last_log_sequence, fresh[-1].sequence) if fresh else None
        async with unit_of_work(self._sessionmaker) as session:
            repos = Repositories(session)
            if fresh:
                self._publish_lines(session, run, fresh)
            finished = await repos.script_runs.finish(
                run.ticket,
                exit_code=exit_code,
                error=error,
                outcome=outcome,
                dispatch=scrub_secrets(run.dispatch),
                finished_at=utc_now(),
                started_at=started_at,
                cursor=cursor,
            )
            if cursor is not None:
                if not finished:  # moved on or finished by another driver: publish nothing
                    raise StaleRun(run.ticket)
                run.last_log_sequence = cursor[1]
            if finished:
                publish.step_finished(
                    session,
                    run,
                    StepFinishedV1(
                        ticket=run.ticket,
                        task_id=run.task_id,
                        step_run_id=run.step_run_id,
                        machine_id=str(run.machine_id),
                        exit_code=exit_code,
                        error=error,
                        output_variables=results.output_variables,
                        sensitive_output_variables=results.sensitive_output_variables,
                        artifacts=results.artifact_list,
                        last_log_sequence=run.last_log_sequence or None,
                    ),
                )
        if error is not None:
            log.warning("script run ended", ticket=run.ticket, outcome=outcome, error=error)
        run.state = ProcessState.COMPLETE.value


async def _pause(seconds: float, cancel: asyncio.Event, cancel_sent: bool) -> None:
    """Sleep between two status calls; a new cancellation ends the pause at once."""
    if cancel_sent:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(cancel.wait(), seconds)


def _streams(transport: Transport) -> TypeGuard[StreamTransport]:
    return callable(getattr(transport, "invoke_download", None))


def _notes(run: ScriptRun, tail: Sequence[ProcessOutput], texts: list[str]) -> list[ProcessOutput]:
    """The gateway's own lines, numbered after the agent's last."""
    last = max([run.last_log_sequence, *(line.sequence for line in tail)])
    now = utc_now().isoformat()
    return [
        ProcessOutput(sequence=last + i, source=LogSource.STDERR, text=text, time=now)
        for i, text in enumerate(texts, start=1)
    ]


def _after(cursor: int, lines: Sequence[ProcessOutput]) -> list[ProcessOutput]:
    """The lines after `cursor`, each sequence once, in order."""
    fresh = {line.sequence: line for line in lines if line.sequence > cursor}
    return [fresh[sequence] for sequence in sorted(fresh)]


def _admit(run: ScriptRun, machine: Machine | None) -> Machine:
    """Refusals that no retry can cure: the machine is gone or disabled."""
    if machine is None or machine.space_id != run.space_id:
        raise RunRefused(f"Machine {run.machine_id} is not registered in this space")
    if machine.is_disabled:
        raise RunRefused(f"Machine {machine.name} is disabled")
    return machine


def _check_capabilities(capabilities: Capabilities, name: str, dispatch: StepDispatchV1) -> None:
    if CONTRACT_VERSION not in capabilities.contract_versions:
        supported = ", ".join(capabilities.contract_versions) or "none"
        raise RunRefused(
            f"Machine {name} does not speak {CONTRACT_VERSION} (it speaks {supported})"
        )
    if dispatch.syntax.value not in capabilities.shells:
        shells = ", ".join(capabilities.shells) or "none"
        raise RunRefused(f"Machine {name} cannot run {dispatch.syntax.value} scripts ({shells})")


def _unreachable(run: ScriptRun, name: str, budget: float) -> str:
    if run.state == ProcessState.PENDING:
        return f"Machine {name} did not connect within {describe_seconds(budget)}"
    return (
        f"Machine {name} did not reconnect within {describe_seconds(budget)}; "
        "the outcome of its script is unknown"
    )
