"""How the gateway calls an agent, whatever carries the call.

The server is always the RPC client. `Transport.invoke(machine, request)` is the same for a
polling agent (its WebSocket, held by this replica), a polling agent held by a peer replica
(routed over `cephalo.agent.req.<machine-id>`) and a listening agent (dialled over HTTPS).

`TransportError`s are worth retrying once the machine is reachable again; `TrustRefused` is
not: the peer is not who the machine record says it is.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from cephalo_common.agent_protocol import RequestMessage, ResponseMessage


class TransportError(Exception):
    """The call may not have reached the agent, or its answer was lost: retry when reachable."""


class MachineNotConnected(TransportError):
    """No live connection to the machine on this replica."""


class ConnectionLost(TransportError):
    """The connection dropped while the call was in flight."""


class RpcTimeout(TransportError):
    """The agent did not answer within `rpc_timeout_seconds`."""


class TrustRefused(Exception):
    """The peer's certificate is not the one registered for the machine: never retried."""


class Transport(Protocol):
    def is_connected(self, machine_id: uuid.UUID) -> bool:
        """Whether a call to the machine can be made right now."""

    async def wait_until_connected(self, machine_id: uuid.UUID, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the machine to be reachable; False if it was not."""

    async def invoke(self, machine_id: uuid.UUID, request: RequestMessage) -> ResponseMessage:
        """Send one request and return its response; raises `TransportError` subclasses."""
