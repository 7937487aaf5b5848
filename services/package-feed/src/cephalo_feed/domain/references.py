"""Which package versions releases use: release-service knows, this service asks.

"Unknown" (an older release-service without the route) is a normal answer: retention then
keeps everything, and a delete needs `force`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class Knowledge(StrEnum):
    KNOWN = "known"
    NO_ENDPOINT = "no-endpoint"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class References:
    knowledge: Knowledge
    version_keys: frozenset[str] = field(default_factory=frozenset)
    reason: str = ""

    @property
    def known(self) -> bool:
        return self.knowledge is Knowledge.KNOWN


class ReleaseReferences(Protocol):
    async def references(self, space_id: uuid.UUID, package_id: str) -> References:
        """The version keys of `package_id` that some release of the space uses."""
