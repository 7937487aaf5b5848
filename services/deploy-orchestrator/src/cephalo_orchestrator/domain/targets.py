"""Where a step runs: the machines of an environment with a step's roles.

agent-gateway owns deployment targets; the orchestrator only asks. `MachineDirectory` is
the question, so the rules never depend on HTTP and tests can answer it however they like.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Machine:
    id: uuid.UUID
    name: str
    is_disabled: bool = False


class TargetsUnavailable(Exception):
    """The directory could not be asked (down, timed out, 5xx): worth retrying."""


class TargetsRefused(Exception):
    """The directory answered with an error that retrying will not fix."""


class MachineDirectory(Protocol):
    async def find_machines(
        self, space_id: uuid.UUID, environment_id: uuid.UUID, roles: Sequence[str]
    ) -> Sequence[Machine]:
        """Machines of the environment that have any of `roles` (all of them when empty)."""
        ...


def eligible(machines: Iterable[Machine]) -> list[Machine]:
    """Enabled machines, each once, in name order (so the plan and the log read the same)."""
    unique = {machine.id: machine for machine in machines if not machine.is_disabled}
    return sorted(unique.values(), key=lambda machine: (machine.name.lower(), str(machine.id)))
