"""The polling listener: agents dial in over a mutual-TLS WebSocket on `polling_port`.

TLS admits only certificates of registered machines (the trust store is loaded from the
table at start, grows with each registration here, and reloads what other replicas
registered). After the handshake the client's thumbprint is looked up again, so a deleted or
disabled machine is refused (close 1008) even though OpenSSL cannot forget a certificate it
was once told to trust.

Each certificate may hold at most `max_connections_per_thumbprint` TLS connections: more
are aborted right after the handshake, before any HTTP parsing or database lookup.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from cephalo_agent_gateway.db.models import Machine
from cephalo_agent_gateway.db.repositories import Repositories
from cephalo_agent_gateway.identity import ServerIdentity
from cephalo_agent_gateway.transport.polling import ConnectionRegistry, PollingConnection
from cephalo_common.agent_protocol import POLLING_PATH
from cephalo_common.ids import utc_now
from cephalo_common.logging import get_logger
from cephalo_common.security.tls import der_thumbprint, server_context, trust

log = get_logger(__name__)
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
MAX_START_BACKOFF_SECONDS = 10.0
# Registrations committed late (a slow transaction) are still seen by the next reload.
TRUST_RELOAD_OVERLAP = timedelta(minutes=5)


@dataclass(frozen=True)
class ListenerOptions:
    host: str
    port: int
    ping_interval_seconds: float
    ping_timeout_seconds: float
    max_message_bytes: int
    max_connections_per_thumbprint: int = 4
    backlog: int = 1024


class TrustStore:
    """The TLS context of the polling port and the certificates it trusts."""

    def __init__(self, identity: ServerIdentity) -> None:
        self.context: ssl.SSLContext = server_context(identity.cert_file, identity.key_file, [])
        self.thumbprints: set[str] = set()
        self._watermark: datetime | None = None

    def add(self, certificate_pem: str, thumbprint: str) -> None:
        if thumbprint not in self.thumbprints:
            trust(self.context, certificate_pem)
            self.thumbprints.add(thumbprint)

    async def reload(self, sessionmaker: async_sessionmaker[AsyncSession]) -> int:
        """Trust certificates registered since the last reload (by any replica)."""
        since = None if self._watermark is None else self._watermark - TRUST_RELOAD_OVERLAP
        async with sessionmaker() as session:
            rows = await Repositories(session).machines.certificates_since(since)
        added = 0
        for pem, thumbprint, created_at in rows:
            if thumbprint not in self.thumbprints:
                self.add(pem, thumbprint)
                added += 1
            if self._watermark is None or created_at > self._watermark:
                self._watermark = created_at
        return added


class ConnectionGuard:
    """Counts open TLS connections per client thumbprint and refuses those over the cap."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.open: collections.Counter[str] = collections.Counter()
        self.refused = 0

    def admit(self, thumbprint: str) -> bool:
        self.open[thumbprint] += 1
        if self.open[thumbprint] > self.cap:
            self.refused += 1
            return False
        return True

    def release(self, thumbprint: str) -> None:
        self.open[thumbprint] -= 1
        if self.open[thumbprint] <= 0:
            del self.open[thumbprint]


def _guarded_connection(guard: ConnectionGuard) -> type[ServerConnection]:
    class GuardedConnection(ServerConnection):
        """Counted from the end of the TLS handshake until the socket is gone."""

        _counted: str | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            ssl_object = transport.get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
            if not der:
                return
            self._counted = der_thumbprint(der)
            if not guard.admit(self._counted):
                log.warning("too many connections from one certificate", thumbprint=self._counted)
                assert isinstance(transport, asyncio.Transport)
                transport.abort()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._counted is not None:
                guard.release(self._counted)
                self._counted = None
            super().connection_lost(exc)

    return GuardedConnection


