"""Polling mode: the agent dials agent-gateway over a mutual-TLS WebSocket and serves its requests.

The server stays the RPC client: each text frame it sends is a `RequestMessage`, each frame the
agent sends back is the matching `ResponseMessage`. Requests run concurrently, each in its own
task, so a slow `cancel_script` does not hold up a `get_status`.

Trust is pinned both ways: the TLS context trusts only the server certificate saved at
registration, and after the handshake the peer's SHA-256 thumbprint must also equal the one in
`config.json`. A broken connection, a server that is down and a trust failure are all retried
forever with capped, jittered exponential back-off; only SIGTERM/SIGINT stop the agent.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidMessage,
    InvalidStatus,
    WebSocketException,
)

from cephalo_agent import agent_version
from cephalo_agent.config import (
    AgentConfig,
    AgentPaths,
    NotRegistered,
    load_server_certificate,
)
from cephalo_agent.files import IncomingStream, StreamStore
from cephalo_agent.service import AgentService
from cephalo_common.security.tls import (
    client_context,
    der_thumbprint,
    thumbprint,
    thumbprints_equal,
)

__all__ = ["NotRegistered", "PollingClient", "PollingSettings", "UntrustedServer"]

log = logging.getLogger(__name__)

UNTRUSTED_SERVER = "server certificate thumbprint does not match the pinned one"
STREAM_ID_BYTES = 16
STREAM_CHUNK_BYTES = 256 * 1024
Introduce = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class PollingSettings:
    """Timeouts and back-off of the polling connection, with production defaults."""

    initial_backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    jitter: float = 0.25  # up to this fraction of the delay is added at random
    # A connection that lasted this long resets the back-off; a flapping one does not.
    stable_after_seconds: float = 10.0
    open_timeout_seconds: float = 10.0
    ping_interval_seconds: float | None = 20.0
    ping_timeout_seconds: float | None = 20.0
    close_timeout_seconds: float = 5.0
    max_message_bytes: int = 16 * 1024 * 1024
    max_concurrent_requests: int = 64
    # When the server refuses this agent's certificate, ask it (at most this often) to record
    # a pending registration an operator can approve.
    introduce_interval_seconds: float = 300.0


class UntrustedServer(ConnectionError):
    """The server's certificate is not the pinned one."""


def backoff_delay(attempt: int, settings: PollingSettings) -> float:
    """0.5 s, 1 s, 2 s, ... capped at 30 s, plus up to 25 % jitter so agents do not stampede."""
    base = min(
        settings.max_backoff_seconds, settings.initial_backoff_seconds * 2.0 ** min(attempt, 30)
    )
    return base + random.SystemRandom().uniform(0, base * settings.jitter)


