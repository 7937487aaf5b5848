"""The lean upstream exchange (`upstream/streaming.py`) on uvloop, the loop production runs
(the other tests run on the standard asyncio loop): uvloop calls back in its own order, so
the exchange is checked on it against a small real HTTP server on loopback.

Each case is a sync test that runs its own `uvloop.run`, bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import uvloop

from cephalo_common.errors import Unavailable
from cephalo_gateway.upstream import streaming

BODY = os.urandom(3 * 1024 * 1024 + 7)
CASE_SECONDS = 20.0

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def content_length_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_head(reader)
    writer.write(b'HTTP/1.1 200 OK\r\ncontent-length: %d\r\netag: "x"\r\n\r\n' % len(BODY))
    for start in range(0, len(BODY), 100_000):
        writer.write(BODY[start : start + 100_000])
        await writer.drain()


async def chunked_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    for start in range(0, len(BODY), 200_000):
        piece = BODY[start : start + 200_000]
        writer.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
        await writer.drain()
    writer.write(b"0\r\n\r\n")
    await writer.drain()


async def early_refusal(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads a little of the body, answers 413, then discards the rest (as uvicorn does on
    a kept-alive connection)."""
    await _read_head(reader)
    await reader.readexactly(100_000)
    writer.write(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 2\r\n\r\nno")
    await writer.drain()
    while await reader.read(65_536):
        pass


async def echo_length(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await _read_head(reader)
    assert b"transfer-encoding: chunked" in head
    received = 0
    while True:
        size = int((await reader.readline()).strip(), 16)
        if size == 0:
            await reader.readline()
            break
        received += len(await reader.readexactly(size))
        await reader.readline()
    answer = str(received).encode()
    writer.write(b"HTTP/1.1 201 Created\r\ncontent-length: %d\r\n\r\n" % len(answer) + answer)
    await writer.drain()


async def _pieces(total: int) -> AsyncIterator[bytes]:
    for start in range(0, total, 65_536):
        yield BODY[start : min(total, start + 65_536)]


async def _with_server(handler: Handler, exercise: Callable[[str], Awaitable[None]]) -> None:
    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(guarded, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        async with asyncio.timeout(CASE_SECONDS):
            await exercise(url)
    finally:
        server.close()


async def _download(url: str) -> bytes:
    answer = await streaming.exchange(
        url, "package-feed", "GET", "/content", headers=[], content=None, timeout=5
    )
    assert answer.status_code == 200
    return b"".join([chunk async for chunk in answer.aiter_raw()])


@pytest.mark.parametrize("handler", [content_length_answer, chunked_answer])
def test_a_download_arrives_whole_on_uvloop(handler: Handler) -> None:
    async def exercise(url: str) -> None:
        assert await _download(url) == BODY

    uvloop.run(_with_server(handler, exercise))


def test_an_early_refusal_is_the_answer_on_uvloop() -> None:
    async def exercise(url: str) -> None:
        answer = await streaming.exchange(
            url,
            "package-feed",
            "POST",
            "/packages",
            headers=[("content-length", str(len(BODY)))],
            content=_pieces(len(BODY)),
            timeout=5,
        )
        assert answer.status_code == 413
        assert b"".join([chunk async for chunk in answer.aiter_raw()]) == b"no"

    uvloop.run(_with_server(early_refusal, exercise))


def test_a_push_without_content_length_is_sent_chunked_on_uvloop() -> None:
    async def exercise(url: str) -> None:
        answer = await streaming.exchange(
            url, "package-feed", "POST", "/packages", headers=[], content=_pieces(1_000_000),
            timeout=5,
        )  # fmt: skip
        assert answer.status_code == 201
        assert b"".join([chunk async for chunk in answer.aiter_raw()]) == b"1000000"

    uvloop.run(_with_server(echo_length, exercise))


def test_an_answer_cut_short_is_unavailable_on_uvloop() -> None:
    async def short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\nonly this")
        await writer.drain()

    async def exercise(url: str) -> None:
        with pytest.raises(Unavailable):
            await _download(url)

    uvloop.run(_with_server(short, exercise))
