"""Hostile peers: each test asserts the outcome and that memory stays bounded
(the connection's own counters, or the RSS of a server process)."""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import zlib

import pytest

from tests.support import (
    OP_BINARY,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    ClosingRecorder,
    RawPeer,
    frame,
    until,
)
from websockets_lite import connect, memory_bound
from websockets_lite.flow import READ_CHUNK


class TestFloods:
    async def test_flood_while_the_handler_does_not_read(self, start_server):
        connections = []

        async def idle(ws):
            connections.append(ws)
            await ws.wait_closed()

        server = await start_server(idle, compression=None)
        raw = await RawPeer.connect(server.port)
        message = frame(OP_BINARY, os.urandom(32 * 1024))
        # Write without waiting: the flooder's own buffer grows while ours stays bounded.
        for _ in range(2000):
            raw.send(message)
            await asyncio.sleep(0)
            if connections and connections[0].stats.read_paused:
                break
        peer = connections[0]
        await until(lambda: peer.stats.read_paused)
        bound = memory_bound(1, 2**20, 2**16)
        # Keep flooding until the kernel's buffers are full and the flooder's
        # own buffer grows: our side must stay bounded all along.
        for _ in range(4000):
            raw.send(message)
            await asyncio.sleep(0)
            assert peer.stats.read_buffer_size <= 2 * 32 * 1024 + READ_CHUNK + 64 <= bound
            if raw.writer.transport.get_write_buffer_size() > 4 * len(message):
                break
        assert raw.writer.transport.get_write_buffer_size() > 0  # the flooder is blocked
        raw.abort()

    async def test_ping_flood_without_reading_pongs(self, start_server):
        # Our pong buffer is bounded (see test_backpressure); the flooder gets
        # at most write_limit + 16 KiB queued for it, whatever it sends.
        connections = []

        async def idle(ws):
            connections.append(ws)
            await ws.wait_closed()

        server = await start_server(idle, write_limit=8192)
        raw = await RawPeer.connect(server.port)
        raw.writer.transport.pause_reading()
        ping = frame(OP_PING, b"p" * 125)
        await until(lambda: connections)
        peer = connections[0]
        for _ in range(3000):
            raw.send(ping * 64)
            await asyncio.sleep(0)
            assert peer.stats.write_buffer_size <= 8192 + 16 * 1024 + 256
        raw.abort()


class TestMalformedFrames:
    async def test_length_header_of_2_to_the_63(self, start_server):
        handler = ClosingRecorder()
        server = await start_server(handler)
        raw = await RawPeer.connect(server.port)
        raw.send(b"\x82\xff" + (2**63).to_bytes(8, "big") + b"mask")
        assert (await raw.read_close())[0] == 1002
        assert (await handler.error()).sent.code == 1002
        raw.abort()

    async def test_huge_declared_frame_is_refused_as_it_arrives(self, start_server):
        handler = ClosingRecorder()
        server = await start_server(handler, max_message_size=2**16)
        raw = await RawPeer.connect(server.port)
        raw.send(frame(OP_BINARY, os.urandom(2**17), length=2**40))
        assert (await raw.read_close())[0] == 1009
        peer = handler.connections[0]
        assert peer.stats.read_buffer_size <= 2**16 + READ_CHUNK
        raw.abort()

    async def test_frame_that_never_completes_is_dropped_by_keepalive(self, start_server):
        handler = ClosingRecorder()
        server = await start_server(handler, ping_interval=0.05, ping_timeout=0.05)
        raw = await RawPeer.connect(server.port)
        raw.send(frame(OP_TEXT, b"x" * 100, length=1000))  # 900 bytes never come
        error = await handler.error()
        assert error.sent.code == 1011 and "keepalive" in error.sent.reason
        assert handler.connections[0].stats.read_buffer_size <= 100
        raw.abort()

    async def test_thousands_of_tiny_fragments(self, start_server):
        handler = ClosingRecorder()
        server = await start_server(handler)  # max_fragments: 4096
        raw = await RawPeer.connect(server.port)
        raw.send(frame(OP_TEXT, b"a", fin=False) + frame(OP_CONT, b"b", fin=False) * 10_000)
        assert (await raw.read_close())[0] == 1009
        assert "4096 fragments" in (await handler.error()).sent.reason
        raw.abort()

    async def test_decompression_bomb(self, start_server):
        handler = ClosingRecorder()
        server = await start_server(handler)
        raw, _ = await RawPeer.connect_with(
            server.port, b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
        )
        compressor = zlib.compressobj(9, zlib.DEFLATED, -12)
        zeros = bytes(2**20)
        bomb = b"".join(compressor.compress(zeros) for _ in range(64))
        bomb = (bomb + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]  # 64 MiB inflated
        raw.send(frame(OP_BINARY, bomb, rsv=4))
        assert (await raw.read_close())[0] == 1009
        assert (await handler.error()).sent.code == 1009
        assert handler.connections[0].stats.read_buffer_size <= READ_CHUNK
        raw.abort()


