"""Listening mode: the agent serves HTTPS (mutual TLS) and agent-gateway dials it for each RPC.

The server stays the RPC client: it POSTs one `RequestMessage` (JSON) to `/rpc` and reads the
`ResponseMessage` back. File streams travel beside the JSON: `PUT /streams/<id>` uploads a
stream before `upload_file` names it; `GET /streams/<id>` fetches the one `download_file`
announced. Nothing else is served.

Trust is pinned: the TLS context trusts exactly the server certificate saved at registration
(TLS 1.2+, a client certificate is required), and after the handshake the peer's SHA-256
thumbprint must also equal the pinned one; any other peer is dropped before it can send a
byte of HTTP. A connection cap bounds what one peer can hold open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from dataclasses import dataclass
from pathlib import Path

import h11

from cephalo_agent import agent_version
from cephalo_agent.files import StreamStore, StreamTooLarge
from cephalo_agent.service import AgentService
from cephalo_common.agent_protocol import LISTENING_PATH
from cephalo_common.security.tls import der_thumbprint, server_context, thumbprints_equal

log = logging.getLogger(__name__)

UNTRUSTED_CLIENT = "refused a connection from a server whose thumbprint is not the pinned one"
_STREAM_PATH = re.compile(r"^/streams/([0-9a-f]{32})$")
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class ListeningSettings:
    """Limits and timeouts of the listening port, with production defaults."""

    max_connections: int = 32
    handshake_timeout_seconds: float = 10.0
    # Reading one request (headers and body) may take this long once it has begun.
    request_timeout_seconds: float = 60.0
    # An idle keep-alive connection is closed after this long (the server's pool expires first).
    idle_timeout_seconds: float = 75.0
    max_request_bytes: int = 16 * 1024 * 1024
    max_header_bytes: int = 16 * 1024
    # How long a closing connection waits for the peer's TLS close_notify.
    shutdown_timeout_seconds: float = 5.0


class _Refused(Exception):
    """Answer with this status and close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ListeningServer:
    """One agent's HTTPS listener; `start()`, then `serve_forever()` or `aclose()`."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        certificate: Path,
        private_key: Path,
        server_certificate_pem: str,
        server_thumbprint: str,
        service: AgentService,
        streams: StreamStore | None = None,
        settings: ListeningSettings | None = None,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.certificate = certificate
        self.private_key = private_key
        self.server_certificate_pem = server_certificate_pem
        self.server_thumbprint = server_thumbprint
        self.service = service
        self.streams = streams
        self.settings = settings or ListeningSettings()
        self.open_connections = 0
        self.refused_connections = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        if self._server is None or not self._server.sockets:
            return self.requested_port
        return int(self._server.sockets[0].getsockname()[1])

    def context(self) -> ssl.SSLContext:
        return server_context(self.certificate, self.private_key, [self.server_certificate_pem])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept,
            self.host,
            self.requested_port,
            ssl=self.context(),
            ssl_handshake_timeout=self.settings.handshake_timeout_seconds,
            ssl_shutdown_timeout=self.settings.shutdown_timeout_seconds,
            limit=self.settings.max_header_bytes * 4,
        )
        log.info("listening on https://%s:%d", self.host, self.port)

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def aclose(self) -> None:
        """Stop listening and drop every connection at once (no TLS goodbye)."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = list(self._handlers)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self._writers.add(writer)
        try:
            if self.open_connections >= self.settings.max_connections:
                self.refused_connections += 1
                log.warning("refused a connection: %d already open", self.open_connections)
                return
            self.open_connections += 1
            try:
                if self._peer_is_pinned(writer):
                    await self._serve(reader, writer)
            finally:
                self.open_connections -= 1
        except (ConnectionError, ssl.SSLError, TimeoutError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Only `aclose` cancels a handler; asyncio's server would report a cancelled
            # handler as an unhandled error, so it ends quietly instead.
            pass
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), self.settings.shutdown_timeout_seconds)

    def _peer_is_pinned(self, writer: asyncio.StreamWriter) -> bool:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        actual = der_thumbprint(der) if der else "none"
        if thumbprints_equal(actual, self.server_thumbprint):
            return True
        log.error("%s (pinned %s, got %s)", UNTRUSTED_CLIENT, self.server_thumbprint, actual)
        return False

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """HTTP/1.1 with keep-alive, one request at a time per connection."""
        connection = h11.Connection(
            h11.SERVER, max_incomplete_event_size=self.settings.max_header_bytes
        )
        while True:
            try:
                event = await self._next(connection, reader, self.settings.idle_timeout_seconds)
                if not isinstance(event, h11.Request):
                    return
                async with asyncio.timeout(self.settings.request_timeout_seconds):
                    await self._route(connection, reader, writer, event)
            except _Refused as refused:
                await self._refuse(connection, writer, refused)
                return
            except h11.RemoteProtocolError as error:
                await self._refuse(connection, writer, _Refused(400, str(error)))
                return
            if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                return
            connection.start_next_cycle()

    async def _route(
        self,
        connection: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request: h11.Request,
    ) -> None:
        method, target = request.method.decode(), request.target.decode().split("?", 1)[0]
        stream = _STREAM_PATH.match(target)
        if method == "POST" and target == LISTENING_PATH:
            body = await self._read_body(connection, reader, self.settings.max_request_bytes)
            response = await self.service.handle_text(body)
            payload = b"" if response is None else response.model_dump_json().encode()
            status = 200 if response is not None else 400
            await self._send(connection, writer, status, payload, "application/json")
        elif method == "PUT" and stream is not None and self.streams is not None:
            await self._receive_stream(connection, reader, writer, stream.group(1))
        elif method == "GET" and stream is not None and self.streams is not None:
            await self._discard_body(connection, reader)
            await self._send_stream(connection, writer, stream.group(1))
        elif method == "GET" and target == "/":
            await self._discard_body(connection, reader)
            hello = f"Cephalo agent {agent_version()}: listening for its server.\n".encode()
            await self._send(connection, writer, 200, hello, "text/plain")
        else:
            raise _Refused(404, "not found")

    async def _receive_stream(
        self,
        connection: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        stream_id: str,
    ) -> None:
        assert self.streams is not None
        sink = self.streams.open_incoming(stream_id)
        try:
            while True:
                event = await self._next(connection, reader, self.settings.request_timeout_seconds)
                if isinstance(event, h11.Data):
                    sink.write(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    break
                else:
                    raise _Refused(400, "the stream ended early")
            sink.finish()
        except StreamTooLarge as error:
            sink.abort()
            raise _Refused(413, str(error)) from error
        except BaseException:
            sink.abort()
            raise
        await self._send(connection, writer, 204, b"", "text/plain")

    async def _send_stream(
        self, connection: h11.Connection, writer: asyncio.StreamWriter, stream_id: str
    ) -> None:
        assert self.streams is not None
        source = self.streams.take_outgoing(stream_id)
        if source is None:
            raise _Refused(404, "no such stream")
        headers = [
            (b"content-type", b"application/octet-stream"),
            (b"content-length", str(source.stat().st_size).encode()),
        ]
        writer.write(connection.send(h11.Response(status_code=200, headers=headers)))
        with source.open("rb") as handle:
            while chunk := await asyncio.to_thread(handle.read, _CHUNK):
                writer.write(connection.send(h11.Data(data=chunk)))
                await writer.drain()
        writer.write(connection.send(h11.EndOfMessage()))
        await writer.drain()

    async def _read_body(
        self, connection: h11.Connection, reader: asyncio.StreamReader, limit: int
    ) -> bytes:
        body = bytearray()
        while True:
            event = await self._next(connection, reader, self.settings.request_timeout_seconds)
            if isinstance(event, h11.Data):
                body += event.data
                if len(body) > limit:
                    raise _Refused(413, f"a request body is at most {limit} bytes")
            elif isinstance(event, h11.EndOfMessage):
                return bytes(body)
            else:
                raise _Refused(400, "the request ended early")

    async def _discard_body(self, connection: h11.Connection, reader: asyncio.StreamReader) -> None:
        await self._read_body(connection, reader, self.settings.max_header_bytes)

    async def _next(
        self, connection: h11.Connection, reader: asyncio.StreamReader, timeout: float
    ) -> h11.Event | type[h11.PAUSED] | type[h11.NEED_DATA]:
        while True:
            event = connection.next_event()
            if event is not h11.NEED_DATA:
                return event
            async with asyncio.timeout(timeout):
                data = await reader.read(_CHUNK)
            connection.receive_data(data)

    async def _send(
        self,
        connection: h11.Connection,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        content_type: str,
    ) -> None:
        headers = [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        writer.write(connection.send(h11.Response(status_code=status, headers=headers)))
        if body:
            writer.write(connection.send(h11.Data(data=body)))
        writer.write(connection.send(h11.EndOfMessage()))
        await writer.drain()

    async def _refuse(
        self, connection: h11.Connection, writer: asyncio.StreamWriter, refused: _Refused
    ) -> None:
        if connection.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = f"{refused}\n".encode()
        headers = [
            (b"content-type", b"text/plain"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        with contextlib.suppress(h11.LocalProtocolError, ConnectionError):
            writer.write(connection.send(h11.Response(status_code=refused.status, headers=headers)))
            writer.write(connection.send(h11.Data(data=body)))
            writer.write(connection.send(h11.EndOfMessage()))
            await writer.drain()
