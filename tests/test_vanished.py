"""Peers that vanish while the application does not read (issue: zombie
connections). Reading is paused for the application's sake, so the
connection reads ahead (bounded) to notice a FIN, a reset or a close frame,
and sends keepalive pings whose pongs it finds there. A live peer that only
waits for our slow application is never closed for our slowness."""

from __future__ import annotations

import asyncio
import gc
import logging
import resource
import tracemalloc
import weakref

import pytest
import websockets.asyncio.client

from tests.support import OP_TEXT, RawPeer, Relay, frame, reset, until
from websockets_lite import ConnectionClosedError, ConnectionClosedOK, State, connect

INTERVAL = TIMEOUT = 0.5
KEEPALIVE = {"ping_interval": INTERVAL, "ping_timeout": TIMEOUT, "message_queue_size": 1}


class Idle:
    """The registration pattern: a handler that never reads and waits for
    its connection to end; it records when each one ended."""

    def __init__(self) -> None:
        self.connections: list = []
        self.ended: list[float] = []
        self.release = asyncio.Event()

    async def __call__(self, ws) -> None:
        self.connections.append(ws)
        closed = asyncio.ensure_future(ws.wait_closed())
        released = asyncio.ensure_future(self.release.wait())
        await asyncio.wait([closed, released], return_when=asyncio.FIRST_COMPLETED)
        released.cancel()
        if closed.done():
            self.ended.append(asyncio.get_running_loop().time())
        else:
            closed.cancel()

    async def first(self):
        await until(lambda: self.connections)
        return self.connections[0]


async def stalled_raw_peer(port: int, idle: Idle, count: int = 5) -> tuple[RawPeer, object]:
    """A raw client that sent ``count`` messages to a server that reads none:
    return it once the server holds every byte and its reading is paused."""
    raw = await RawPeer.connect(port)
    frames = [frame(OP_TEXT, f"m{i}".encode()) for i in range(count)]
    for data in frames:
        raw.send(data)
    ws = await idle.first()
    head = ws.bytes_in - ws.protocol.unparsed_size()  # where the frames start
    await until(lambda: ws.stats.read_paused and ws.bytes_in >= head + sum(map(len, frames)))
    return raw, ws


async def assert_messages_then_closed(ws, count: int, code: int) -> None:
    """Messages that arrived before the end stay readable, in order."""
    assert [await ws.recv() for _ in range(count)] == [f"m{i}" for i in range(count)]
    with pytest.raises(ConnectionClosedError) as caught:
        await ws.recv()
    assert caught.value.code == code


class TestPeerGoneWhileNotReading:
    async def test_fin(self, start_server):
        idle = Idle()
        server = await start_server(idle, **KEEPALIVE)
        raw, ws = await stalled_raw_peer(server.port, idle)
        start = asyncio.get_running_loop().time()
        raw.writer.close()  # FIN, without a closing handshake
        await until(lambda: idle.ended, timeout=INTERVAL + TIMEOUT)
        assert idle.ended[0] - start < INTERVAL + TIMEOUT
        await assert_messages_then_closed(ws, 5, 1006)

    async def test_reset(self, start_server):
        idle = Idle()
        server = await start_server(idle, **KEEPALIVE)
        raw, ws = await stalled_raw_peer(server.port, idle)
        start = asyncio.get_running_loop().time()
        reset(raw.writer)  # RST, as a crashed client's kernel sends
        await until(lambda: idle.ended, timeout=INTERVAL + TIMEOUT)
        assert idle.ended[0] - start < INTERVAL + TIMEOUT
        await assert_messages_then_closed(ws, 5, 1006)

    async def test_silent_disappearance(self, start_server):
        # No FIN, no RST: the relay between us stops passing bytes, as a
        # network cut does. Keepalive notices within interval + timeout.
        idle = Idle()
        server = await start_server(idle, **KEEPALIVE)
        relay = await Relay(server.port).start()
        try:
            _raw, ws = await stalled_raw_peer(relay.port, idle)
            start = asyncio.get_running_loop().time()
            relay.cut = True
            await until(lambda: idle.ended, timeout=INTERVAL + TIMEOUT + 1)
            assert idle.ended[0] - start < INTERVAL + TIMEOUT + 0.2
            assert ws.protocol.close_sent.code == 1011
            assert ws.protocol.close_sent.reason == "keepalive ping timeout"
            await assert_messages_then_closed(ws, 5, 1006)
        finally:
            await relay.close()

    async def test_close_frame_is_answered_while_not_reading(self, start_server):
        idle = Idle()
        server = await start_server(idle, **KEEPALIVE)
        async with connect(server.uri, compression=None) as client:
            for i in range(5):
                await client.send(f"m{i}")
            ws = await idle.first()
            await until(lambda: ws.stats.read_paused)
        # The client's close went through: a clean closing handshake.
        assert client.close_code == 1000
        await until(lambda: idle.ended)
        assert [await ws.recv() for _ in range(5)] == [f"m{i}" for i in range(5)]
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()


