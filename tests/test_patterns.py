"""consume / produce / consume_and_produce, registration and broadcast,
over real loopback sockets."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tests.conftest import echo
from tests.support import until
from websockets_lite import (
    ConnectionClosedError,
    ConnectionClosedOK,
    State,
    broadcast,
    connect,
    consume,
    consume_and_produce,
    produce,
    registered,
)


class Boom(Exception):
    pass


class TestConsume:
    async def test_every_message_in_order_then_returns_when_the_peer_closes(self, start_server):
        received: list = []
        done = asyncio.Event()

        async def handler(ws):
            async def consumer(message):
                received.append(message)

            await consume(ws, consumer)
            done.set()

        server = await start_server(handler)
        async with connect(server.uri) as ws:
            for i in range(10):
                await ws.send(f"m{i}")
        await done.wait()
        assert received == [f"m{i}" for i in range(10)]

    async def test_consumer_error_closes_with_1011_and_propagates(self, start_server):
        errors: list = []

        async def handler(ws):
            async def consumer(message):
                raise Boom(message)

            try:
                await consume(ws, consumer)
            except Boom as exc:
                errors.append(exc)

        server = await start_server(handler)
        async with connect(server.uri) as ws:
            await ws.send("bad")
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
        assert info.value.code == 1011
        await until(lambda: errors)


class TestProduce:
    async def test_async_iterable_then_close_1000(self, start_server):
        async def messages():
            for i in range(5):
                yield f"m{i}"

        server = await start_server(lambda ws: produce(ws, messages()))
        async with connect(server.uri) as ws:
            assert [m async for m in ws] == [f"m{i}" for i in range(5)]
        assert ws.close_code == 1000

    async def test_async_callable_until_none(self, start_server):
        items = iter([b"a", b"b", None, b"never"])

        async def producer():
            return next(items)

        server = await start_server(lambda ws: produce(ws, producer))
        async with connect(server.uri) as ws:
            assert [m async for m in ws] == [b"a", b"b"]

    async def test_producer_error_closes_with_1011_and_propagates(self, start_server):
        errors: list = []

        async def handler(ws):
            async def producer():
                yield "one"
                raise Boom()

            try:
                await produce(ws, producer())
            except Boom as exc:
                errors.append(exc)

        server = await start_server(handler)
        async with connect(server.uri) as ws:
            assert await ws.recv() == "one"
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
        assert info.value.code == 1011
        await until(lambda: errors)

    async def test_ends_quietly_when_the_peer_leaves_and_closes_the_generator(
        self, start_server
    ):
        finished = asyncio.Event()
        cleaned = asyncio.Event()

        async def endless():
            try:
                while True:
                    yield "tick"
                    await asyncio.sleep(0.001)
            finally:
                cleaned.set()

        async def handler(ws):
            await produce(ws, endless())
            finished.set()

        server = await start_server(handler)
        async with connect(server.uri) as ws:
            assert await ws.recv() == "tick"
        await finished.wait()
        await cleaned.wait()


class TestConsumeAndProduce:
    async def test_producer_end_cancels_consumer_and_closes_1000(self, start_server):
        async def consumer(message):
            pass

        async def producer():
            for i in range(3):
                yield str(i)

        server = await start_server(lambda ws: consume_and_produce(ws, consumer, producer()))
        async with connect(server.uri) as ws:
            assert [m async for m in ws] == ["0", "1", "2"]
        assert ws.close_code == 1000

    async def test_peer_close_ends_both_cleanly(self, start_server):
        cancelled = asyncio.Event()
        ended = asyncio.Event()

        async def producer():
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return None

        async def handler(ws):
            received = []

            async def consumer(message):
                received.append(message)

            await consume_and_produce(ws, consumer, producer)
            assert received == ["hi"]
            ended.set()

        server = await start_server(handler)
        async with connect(server.uri) as ws:
            await ws.send("hi")
        await ended.wait()
        assert cancelled.is_set()

    @pytest.mark.parametrize("failing", ["consumer", "producer"])
    async def test_either_error_cancels_the_other_closes_1011_and_propagates(
        self, start_server, failing
    ):
        errors: list = []
        other_cancelled = asyncio.Event()
        consuming = asyncio.Event()

        async def consumer(message):
            if failing == "consumer":
                raise Boom()
            consuming.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                other_cancelled.set()
                raise

        async def producer():
            if failing == "producer":
                await consuming.wait()  # fail while the consumer is busy
                raise Boom()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                other_cancelled.set()
                raise

        async def handler(ws):
            try:
                await consume_and_produce(ws, consumer, producer)
            except Boom as exc:
                errors.append(exc)

        server = await start_server(handler)
        async with connect(server.uri) as ws:
            await ws.send("go")
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
        assert info.value.code == 1011
        await until(lambda: errors)
        assert other_cancelled.is_set()

    async def test_cancelling_it_cancels_both(self, start_server):
        running = []
        cancelled = []

        async def side(*args):
            running.append(True)
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(True)
                raise

        tasks = []

        async def handler(ws):
            tasks.append(asyncio.current_task())
            await consume_and_produce(ws, side, side)

        server = await start_server(handler)
        async with connect(server.uri) as ws:
            await ws.send("so that the consumer runs")
            await until(lambda: len(running) == 2)
            tasks[0].cancel()
            await until(lambda: tasks[0].done())
        assert len(cancelled) == 2


class TestRegistered:
    async def test_added_for_the_block_and_removed_even_on_errors(self, start_server):
        connections: set = set()
        seen = []

        async def handler(ws):
            with registered(connections, ws):
                seen.append(len(connections))
                if ws.request.path == "/fail":
                    raise Boom()
                await ws.wait_closed()

        server = await start_server(handler)
        async with connect(server.uri + "/ok"):
            await until(lambda: len(connections) == 1)
        await until(lambda: not connections)
        async with connect(server.uri + "/fail") as ws:
            await ws.wait_closed()
        assert not connections and seen == [1, 1]


def shrink_buffers(ws, server_side: bool) -> None:
    sock = ws.transport.get_extra_info("socket")
    option = socket.SO_SNDBUF if server_side else socket.SO_RCVBUF
    sock.setsockopt(socket.SOL_SOCKET, option, 4096)


class TestBroadcast:
    async def test_slow_clients_are_skipped_and_their_buffers_stay_bounded(self, start_server):
        server = await start_server(lambda ws: ws.wait_closed(), write_limit=16 * 1024,
                                    compression=None)
        readers = [await connect(server.uri, compression=None) for _ in range(195)]
        # Stalled clients: they never read, so their queue fills and they
        # stop reading from the socket.
        stalled = [await connect(server.uri, compression=None, message_queue_size=0)
                   for _ in range(5)]
        await until(lambda: len(server.server.connections) == 200)
        by_peer = {ws.remote_address: ws for ws in server.server.connections}
        stalled_server_side = [by_peer[ws.local_address] for ws in stalled]
        for ws in stalled:
            shrink_buffers(ws, server_side=False)
        for ws in stalled_server_side:
            shrink_buffers(ws, server_side=True)
        received = {id(ws): [] for ws in readers}

        async def read(ws):
            async for message in ws:
                received[id(ws)].append(message)

        reading = [asyncio.create_task(read(ws)) for ws in readers]
        counts = []
        for i in range(300):
            message = f"{i:04d}".encode() * 256  # 1 KiB
            before = {ws: ws.stats.messages_out for ws in server.server.connections}
            count = broadcast(server.server.connections, message)
            took = sum(ws.stats.messages_out - before[ws] for ws in before)
            assert count == took
            counts.append(count)
            for ws in stalled_server_side:
                assert ws.stats.write_buffer_size <= 16 * 1024
            await until(lambda i=i: all(len(r) == i + 1 for r in received.values()))
        expected = [f"{i:04d}".encode() * 256 for i in range(300)]
        assert all(messages == expected for messages in received.values())
        assert counts[0] == 200 and counts[-1] == 195
        assert all(ws.stats.broadcasts_skipped > 0 for ws in stalled_server_side)
        for task in reading:
            task.cancel()
        for ws in readers + stalled:
            ws.abort()

    async def test_on_slow_close_closes_with_1013(self, start_server):
        server = await start_server(lambda ws: ws.wait_closed(), write_limit=4096,
                                    compression=None)
        ws = await connect(server.uri, message_queue_size=0)
        await until(lambda: server.server.connections)
        [peer] = server.server.connections
        shrink_buffers(ws, server_side=False)
        shrink_buffers(peer, server_side=True)
        for _ in range(10_000):
            if not broadcast([peer], b"x" * 1024, on_slow="close"):
                break
        assert peer.protocol.close_sent.code == 1013
        assert peer.state is not State.OPEN
        assert peer.stats.broadcasts_skipped == 1
        ws.abort()

    async def test_connection_sending_fragments_is_skipped_not_corrupted(self, start_server):
        release = asyncio.Event()
        peers = []

        async def handler(ws):
            async def fragments():
                yield "frag"
                await release.wait()
                yield "mented"

            peers.append(ws)
            await ws.send(fragments())
            await ws.wait_closed()

        server = await start_server(handler)
        async with connect(server.uri) as ws:
            await until(lambda: peers and peers[0].sending_fragments)
            assert broadcast(server.server.connections, "broadcast") == 0
            assert peers[0].stats.broadcasts_skipped == 0  # busy, not slow
            release.set()
            await until(lambda: not peers[0].sending_fragments)
            assert broadcast(server.server.connections, "after") == 1
            assert [await ws.recv(), await ws.recv()] == ["fragmented", "after"]

    async def test_compressed_and_client_connections(self, start_server):
        server = await start_server(echo)
        compressed = await connect(server.uri)  # each has its own deflate context
        plain = await connect(server.uri, compression=None)
        await until(lambda: len(server.server.connections) == 2)
        for text in ["hello", "hello again", "é" * 100]:
            assert broadcast(server.server.connections, text) == 2
            assert await compressed.recv() == text and await plain.recv() == text
        # Client connections (masked frames) broadcast too; the server echoes.
        assert broadcast([compressed, plain], b"up") == 2
        assert await compressed.recv() == b"up" and await plain.recv() == b"up"
        await compressed.close()
        await plain.close()

    async def test_corked_frames_keep_their_order_with_direct_sends(self, start_server):
        peers = []
        server = await start_server(lambda ws: peers.append(ws) or ws.wait_closed())
        async with connect(server.uri) as ws:
            await until(lambda: peers)
            [peer] = peers
            for i in range(3):
                assert broadcast([peer], f"b{i}") == 1
            assert peer.stats.write_buffer_size > 0  # corked until the loop turns
            await peer.send("direct")  # flushes the cork first
            broadcast([peer], "b3")
            assert [await ws.recv() for _ in range(5)] == ["b0", "b1", "b2", "direct", "b3"]

    async def test_writes_per_loop_iteration(self, start_server):
        # One broadcast per iteration goes straight to the transport; a
        # burst reaches it in one write per iteration once bursts are seen.
        peers = []
        server = await start_server(lambda ws: peers.append(ws) or ws.wait_closed())
        async with connect(server.uri) as ws:
            await until(lambda: peers)
            [peer] = peers
            writes: list[bytes] = []
            write = peer.transport.write
            peer.transport.write = lambda data: writes.append(data) or write(data)
            for i in range(5):  # ticks: written during the call
                assert broadcast([peer], f"t{i}") == 1
                assert len(writes) == i + 1
                await asyncio.sleep(0)
            writes.clear()
            for i in range(5):  # bursts of 10
                for j in range(10):
                    broadcast([peer], f"b{i}.{j}")
                await asyncio.sleep(0)
            await asyncio.sleep(0)
            assert len(writes) == 6  # the first burst: one direct, then the rest
            writes.clear()
            for i in range(3):  # ticks again: direct from the second one
                broadcast([peer], f"u{i}")
                await asyncio.sleep(0)
            await asyncio.sleep(0)
            assert len(writes) == 3
            expected = [f"t{i}" for i in range(5)]
            expected += [f"b{i}.{j}" for i in range(5) for j in range(10)]
            expected += [f"u{i}" for i in range(3)]
            assert [await ws.recv() for _ in expected] == expected
            del peer.transport.write

    async def test_closed_connections_are_skipped(self, start_server):
        server = await start_server(echo)
        ws = await connect(server.uri)
        await ws.close()
        assert broadcast([ws], "x") == 0
        assert ws.stats.broadcasts_skipped == 0

    def test_arguments(self):
        with pytest.raises(ValueError):
            broadcast([], "x", on_slow="drop")
        with pytest.raises(TypeError):
            broadcast([], 3)
        assert broadcast([], "nobody") == 0


async def test_async_for_over_closed_ok(start_server):
    server = await start_server(lambda ws: ws.close())
    async with connect(server.uri) as ws:
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()
