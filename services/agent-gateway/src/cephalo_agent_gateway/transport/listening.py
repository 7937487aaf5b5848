"""Listening agents: the gateway dials `https://host:10933` (mutual TLS) for each call.

Each machine gets its own pooled HTTP client whose TLS context presents the gateway's
certificate and trusts exactly that machine's registered certificate, so a different agent
at the same address fails the handshake; the peer thumbprint is compared again after the
response. A failed certificate check raises `TrustRefused` (never retried); a refused or
timed-out connect is `MachineNotConnected`; a connection lost mid-call is `ConnectionLost`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import ValidationError

from cephalo_agent_gateway.domain.transport import (
    ConnectionLost,
    MachineNotConnected,
    RpcTimeout,
    TrustRefused,
)
from cephalo_agent_gateway.identity import ServerIdentity
from cephalo_common.agent_protocol import (
    LISTENING_PATH,
    RemoteError,
    RequestMessage,
    ResponseMessage,
    Services,
)
from cephalo_common.http.outbound import guarded_transport
from cephalo_common.ids import uuid7
from cephalo_common.security.tls import client_context, der_thumbprint, thumbprints_equal
from cephalo_common.urls import OutboundPolicy


@dataclass(frozen=True)
class Endpoint:
    """Where and whom to dial: a listening machine's URI and its registered certificate."""

    machine_id: uuid.UUID
    name: str
    uri: str
    certificate_pem: str
    thumbprint: str


@dataclass(frozen=True)
class ListeningOptions:
    connect_timeout_seconds: float
    rpc_timeout_seconds: float
    keepalive_seconds: float
    max_connections_per_machine: int
    max_clients: int = 5000
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)


