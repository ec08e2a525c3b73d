"""Flow control in both directions, over real loopback sockets: the memory
of a connection stays bounded whatever the peer does."""

from __future__ import annotations

import asyncio
import math
import os
import socket

import pytest

from tests.support import OP_PING, ClosingRecorder, RawPeer, frame, spin, until
from websockets_lite import ConnectionClosedError, connect, memory_bound
from websockets_lite.flow import READ_CHUNK
from websockets_lite.protocol import MAX_PONG_BYTES


class Holder:
    """A handler that keeps its connection without reading until released."""

    def __init__(self) -> None:
        self.connections: list = []
        self.release = asyncio.Event()

    async def __call__(self, ws) -> None:
        self.connections.append(ws)
        released = asyncio.ensure_future(self.release.wait())
        closed = asyncio.ensure_future(ws.wait_closed())
        await asyncio.wait([released, closed], return_when=asyncio.FIRST_COMPLETED)
        released.cancel()
        await ws.wait_closed()

    async def first(self):
        await until(lambda: self.connections)
        return self.connections[0]


class TestReadBackpressure:
    async def test_flooding_client_blocks_in_send_and_server_memory_stays_bounded(
        self, start_server
    ):
        holder = Holder()
        server = await start_server(holder)  # defaults: queue 1, 1 MiB, 64 KiB
        message = os.urandom(65536)
        sent = 0
        async with connect(server.uri, disconnect_timeout=0.1) as ws:

            async def flood():
                nonlocal sent
                while True:
                    await ws.send(message)
                    sent += 1

            task = asyncio.create_task(flood())
            # TCP backpressure end to end: the client ends up waiting in send().
            await until(lambda: ws._write_flow.waiters, timeout=10)
            assert ws.stats.write_buffer_size > ws.write_limit
            peer = await holder.first()
            # Reading stops once the look-ahead holds its 256 KiB.
            await until(lambda: peer.stats.read_paused and peer._blind)
            stats = peer.stats
            assert stats.queued_messages == 2  # queue of 1, plus the one that overflowed it
            assert stats.read_buffer_size <= memory_bound(1, 2**20, 2**16)
            assert stats.read_buffer_size <= 2 * len(message) + READ_CHUNK + 64
            # Nothing moves while nobody reads.
            before = sent
            await spin(200)
            assert sent == before and not task.done()
            # Reading resumes the flow, and every message arrives whole, in order.
            received = 0
            while sent == before:
                assert await peer.recv() == message
                received += 1
                assert peer.stats.read_buffer_size <= 2 * len(message) + READ_CHUNK + 64
            assert received > 0
            task.cancel()

    @pytest.mark.parametrize("size", [0, 1, 4, math.inf])
    async def test_queue_size_modes(self, start_server, size):
        holder = Holder()
        server = await start_server(holder, message_queue_size=size)
        count = 12
        async with connect(server.uri) as ws:
            for i in range(count):
                await ws.send(f"message {i}")
            peer = await holder.first()
            if size == math.inf:
                await until(lambda: peer.stats.queued_messages == count)
                assert not peer.stats.read_paused
            else:
                await until(lambda: peer.stats.read_paused)
                await spin()
                # 0 is a hand-off: one message waits and reading is paused.
                assert peer.stats.queued_messages == size + 1
            for i in range(count):
                assert await peer.recv() == f"message {i}"
                if size != math.inf:
                    assert peer.stats.queued_messages <= size + 1
            await until(lambda: peer.stats.bytes_in and not peer.stats.read_paused)
            assert peer.stats.read_paused_seconds > 0 or size == math.inf
            holder.release.set()

    async def test_reading_resumes_only_when_nothing_is_stalled(self, start_server):
        holder = Holder()
        server = await start_server(holder, message_queue_size=1)
        async with connect(server.uri) as ws:
            for i in range(5):
                await ws.send(str(i))
            peer = await holder.first()
            await until(lambda: peer.stats.queued_messages == 2)
            for i in range(3):
                assert await peer.recv() == str(i)
                # Taking one message lets the parser refill the queue at once.
                await until(lambda: peer.stats.queued_messages == 2)
                assert peer.stats.read_paused
            assert [await peer.recv(), await peer.recv()] == ["3", "4"]
            assert not peer.stats.read_paused
            holder.release.set()

    @pytest.mark.parametrize(
        "message",
        ["é" * 600, b"x" * 1025, ["é" * 100] * 6, [b"x" * 200] * 6],
        ids=["text", "binary", "fragmented-text", "fragmented-binary"],
    )
    async def test_oversized_messages_close_with_1009(self, start_server, message):
        handler = ClosingRecorder()

        server = await start_server(handler, max_message_size=1024)
        async with connect(server.uri) as ws:
            await ws.send(message)
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
        assert info.value.code == 1009
        await handler.error()
        assert handler.errors[0].sent.code == 1009
        assert "1024" in handler.errors[0].sent.reason

    @pytest.mark.parametrize("compression", ["deflate", None])
    async def test_client_side_limit(self, start_server, compression):
        async def handler(ws):
            await ws.send(b"x" * 2000)
            await ws.wait_closed()

        server = await start_server(handler, compression=compression)
        async with connect(server.uri, max_message_size=1000) as ws:
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
        assert info.value.sent.code == 1009
        if compression is None:  # a clean closing handshake follows
            assert info.value.code == 1009
        else:  # inflating past the limit fails the connection at once
            assert "once decompressed" in info.value.sent.reason

    async def test_too_many_fragments_close_with_1009(self, start_server):
        server = await start_server(Holder(), max_fragments=100)
        async with connect(server.uri) as ws:
            await ws.send([b"x"] * 101)
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
        assert info.value.code == 1009