class PollingListener:
    def __init__(
        self,
        identity: ServerIdentity,
        registry: ConnectionRegistry,
        sessionmaker: async_sessionmaker[AsyncSession],
        options: ListenerOptions,
    ) -> None:
        self._identity = identity
        self._registry = registry
        self._sessionmaker = sessionmaker
        self._options = options
        self.trust_store = TrustStore(identity)
        self.guard = ConnectionGuard(options.max_connections_per_thumbprint)
        self.serving = asyncio.Event()
        self._server: Server | None = None

    @property
    def context(self) -> ssl.SSLContext:
        return self.trust_store.context

    def trust(self, certificate_pem: str, thumbprint: str) -> None:
        """Admit a newly registered machine's certificate to new handshakes."""
        self.trust_store.add(certificate_pem, thumbprint)

    async def reload_trust(self) -> int:
        return await self.trust_store.reload(self._sessionmaker)

    async def run(self) -> None:
        """Load the trust store and listen; retry while Postgres is down or the port is busy."""
        delay = 0.5
        while self._server is None:
            try:
                await self.reload_trust()
                self._server = await self._serve()
            except Exception as error:  # noqa: BLE001 - keep trying, reported by /readyz
                log.warning("polling listener not started; retrying", error=str(error))
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_START_BACKOFF_SECONDS)
        self.serving.set()
        log.info("polling listener started", host=self._options.host, port=self._options.port)
        await self._server.serve_forever()

    async def close(self) -> None:
        self.serving.clear()
        await self._registry.close_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self) -> Server:
        o = self._options
        return await serve(
            self._handle,
            o.host,
            o.port,
            ssl=self.context,
            create_connection=_guarded_connection(self.guard),
            process_request=_only_polling_path,
            compression=None,
            server_header=None,
            ping_interval=o.ping_interval_seconds,
            ping_timeout=o.ping_timeout_seconds,
            max_size=o.max_message_bytes,
            backlog=o.backlog,
        )

    async def _handle(self, websocket: ServerConnection) -> None:
        ssl_object = websocket.transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            await websocket.close(POLICY_VIOLATION, "a client certificate is required")
            return
        thumbprint = der_thumbprint(der)
        try:
            machine = await self._identify(thumbprint)
        except Exception as error:  # noqa: BLE001 - the agent retries with back-off
            log.warning("could not identify a polling agent", error=str(error))
            await websocket.close(TRY_AGAIN_LATER, "try again later")
            return
        if machine is None or machine.is_disabled:
            reason = "unknown certificate" if machine is None else "machine is disabled"
            log.warning("refused a polling agent", thumbprint=thumbprint, reason=reason)
            await websocket.close(POLICY_VIOLATION, reason)
            return
        await self._hold(PollingConnection(machine.id, machine.name, websocket))

    async def _hold(self, connection: PollingConnection) -> None:
        replaced = self._registry.attach(connection)
        if replaced is not None:
            await replaced.close(1000, "replaced by a newer connection")
        log.info("agent connected", machine=connection.machine_name)
        await self._touch(connection)
        try:
            await connection.serve()
        finally:
            self._registry.detach(connection)
            log.info("agent disconnected", machine=connection.machine_name)
            await self._touch(connection)

    async def _identify(self, thumbprint: str) -> Machine | None:
        async with self._sessionmaker() as session:
            return await Repositories(session).machines.find_by_thumbprint(thumbprint)

    async def _touch(self, connection: PollingConnection) -> None:
        try:
            async with self._sessionmaker() as session, session.begin():
                await Repositories(session).machines.touch(connection.machine_id, utc_now())
        except Exception as error:  # noqa: BLE001 - last_seen_at is informational
            log.debug("could not record last_seen_at", error=str(error))


def _only_polling_path(websocket: ServerConnection, request: Request) -> Response | None:
    if request.path.split("?", 1)[0] != POLLING_PATH:
        return websocket.respond(HTTPStatus.NOT_FOUND, "not found\n")
    return None
