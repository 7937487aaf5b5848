"""A lean HTTP/1.1 exchange with package-feed for the two bulk routes: package pushes and
package content downloads.

httpx (httpcore and h11, pure Python) costs the gateway about as much CPU per proxied GiB
as the kernel's socket copies do: every 256 KiB read is parsed by h11, copied into and out
of its receive buffer, and wrapped in a cancel scope. Here the response head is parsed by
httptools (C), and a `Content-Length` body is then handed on exactly as the event loop
received it, with no parsing and no copy. One connection per transfer, closed by the
gateway once the answer is read (a connect on the internal network is nothing next to a
package). The request does not say `Connection: close`: package-feed refuses an oversize
push before its whole body, and a server that closes a connection with unread bytes resets
it, losing its own answer; on a kept-alive connection uvicorn discards the rest instead.

Semantics match `UpstreamClient.open`: the upstream timeout bounds the connect and each
read or write (not the whole transfer), timeouts are 504s, anything else on the wire is a
503; a client that disconnects while sending a body aborts the upstream connection (so
package-feed discards its temporary file) and `ClientDisconnect` propagates. Memory stays
bounded both ways: reading pauses while `HIGH_WATER` bytes wait for the client, and
writing waits while the transport's buffer is full.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Sequence
from typing import cast
from urllib.parse import urlsplit

import httptools
import httpx

from cephalo_common.errors import Unavailable
from cephalo_common.logging import get_logger
from cephalo_gateway.domain.headers import Header
from cephalo_gateway.errors import GatewayTimeout

log = get_logger(__name__)
HIGH_WATER = 1024 * 1024
"""Bytes read from the upstream and not yet taken by the client before reading pauses."""
LOW_WATER = HIGH_WATER // 4
WRITE_HIGH_WATER = 1024 * 1024
NO_BODY_STATUSES = frozenset({204, 304})


class UpstreamGone(Exception):
    """The upstream closed or broke the connection, or answered something unparsable."""


class _Exchange(asyncio.Protocol):
    """One request/response on one connection: parses the head, queues the body."""

    def __init__(self, *, head_only: bool) -> None:
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpResponseParser(self)
        self._head_only = head_only
        self._header_list: list[tuple[bytes, bytes]] = []
        self._length: int | None = None
        self._direct = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._reading_paused = False
        self._writing_paused = False
        self._wakeup: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self.transport: asyncio.Transport | None = None
        self.status = 0
        self.answered = False
        self.complete = False
        self.error: BaseException | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Called by `exchange` too: uvloop may schedule it after `create_connection`
        returns."""
        if self.transport is transport:
            return
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)

    def data_received(self, data: bytes) -> None:
        if self.complete:
            return
        if self._direct:
            self._take_body(data)
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(UpstreamGone(f"unparsable answer: {error}"))

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.complete and self.answered and self._length is None and not self._direct:
            with contextlib.suppress(httptools.HttpParserError):
                self._parser.feed_data(b"")
        if not self.complete:
            self._fail(UpstreamGone(f"the connection closed early ({exc!r})"))
        self._wake()
        self._resume_writers()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._resume_writers()

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_list.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self.answered = True
        if self._head_only or self.status in NO_BODY_STATUSES or self.status < 200:
            self._finish()
            return
        for name, value in self._header_list:
            lowered = name.lower()
            if lowered == b"content-length" and value.strip().isdigit():
                self._length = int(value)
            elif lowered == b"transfer-encoding":
                self._length = None
                break
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._length is not None:
            self._length -= len(body)
        self._queue(body)

    def on_message_complete(self) -> None:
        if self._length is not None:
            self._length = 0
        self._finish()

    # internals

    def _take_body(self, data: bytes) -> None:
        """Past the head of a `Content-Length` answer: the bytes as they came."""
        assert self._length is not None
        if len(data) > self._length:
            data = data[: self._length]
        self._length -= len(data)
        self._queue(data)
        if self._length == 0:
            self._finish()

    def _queue(self, data: bytes) -> None:
        if self.complete or not data:
            return
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def _finish(self) -> None:
        self.complete = True
        self._wake()

    def _fail(self, error: BaseException) -> None:
        if self.error is None and not self.complete:
            self.error = error
        self._wake()

    def _wake(self) -> None:
        waiter, self._wakeup = self._wakeup, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _resume_writers(self) -> None:
        waiter, self._drained = self._drained, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def after_head(self) -> None:
        """From here on a `Content-Length` body skips the parser."""
        if self._length is not None and not self.complete:
            self._direct = True
            if self._length <= 0:
                self._finish()

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return self._header_list

    async def wait(self) -> None:
        """Until something changes (a chunk, the head, the end, an error)."""
        self._wakeup = self._loop.create_future()
        await self._wakeup

    async def drain(self) -> None:
        if self.transport is None or self.transport.is_closing():
            raise UpstreamGone("the connection is closed")
        if self._writing_paused:
            self._drained = self._loop.create_future()
            await self._drained

    def next_chunk(self) -> bytes | None:
        if not self._chunks:
            return None
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._reading_paused and self._buffered < LOW_WATER and self.transport:
            self._reading_paused = False
            self.transport.resume_reading()
        return chunk

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class StreamedAnswer:
    """The upstream's answer, read like the `httpx.Response` `forward` gets elsewhere."""

    def __init__(self, exchange: _Exchange, timeout: float, upstream: str) -> None:
        self._exchange = exchange
        self._timeout = timeout
        self._upstream = upstream
        self.status_code = exchange.status
        self.headers = httpx.Headers(exchange.headers)

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        exchange = self._exchange
        try:
            while True:
                chunk = exchange.next_chunk()
                if chunk is not None:
                    yield chunk
                    continue
                if exchange.complete:
                    return
                with _translated(self._upstream, self._timeout):
                    if exchange.error is not None:
                        raise exchange.error
                    async with asyncio.timeout(self._timeout):
                        await exchange.wait()
        finally:
            await self.aclose()

    aiter_bytes = aiter_raw

    async def aclose(self) -> None:
        """Complete or not, the connection is not reused."""
        if self._exchange.complete and self._exchange.transport is not None:
            self._exchange.transport.close()
        else:
            self._exchange.abort()