class ListeningTransport:
    def __init__(self, identity: ServerIdentity, options: ListeningOptions) -> None:
        self._identity = identity
        self._options = options
        self._clients: collections.OrderedDict[uuid.UUID, tuple[Endpoint, httpx.AsyncClient]] = (
            collections.OrderedDict()
        )
        self._reachable_at: dict[uuid.UUID, float] = {}

    def is_reachable(self, machine_id: uuid.UUID) -> bool:
        """The last call to the machine got through (within the keep-alive window)."""
        at = self._reachable_at.get(machine_id)
        loop = asyncio.get_running_loop()
        return at is not None and loop.time() - at < self._options.keepalive_seconds

    async def invoke(self, endpoint: Endpoint, request: RequestMessage) -> ResponseMessage:
        client = await self._client(endpoint)
        try:
            response = await client.post(
                LISTENING_PATH,
                content=request.model_dump_json().encode(),
                headers={"content-type": "application/json"},
            )
        except httpx.ConnectError as error:
            self._reachable_at.pop(endpoint.machine_id, None)
            if _caused_by(error, ssl.SSLCertVerificationError):
                raise TrustRefused(
                    f"machine {endpoint.name} at {endpoint.uri} presented a certificate that is "
                    f"not its registered one (thumbprint {endpoint.thumbprint}); refused"
                ) from error
            raise MachineNotConnected(
                f"cannot connect to {endpoint.name} at {endpoint.uri}: {_describe(error)}"
            ) from error
        except httpx.ConnectTimeout as error:
            self._reachable_at.pop(endpoint.machine_id, None)
            raise MachineNotConnected(
                f"connecting to {endpoint.name} at {endpoint.uri} timed out"
            ) from error
        except httpx.TimeoutException as error:
            raise RpcTimeout(
                f"{endpoint.name} did not answer {request.service}.{request.method} within "
                f"{self._options.rpc_timeout_seconds:g} s"
            ) from error
        except httpx.TransportError as error:
            raise ConnectionLost(
                f"connection to {endpoint.name} lost during {request.method}: {_describe(error)}"
            ) from error
        self._check_peer(response, endpoint)
        self._reachable_at[endpoint.machine_id] = asyncio.get_running_loop().time()
        if response.status_code != 200:
            message = f"HTTP {response.status_code}: {response.text.strip()[:300]}"
            return ResponseMessage(
                id=request.id, error=RemoteError(type="HttpError", message=message)
            )
        try:
            return ResponseMessage.model_validate_json(response.content)
        except ValidationError as error:
            return ResponseMessage(
                id=request.id, error=RemoteError(type="InvalidResponse", message=str(error))
            )

    async def send_stream(self, endpoint: Endpoint, stream_id: str, source: Path) -> None:
        """`PUT /streams/<id>`: the bytes before the `upload_file` request that names them."""
        client = await self._client(endpoint)
        try:
            response = await client.put(f"/streams/{stream_id}", content=_chunks(source))
        except httpx.TransportError as error:
            raise ConnectionLost(f"upload to {endpoint.name} failed: {_describe(error)}") from error
        if response.status_code != 204:
            raise ConnectionLost(f"{endpoint.name} refused the stream: HTTP {response.status_code}")

    async def fetch_stream(self, endpoint: Endpoint, stream_id: str, destination: Path) -> None:
        """`GET /streams/<id>` into `destination`, after `download_file` announced it."""
        client = await self._client(endpoint)
        try:
            async with client.stream("GET", f"/streams/{stream_id}") as response:
                if response.status_code != 200:
                    raise ConnectionLost(
                        f"{endpoint.name} has no stream {stream_id} (HTTP {response.status_code})"
                    )
                with destination.open("wb") as handle:
                    async for chunk in response.aiter_bytes():
                        await asyncio.to_thread(handle.write, chunk)
        except httpx.TransportError as error:
            raise ConnectionLost(
                f"download from {endpoint.name} failed: {_describe(error)}"
            ) from error

    async def probe(self, endpoint: Endpoint) -> bool:
        """One capabilities call: True if it got through. `TrustRefused` propagates."""
        request = RequestMessage(
            id=str(uuid7()), service=Services.CAPABILITIES, method="get_capabilities"
        )
        try:
            await self.invoke(endpoint, request)
        except (MachineNotConnected, ConnectionLost, RpcTimeout):
            return False
        return True

    async def forget(self, machine_id: uuid.UUID) -> None:
        entry = self._clients.pop(machine_id, None)
        self._reachable_at.pop(machine_id, None)
        if entry is not None:
            await entry[1].aclose()

    async def aclose(self) -> None:
        clients = [client for _, client in self._clients.values()]
        self._clients.clear()
        await asyncio.gather(*(client.aclose() for client in clients), return_exceptions=True)

    async def _client(self, endpoint: Endpoint) -> httpx.AsyncClient:
        entry = self._clients.get(endpoint.machine_id)
        if entry is not None and entry[0] == endpoint:
            self._clients.move_to_end(endpoint.machine_id)
            return entry[1]
        if entry is not None:
            await self.forget(endpoint.machine_id)
        o = self._options
        context = client_context(
            self._identity.cert_file, self._identity.key_file, endpoint.certificate_pem
        )
        limits = httpx.Limits(
            max_connections=o.max_connections_per_machine,
            max_keepalive_connections=o.max_connections_per_machine,
            keepalive_expiry=o.keepalive_seconds,
        )
        client = httpx.AsyncClient(
            base_url=endpoint.uri,
            transport=guarded_transport(o.outbound, verify=context, trust_env=False, limits=limits),
            trust_env=False,
            timeout=httpx.Timeout(
                connect=o.connect_timeout_seconds,
                read=o.rpc_timeout_seconds,
                write=o.rpc_timeout_seconds,
                pool=o.rpc_timeout_seconds,
            ),
        )
        self._clients[endpoint.machine_id] = (endpoint, client)
        while len(self._clients) > o.max_clients:
            _, (_, oldest) = self._clients.popitem(last=False)
            await oldest.aclose()
        return client

    @staticmethod
    def _check_peer(response: httpx.Response, endpoint: Endpoint) -> None:
        stream = response.extensions.get("network_stream")
        ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
        if ssl_object is None:
            return
        der = ssl_object.getpeercert(binary_form=True)
        actual = der_thumbprint(der) if der else "none"
        if not thumbprints_equal(actual, endpoint.thumbprint):
            raise TrustRefused(
                f"machine {endpoint.name} presented thumbprint {actual}, "
                f"not its registered {endpoint.thumbprint}; refused"
            )


async def _chunks(source: Path, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    with source.open("rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, size):
            yield chunk


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = error
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _describe(error: BaseException) -> str:
    with contextlib.suppress(Exception):
        return str(error) or type(error).__name__
    return type(error).__name__