class TestHandshakeAbuse:
    async def test_slowloris_is_dropped_at_connect_timeout(self, start_server):
        calls = []
        server = await start_server(lambda ws: calls.append(ws), connect_timeout=0.3)
        raw = await RawPeer.connect(server.port, handshake=False)
        loop = asyncio.get_running_loop()
        start = loop.time()
        request = RawPeer.request()
        dropped = False
        for byte in request:  # one byte every 50 ms: never finishes in time
            try:
                raw.send(bytes([byte]))
                await asyncio.sleep(0.05)
            except ConnectionError:
                break
            if raw.reader.at_eof():
                dropped = True
                break
            if loop.time() - start > 2:
                break
        assert await asyncio.wait_for(raw.at_eof(), 2)
        assert dropped or loop.time() - start < 2
        assert calls == []
        raw.abort()

    async def test_oversized_headers_get_431(self, start_server):
        server = await start_server(lambda ws: ws.close())
        raw = await RawPeer.connect(server.port, handshake=False)
        raw.send(b"GET / HTTP/1.1\r\nHost: x\r\nCookie: " + b"a" * 20_000 + b"\r\n\r\n")
        assert (await raw.reader.read(12)) == b"HTTP/1.1 431"
        assert await raw.at_eof()

    async def test_many_headers_of_normal_size_get_431_too(self, start_server):
        server = await start_server(lambda ws: ws.close())
        raw = await RawPeer.connect(server.port, handshake=False)
        raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 5000 + b"\r\n")
        assert (await raw.reader.read(12)) == b"HTTP/1.1 431"

    async def test_garbage_gets_400(self, start_server):
        server = await start_server(lambda ws: ws.close())
        raw = await RawPeer.connect(server.port, handshake=False)
        raw.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64))  # TLS on ws://
        data = await raw.reader.read(12)
        assert data == b"HTTP/1.1 400"


class TestHalfOpenPeer:
    async def test_closed_at_ping_interval_plus_ping_timeout_with_1011(self, start_server):
        handler = ClosingRecorder()
        server = await start_server(handler, ping_interval=0.1, ping_timeout=0.1)
        raw = await RawPeer.connect(server.port)
        raw.writer.transport.pause_reading()  # it stops answering entirely
        loop = asyncio.get_running_loop()
        start = loop.time()
        error = await handler.error()
        assert loop.time() - start < 0.1 + 0.1 + 0.3
        assert error.sent.code == 1011 and error.sent.reason == "keepalive ping timeout"
        raw.abort()


SERVER = r"""
import asyncio, sys
from websockets_lite import serve

async def echo(ws):
    async for message in ws:
        await ws.send(message)

async def main():
    async with serve(echo, "127.0.0.1", 0, compression=None, backlog=2048) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

asyncio.run(main())
"""


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


@pytest.mark.timeout(120)
async def test_a_thousand_concurrent_connections():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 2500:
        pytest.skip(f"needs 2,500 file descriptors, the limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2500), hard))
    process = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE)
    try:
        port = int(process.stdout.readline())
        uri = f"ws://127.0.0.1:{port}/"
        async with connect(uri, compression=None) as warm:
            await warm.send("warm up")
            await warm.recv()
        before = rss_kib(process.pid)
        clients = []
        for _ in range(10):
            clients += await asyncio.gather(
                *(connect(uri, compression=None, ping_interval=None) for _ in range(100))
            )
        for ws in clients:
            await ws.send(f"hello {id(ws)}")
        for ws in clients:
            assert await ws.recv() == f"hello {id(ws)}"
        per_connection = (rss_kib(process.pid) - before) / 1000
        # The docs say about 7 KiB (bench/run.py, idle-mem); fail well before a leak.
        assert per_connection < 40, f"{per_connection:.1f} KiB per idle connection"
        await asyncio.gather(*(ws.close() for ws in clients))
    finally:
        process.kill()
        process.wait()
