"""One dispatched step on an SSH target, from `step.dispatch` to `step.finished`.

The log is numbered here (an SSH session has no journal to resume from) and handed to
`publish` as it arrives (every `flush_seconds`, at most `BATCH_LINES` a call) with service
messages already described (the lines left at the end can be handed back in `tail`); the results are gathered as on an agent. A lost connection mid-step cannot be resumed: the step finishes with an error
saying its outcome is unknown, never re-run.

Artifacts are handed to `keep` once the step has ended (it fetches and stores their bytes);
one that cannot be kept is reported in the step's log and does not change its outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncssh

from cephalo_agent_gateway.domain.ssh_targets import SshEndpoint, SshStepRunner, SshUnavailable
from cephalo_agent_gateway.domain.step_actions import StepResults, action_spec
from cephalo_common.agent_protocol import ExitCodes, LogSource, ProcessOutput
from cephalo_common.contracts import ArtifactV1, StepDispatchV1, StepFinishedV1
from cephalo_common.ids import utc_now

Publish = Callable[[list[ProcessOutput]], Awaitable[None]]
KeepArtifact = Callable[[int, str, ArtifactV1], Awaitable[ArtifactV1]]
BATCH_LINES = 200


class _Log:
    def __init__(self) -> None:
        self.pending: list[ProcessOutput] = []
        self.sequence = 0

    def __call__(self, source: LogSource, text: str) -> None:
        self.sequence += 1
        self.pending.append(
            ProcessOutput(
                sequence=self.sequence, source=source, text=text, time=utc_now().isoformat()
            )
        )


async def run_ssh_step(
    runner: SshStepRunner,
    endpoint: SshEndpoint,
    dispatch: StepDispatchV1,
    publish: Publish,
    flush_seconds: float = 0.5,
    timeout_seconds: float | None = None,
    keep: KeepArtifact | None = None,
    tail: list[ProcessOutput] | None = None,
) -> StepFinishedV1:
    """The step's `step.finished`; past `timeout_seconds` its session is closed and it
    finishes with the agent's TimedOut exit code.

    With `tail`, the lines still unpublished when the step ends (already described) are
    put there instead of published: the caller writes them with `step.finished`, in one
    transaction (a short step's whole log then costs no transaction of its own)."""
    log = _Log()
    results = StepResults()
    action = {**action_spec(dispatch), "variables": dispatch.variables}
    exit_code: int | None = None
    error: str | None = None

    async def flush(last: bool = False) -> None:
        if last and tail is not None:
            tail.extend(results.absorb(log.pending))
            log.pending.clear()
        while log.pending:
            batch = log.pending[:BATCH_LINES]
            await publish(results.absorb(batch))
            del log.pending[: len(batch)]

    ended = asyncio.Event()

    async def flush_periodically() -> None:
        """Never cancelled mid-flush: a batch published but not yet taken off `pending`
        would be published again by the last flush."""
        while not ended.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(flush_seconds):
                    await ended.wait()
            if ended.is_set() and tail is not None:
                return  # the last lines go to `tail`
            await flush()

    flusher = asyncio.create_task(flush_periodically())
    deadline = asyncio.timeout(timeout_seconds or None)
    try:
        async with deadline:
            exit_code = await runner.run_action(endpoint, dispatch.ticket, action, log)
    except SshUnavailable as refused:
        error = str(refused)
    except (OSError, asyncssh.Error) as lost:  # TimeoutError is an OSError
        if deadline.expired():
            exit_code = ExitCodes.TIMED_OUT
        else:
            error = f"SSH target {endpoint.name}: the connection was lost ({lost}); outcome unknown"
    finally:
        ended.set()
        await asyncio.shield(flusher)
    await flush(last=True)  # every line absorbed: the results are complete
    if keep is not None and exit_code is not None:
        await _keep_artifacts(results, keep, log)
        await flush(last=True)
    return StepFinishedV1(
        ticket=dispatch.ticket,
        task_id=dispatch.task_id,
        step_run_id=dispatch.step_run_id,
        machine_id=dispatch.machine_id,
        exit_code=exit_code,
        error=error,
        output_variables=results.output_variables,
        sensitive_output_variables=results.sensitive_output_variables,
        artifacts=results.artifact_list,
        last_log_sequence=log.sequence or None,
    )


async def _keep_artifacts(results: StepResults, keep: KeepArtifact, log: _Log) -> None:
    for index, (path, artifact) in enumerate(list(results.artifacts.items())):
        try:
            results.artifacts[path] = await keep(index, path, artifact)
        except (SshUnavailable, OSError, asyncssh.Error, ValueError) as error:
            log(LogSource.STDERR, f"The artifact {artifact.name!r} was not kept: {error}")