class PollingClient:
    """One agent's polling connection to agent-gateway; `run_forever` until cancelled."""

    def __init__(
        self,
        endpoint: str,
        *,
        certificate: Path,
        private_key: Path,
        server_certificate_pem: str,
        server_thumbprint: str,
        service: AgentService,
        settings: PollingSettings | None = None,
        streams: StreamStore | None = None,
        introduce: Introduce | None = None,
    ) -> None:
        if not endpoint.startswith("wss://"):
            raise ValueError(f"the polling endpoint must be a wss:// URL, not {endpoint!r}")
        self.endpoint = endpoint
        self.certificate = certificate
        self.private_key = private_key
        self.server_certificate_pem = server_certificate_pem
        self.server_thumbprint = server_thumbprint
        self.service = service
        self.settings = settings or PollingSettings()
        self.streams = streams
        self.introduce = introduce
        self.agent_thumbprint = thumbprint(certificate.read_bytes())
        self.connected = asyncio.Event()  # set while a verified connection is up
        self._verified_at: float | None = None
        self._introduced_at: float | None = None
        self._context: ssl.SSLContext | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._incoming: dict[bytes, IncomingStream] = {}

    @classmethod
    def from_config(
        cls,
        paths: AgentPaths,
        config: AgentConfig,
        service: AgentService,
        settings: PollingSettings | None = None,
        *,
        streams: StreamStore | None = None,
        introduce: Introduce | None = None,
    ) -> PollingClient:
        server_pem = load_server_certificate(paths)
        if not config.registered or config.polling_endpoint is None:
            raise NotRegistered("this agent is not registered; run `register` first")
        if config.mode != "polling":
            raise NotRegistered(f"this agent is registered in {config.mode} mode, not polling")
        if server_pem is None or config.server_thumbprint is None:
            raise NotRegistered(
                f"no pinned server certificate in {paths.server_certificate}; register again"
            )
        return cls(
            config.polling_endpoint,
            certificate=paths.certificate,
            private_key=paths.private_key,
            server_certificate_pem=server_pem,
            server_thumbprint=config.server_thumbprint,
            service=service,
            settings=settings,
            streams=streams,
            introduce=introduce,
        )

    async def run_forever(self) -> None:
        """Connect, serve, and reconnect with back-off whenever anything goes wrong."""
        attempt = 0
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            refused = False
            try:
                reason, level = await self.run_once(), logging.WARNING
                refused = "unknown certificate" in reason
            except Exception as exc:  # noqa: BLE001 - every failure is logged and retried
                reason, level = describe_failure(exc, self.agent_thumbprint)
                refused = refused_by_server(exc)
            if refused:
                await self._maybe_introduce()
            # Only a connection that stayed up a while resets the back-off; a flapping one
            # (accepted, then dropped at once) keeps backing off.
            up_for = 0.0
            if self._verified_at is not None and self._verified_at >= began:
                up_for = loop.time() - self._verified_at
            if up_for >= self.settings.stable_after_seconds:
                attempt = 0
            delay = backoff_delay(attempt, self.settings)
            attempt += 1
            log.log(
                level,
                "%s; reconnecting to %s in %.1f s (attempt %d)",
                reason,
                self.endpoint,
                delay,
                attempt,
            )
            await asyncio.sleep(delay)

    async def run_once(self) -> str:
        """One connection: handshake, pin check, then serve until it closes.

        Returns how the connection ended when the server closed it; raises on any failure.
        """
        if self._context is None:  # built once: reconnecting must not cost a reload of the keys
            self._context = client_context(
                self.certificate, self.private_key, self.server_certificate_pem
            )
        context = self._context
        s = self.settings
        async with connect(
            self.endpoint,
            ssl=context,
            open_timeout=s.open_timeout_seconds,
            ping_interval=s.ping_interval_seconds,
            ping_timeout=s.ping_timeout_seconds,
            close_timeout=s.close_timeout_seconds,
            max_size=s.max_message_bytes,
            user_agent_header=f"cephalo-agent/{agent_version()}",
        ) as ws:
            self._verify_peer(ws)
            log.info("connected to %s", self.endpoint)
            self._verified_at = asyncio.get_running_loop().time()
            self.connected.set()
            try:
                await self._serve(ws)
            finally:
                self.connected.clear()
        detail = f"{ws.close_code}: {ws.close_reason}" if ws.close_reason else f"{ws.close_code}"
        return f"the server closed the connection (code {detail})"

    async def aclose(self) -> None:
        """Cancel requests still being handled; scripts they started keep running, journaled."""
        tasks = list(self._in_flight)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._abort_streams()

    async def _maybe_introduce(self) -> None:
        """Ask the server to record a pending registration for this certificate (rate-limited)."""
        if self.introduce is None:
            return
        now = asyncio.get_running_loop().time()
        interval = self.settings.introduce_interval_seconds
        if self._introduced_at is not None and now - self._introduced_at < interval:
            return
        self._introduced_at = now
        try:
            await self.introduce()
        except Exception as exc:  # noqa: BLE001 - best effort; the connection is retried anyway
            log.warning("could not ask the server to record a pending registration: %s", exc)
        else:
            log.warning(
                "the server does not trust this agent (thumbprint %s); it now lists a pending "
                "registration an operator can approve",
                self.agent_thumbprint,
            )

    def _verify_peer(self, ws: ClientConnection) -> None:
        ssl_object = ws.transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        actual = der_thumbprint(der) if der else "none"
        if not thumbprints_equal(actual, self.server_thumbprint):
            raise UntrustedServer(
                f"{UNTRUSTED_SERVER} (pinned {self.server_thumbprint}, server presented {actual})"
            )

    async def _serve(self, ws: ClientConnection) -> None:
        send_lock = asyncio.Lock()
        slots = asyncio.Semaphore(self.settings.max_concurrent_requests)
        try:
            async for frame in ws:
                if isinstance(frame, bytes):
                    self._on_stream_frame(frame)
                    continue
                task = asyncio.create_task(self._respond(ws, frame, send_lock, slots))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
        finally:
            self._abort_streams()

    def _on_stream_frame(self, frame: bytes) -> None:
        """`<16-byte stream id><chunk>`; an empty chunk ends the stream. Frames arrive in order,
        before the `upload_file` request that names the stream."""
        if self.streams is None or len(frame) < STREAM_ID_BYTES:
            log.warning("dropped a binary frame: no file transfer here, or no stream id")
            return
        key, chunk = frame[:STREAM_ID_BYTES], frame[STREAM_ID_BYTES:]
        sink = self._incoming.get(key)
        try:
            if sink is None:
                sink = self._incoming[key] = self.streams.open_incoming(key.hex())
            if chunk:
                sink.write(chunk)
            else:
                del self._incoming[key]
                sink.finish()
        except (OSError, ValueError) as exc:
            log.warning("dropped stream %s: %s", key.hex(), exc)
            self._incoming.pop(key, None)
            if sink is not None:
                sink.abort()

    def _abort_streams(self) -> None:
        for sink in self._incoming.values():
            sink.abort()
        self._incoming.clear()

    async def _respond(
        self,
        ws: ClientConnection,
        frame: str | bytes,
        send_lock: asyncio.Lock,
        slots: asyncio.Semaphore,
    ) -> None:
        async with slots:
            response = await self.service.handle_text(frame)
        if response is None:
            return
        try:
            async with send_lock:
                await self._send_stream_of(ws, response.result)
                await ws.send(response.model_dump_json())
        except ConnectionClosed:
            # The work is journaled; the server retries the call on its next connection.
            log.info("connection closed before the response to %s was sent", response.id)

    async def _send_stream_of(self, ws: ClientConnection, result: dict[str, object] | None) -> None:
        """A `download_file` result announces a stream: its frames go out before the response."""
        stream = (result or {}).get("stream")
        if self.streams is None or not isinstance(stream, dict):
            return
        source = self.streams.take_outgoing(str(stream.get("id")))
        if source is None:
            return
        key = bytes.fromhex(str(stream["id"]))
        with source.open("rb") as handle:
            while chunk := await asyncio.to_thread(handle.read, STREAM_CHUNK_BYTES):
                await ws.send(key + chunk)
        await ws.send(key)