class TestWriteBackpressure:
    async def test_send_waits_above_write_limit_and_resumes(self, start_server):
        holder = Holder()
        server = await start_server(holder, message_queue_size=0, max_message_size=2**23)
        async with connect(server.uri, write_limit=2**14, disconnect_timeout=0.1) as ws:
            payload = os.urandom(2**22)  # 4 MiB that compression cannot shrink
            sending = asyncio.create_task(ws.send(payload))
            await until(lambda: ws._write_flow.waiters)
            assert not sending.done()
            peer = await holder.first()
            assert await peer.recv() == payload
            await sending
            assert not ws._write_flow.paused or ws.stats.write_buffer_size > 2**14

    async def test_sender_blocked_on_a_vanished_peer_gets_connection_closed(self, start_server):
        holder = Holder()
        server = await start_server(holder)
        async with connect(server.uri) as ws:

            async def flood():
                while True:
                    await ws.send(os.urandom(65536))

            task = asyncio.create_task(flood())
            await until(lambda: ws._write_flow.waiters, timeout=10)
            (await holder.first()).abort()  # the peer vanishes (RST)
            with pytest.raises(ConnectionClosedError):
                await asyncio.wait_for(task, 5)
        assert ws.close_code == 1006

    async def test_ping_flood_from_a_peer_that_never_reads_stays_bounded(self, start_server):
        holder = Holder()
        server = await start_server(holder, ping_interval=None, write_limit=2**14)
        raw = await RawPeer.connect(server.port)
        raw.writer.transport.pause_reading()  # never read the pongs
        peer = await holder.first()
        # Small kernel buffers, so that the pongs back up into our buffer soon.
        raw.writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        peer.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, 4096
        )
        ping = frame(OP_PING, b"p" * 125)
        for _ in range(2000):
            raw.send(ping * 100)
            await asyncio.sleep(0)
            assert peer.stats.write_buffer_size <= 2**14 + MAX_PONG_BYTES + 256
            if peer._write_flow.paused:
                break
        assert peer._write_flow.paused
        for _ in range(20):  # keep flooding while paused
            raw.send(ping * 100)
            await asyncio.sleep(0)
        await until(lambda: peer.protocol.pong is not None)
        # Held back: just the latest pong, whatever the number of pings.
        assert len(peer.protocol.pong) == 127
        assert peer.stats.write_buffer_size <= 2**14 + MAX_PONG_BYTES + 256
        raw.abort()


class TestKeepalive:
    async def test_silent_peer_is_closed_with_1011_in_time(self, start_server):
        handler = ClosingRecorder()

        interval = timeout = 0.05
        server = await start_server(handler, ping_interval=interval, ping_timeout=timeout)
        loop = asyncio.get_running_loop()
        start = loop.time()
        raw = await RawPeer.connect(server.port)  # answers nothing
        await handler.error()
        elapsed = loop.time() - start
        assert elapsed < interval + timeout + 0.5
        [exc] = handler.errors
        assert exc.sent.code == 1011 and exc.sent.reason == "keepalive ping timeout"
        assert exc.code == 1006  # no close frame came back
        raw.abort()

    async def test_live_peer_stays_connected_and_latency_is_measured(self, start_server):
        async def handler(ws):
            await ws.wait_closed()

        server = await start_server(handler)
        async with connect(server.uri, ping_interval=0.01, ping_timeout=0.05) as ws:
            await until(lambda: ws.latency > 0)
            first = ws.latency
            await until(lambda: ws.latency != first)
            assert ws.state.name == "OPEN"

    async def test_stalled_reader_does_not_time_out_its_own_keepalive(self, start_server):
        holder = Holder()
        server = await start_server(
            holder, message_queue_size=0, ping_interval=0.01, ping_timeout=0.02
        )
        async with connect(server.uri) as ws:
            await ws.send("one")
            await ws.send("two")
            peer = await holder.first()
            await until(lambda: peer.stats.read_paused)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 0.2  # ten ping intervals with reading paused
            await until(lambda: loop.time() > deadline)
            assert peer.state.name == "OPEN"
            assert [await peer.recv(), await peer.recv()] == ["one", "two"]
            holder.release.set()
