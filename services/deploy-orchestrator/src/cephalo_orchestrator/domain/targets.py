"""Where steps run: the machines of an environment, as agent-gateway describes them.

agent-gateway owns deployment targets; the orchestrator only asks. `MachineDirectory` is
the question, so the rules never depend on HTTP and tests can answer it however they like.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

from cephalo_orchestrator.domain.planning import Target
from cephalo_orchestrator.domain.reconciler import GatewayRun

Machine = Target


class TargetsUnavailable(Exception):
    """The directory could not be asked (down, timed out, 5xx): worth retrying."""


class TargetsRefused(Exception):
    """The directory answered with an error that retrying will not fix."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class MachineDirectory(Protocol):
    async def find_machines(
        self, space_id: uuid.UUID, environment_id: uuid.UUID, roles: Sequence[str]
    ) -> Sequence[Target]:
        """Machines of the environment that have any of `roles` (all of them when empty)."""
        ...


class ScriptRuns(Protocol):
    async def cancel_script(self, space_id: uuid.UUID, ticket: str) -> None:
        """Ask agent-gateway to cancel one run (unknown or finished runs are not an error)."""
        ...

    async def script_run(self, space_id: uuid.UUID, ticket: str) -> GatewayRun | None:
        """What agent-gateway knows of one run; None when it has no run with the ticket.
        `TargetsUnavailable` when it cannot be asked."""
        ...