def refused_by_server(exc: BaseException) -> bool:
    """The handshake failed in a way that means "the server does not trust our certificate"."""
    if isinstance(exc, UntrustedServer | ssl.SSLCertVerificationError):
        return False  # we refused the server, not the other way round
    return isinstance(exc, InvalidMessage | ssl.SSLError)


def describe_failure(exc: BaseException, agent_thumbprint: str) -> tuple[str, int]:
    """A log line an operator can act on, and how loud it should be."""
    not_trusted = f"does the server trust this agent's certificate {agent_thumbprint}?"
    if isinstance(exc, UntrustedServer):
        return str(exc), logging.ERROR
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"{UNTRUSTED_SERVER} (TLS verification failed: {exc.verify_message})", logging.ERROR
    if isinstance(exc, ssl.SSLError):
        return f"TLS failure ({exc.reason or exc}); {not_trusted}", logging.ERROR
    if isinstance(exc, InvalidMessage):
        # With TLS 1.3 a server that rejects our certificate just drops the connection.
        return f"the server closed the connection during the handshake; {not_trusted}", (
            logging.ERROR
        )
    if isinstance(exc, InvalidStatus):
        return f"the server refused the connection (HTTP {exc.response.status_code})", logging.ERROR
    if isinstance(exc, ConnectionClosed):
        return f"lost the connection ({exc})", logging.WARNING
    if isinstance(exc, WebSocketException | OSError | EOFError | TimeoutError):
        return f"cannot reach the server ({type(exc).__name__}: {exc})", logging.WARNING
    log.error("unexpected polling failure", exc_info=exc)
    return f"unexpected failure ({type(exc).__name__}: {exc})", logging.ERROR