class TestLivePeerWaitingForUs:
    async def test_websockets_client_keeps_its_connection(self, start_server):
        # The real websockets library, with its own quick keepalive: our
        # look-ahead answers its pings and finds the pongs to ours.
        idle = Idle()
        interval = 0.05
        server = await start_server(
            idle, ping_interval=interval, ping_timeout=interval, message_queue_size=1
        )
        async with websockets.asyncio.client.connect(
            server.uri, ping_interval=interval, ping_timeout=interval, compression=None
        ) as client:
            for i in range(5):
                await client.send(f"m{i}")
            ws = await idle.first()
            await until(lambda: ws.stats.read_paused)
            latencies = {ws.latency}
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10 * (interval + interval)
            while loop.time() < deadline:
                latencies.add(ws.latency)
                await asyncio.sleep(interval / 4)
            assert ws.state is State.OPEN and ws.stats.read_paused
            assert len(latencies) > 5  # our pings were answered while paused
            assert [await ws.recv() for _ in range(5)] == [f"m{i}" for i in range(5)]
            idle.release.set()
        assert client.close_code == 1000

    async def test_more_unread_than_the_look_ahead_holds(self, start_server):
        # The pongs are behind more than 256 KiB of unread messages: the
        # look-ahead cannot see them, the peer is clearly sending, and the
        # slow side is ours: the connection stays open.
        idle = Idle()
        interval = 0.05
        server = await start_server(
            idle, ping_interval=interval, ping_timeout=interval, message_queue_size=1
        )
        messages = [bytes([i]) * 32768 for i in range(20)]
        async with connect(server.uri, compression=None, ping_interval=None) as client:
            sending = asyncio.ensure_future(asyncio.gather(*map(client.send, messages)))
            ws = await idle.first()
            await until(lambda: ws._blind)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10 * (interval + interval)
            await until(lambda: loop.time() > deadline)
            assert ws.state is State.OPEN
            assert ws.stats.read_buffer_size <= 2 * 32768 + 256 * 1024
            assert [await ws.recv() for _ in messages] == messages
            await sending
            idle.release.set()
        assert client.close_code == 1000


async def test_shutdown_after_a_peer_aborted_logs_no_internal_error(start_server, caplog):
    # The look-ahead is full, so the peer's FIN goes unnoticed until shutdown
    # writes a close frame, which the peer's kernel answers with a reset: a
    # vanished peer is not an internal error.
    idle = Idle()
    server = await start_server(idle, **KEEPALIVE)
    raw = await RawPeer.connect(server.port)
    ws = await idle.first()
    for _ in range(20):
        raw.send(frame(OP_TEXT, b"x" * 32768))
    await until(lambda: ws._blind)
    raw.writer.close()  # FIN; our close frame then meets a reset
    await raw.writer.wait_closed()
    server.server.close()
    await server.server.wait_closed()
    assert not [r for r in caplog.records if "internal error" in r.getMessage()]
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.timeout(60)
async def test_a_thousand_clients_vanish_while_not_read(start_server):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 2500:
        pytest.skip(f"needs 2,500 file descriptors, the limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2500), hard))
    logging.getLogger("websockets_lite").setLevel(logging.WARNING)  # 1,000 INFO lines
    idle = Idle()
    # Raw peers answer no ping: a keepalive longer than the setup, and
    # shorter than the wait for the handlers to end.
    server = await start_server(
        idle, backlog=2048, compression=None, message_queue_size=1,
        ping_interval=10, ping_timeout=10,
    )
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        peers = []
        for _ in range(10):
            peers += await asyncio.gather(*(RawPeer.connect(server.port) for _ in range(100)))
        for peer in peers:
            peer.send(b"".join(frame(OP_TEXT, b"hello %d" % i) for i in range(3)))
        await until(lambda: len(idle.connections) == 1000, timeout=20)
        await until(lambda: all(ws.stats.read_paused for ws in idle.connections), timeout=20)
        refs = [weakref.ref(ws) for ws in idle.connections]
        start = asyncio.get_running_loop().time()
        for i, peer in enumerate(peers):
            if i % 2:
                reset(peer.writer)
            else:
                peer.writer.close()
        await until(lambda: len(idle.ended) == 1000, timeout=10)
        assert max(idle.ended) - start < 10
        assert not server.server.connections
        del peers, peer
        idle.connections.clear()
        await asyncio.sleep(0)
        gc.collect()
        assert sum(ref() is not None for ref in refs) == 0
        after = tracemalloc.get_traced_memory()[0]
        assert after - before < 2 * 2**20, f"{after - before} bytes still held"
    finally:
        tracemalloc.stop()