@contextlib.contextmanager
def _translated(upstream: str, timeout: float) -> Iterator[None]:
    try:
        yield
    except TimeoutError as error:
        log.warning("upstream timed out", upstream=upstream)
        raise GatewayTimeout(f"{upstream} did not answer within {timeout:g} seconds") from error
    except (OSError, UpstreamGone) as error:
        log.warning("upstream unavailable", upstream=upstream, error=repr(error))
        raise Unavailable(f"{upstream} is unavailable") from error


def supports(base_url: str) -> bool:
    """Plain HTTP only; an https upstream goes through httpx."""
    parts = urlsplit(base_url)
    return parts.scheme == "http" and parts.hostname is not None


def _request_head(
    method: str, target: str, host: str, headers: Sequence[Header], chunked: bool
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers if name.lower() != "host"]
    if any(character in line for line in lines for character in "\r\n"):
        raise ValueError("a header line may not contain CR or LF")
    if chunked:
        lines.append("transfer-encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _send_body(
    exchange: _Exchange, content: AsyncIterable[bytes], chunked: bool, timeout: float
) -> None:
    """Each write may wait `timeout` for the upstream to take it. Sending stops when the
    upstream has already answered, and a connection it broke after answering is that
    answer (package-feed refusing an oversize push before the whole body)."""
    transport = exchange.transport
    assert transport is not None
    try:
        async for chunk in content:
            if exchange.answered or exchange.error is not None:
                return
            if not chunk:
                continue
            if chunked:
                transport.writelines([b"%x\r\n" % len(chunk), chunk, b"\r\n"])
            else:
                transport.write(chunk)
            async with asyncio.timeout(timeout):
                await exchange.drain()
        if chunked and not exchange.answered:
            transport.write(b"0\r\n\r\n")
    except UpstreamGone:
        if not exchange.answered:
            raise


async def exchange(
    base_url: str,
    upstream: str,
    method: str,
    target: str,
    *,
    headers: Sequence[Header],
    content: AsyncIterable[bytes] | None,
    timeout: float,
) -> StreamedAnswer:
    """Send one request (streaming `content`) and return once the answer's head is in."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    loop = asyncio.get_running_loop()
    protocol = _Exchange(head_only=method == "HEAD")
    with _translated(upstream, timeout):
        async with asyncio.timeout(timeout):
            transport, _ = await loop.create_connection(lambda: protocol, host, port)
    if protocol.transport is None:
        protocol.connection_made(transport)
    declared = any(name.lower() == "content-length" for name, _ in headers)
    chunked = content is not None and not declared
    assert protocol.transport is not None
    try:
        protocol.transport.write(_request_head(method, target, parts.netloc, headers, chunked))
        with _translated(upstream, timeout):
            if content is not None:
                await _send_body(protocol, content, chunked, timeout)
            while not protocol.answered:
                if protocol.error is not None:
                    raise protocol.error
                async with asyncio.timeout(timeout):
                    await protocol.wait()
    except BaseException:
        protocol.abort()
        raise
    protocol.after_head()
    return StreamedAnswer(protocol, timeout, upstream)
