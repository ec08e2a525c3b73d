"""The Connection API over real loopback sockets: send, recv, iteration,
ping, close, cancellation and protocol errors."""

from __future__ import annotations

import asyncio
import math

import pytest

from tests.conftest import echo
from tests.support import OP_BINARY, OP_CLOSE, OP_TEXT, RawPeer, close_payload, frame, until
from websockets_lite import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    State,
    connect,
)


class Recorder:
    """A server handler that records what happened to its connection."""

    def __init__(self, body=None) -> None:
        self.body = body
        self.connections: list = []
        self.exceptions: list[BaseException] = []
        self.done = asyncio.Event()

    async def __call__(self, ws) -> None:
        self.connections.append(ws)
        try:
            if self.body is not None:
                await self.body(ws)
        except BaseException as exc:
            self.exceptions.append(exc)
            raise
        finally:
            self.done.set()


class TestSendRecv:
    async def test_text_binary_and_bytes_like(self, start_server):
        server = await start_server(echo)
        async with connect(server.uri) as ws:
            for message, expected in [
                ("héllo", "héllo"),
                (b"\x00\x01", b"\x00\x01"),
                (bytearray(b"ba"), b"ba"),
                (memoryview(b"mv"), b"mv"),
                ("", ""),
                (b"", b""),
            ]:
                await ws.send(message)
                assert await ws.recv() == expected

    async def test_fragments_from_iterables_and_async_iterables(self, start_server):
        server = await start_server(echo)

        async def chunks():
            for part in (b"a", b"b", b"c"):
                yield part

        async with connect(server.uri) as ws:
            await ws.send(["un", "deux", "trois"])
            assert await ws.recv() == "undeuxtrois"
            await ws.send(chunks())
            assert await ws.recv() == b"abc"
            await ws.send(iter([b"only"]))
            assert await ws.recv() == b"only"
            await ws.send([])  # nothing is sent
            await ws.send("after")
            assert await ws.recv() == "after"
            assert ws.stats.messages_out == 4

    async def test_aliases(self, start_server):
        server = await start_server(echo)
        async with connect(server.uri) as ws:
            await ws.send_message("trio style")
            assert await ws.get_message() == "trio style"

    async def test_large_memoryviews_of_wide_items_go_as_their_bytes(self, start_server):
        import array

        server = await start_server(echo, max_message_size=2**22)
        numbers = array.array("d", range(2**17))  # 1 MiB in 8-byte items
        async with connect(server.uri, max_message_size=2**22) as ws:
            await ws.send(memoryview(numbers))
            assert await ws.recv() == numbers.tobytes()
            await ws.send("after")  # the stream is still in step
            assert await ws.recv() == "after"

    async def test_wrong_types_are_refused(self, start_server):
        server = await start_server(echo)
        async with connect(server.uri) as ws:
            for bad in (42, None, {"a": "b"}):
                with pytest.raises(TypeError):
                    await ws.send(bad)
            await ws.send("still open")
            assert await ws.recv() == "still open"

    async def test_mixed_fragments_fail_the_connection_with_1011(self, start_server):
        server = await start_server(echo)
        async with connect(server.uri) as ws:
            with pytest.raises(TypeError):
                await ws.send(["text", b"binary"])
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.sent.code == 1011 and info.value.rcvd.code == 1011

    async def test_invalid_first_fragment_sends_nothing(self, start_server):
        server = await start_server(echo)
        async with connect(server.uri) as ws:
            with pytest.raises(TypeError):
                await ws.send([3, "text"])
            await ws.send("still open")
            assert await ws.recv() == "still open"

    async def test_failing_async_iterator_fails_the_connection_with_1011(self, start_server):
        server = await start_server(echo)

        async def broken():
            yield "first"
            yield "second"
            raise RuntimeError("producer died")

        async with connect(server.uri) as ws:
            with pytest.raises(RuntimeError):
                await ws.send(broken())
            await ws.wait_closed()
            assert ws.protocol.close_sent.code == 1011

    async def test_concurrent_sends_do_not_interleave_with_fragments(self, start_server):
        server = await start_server(echo)
        release = asyncio.Event()

        async def slow():
            yield "a"
            await release.wait()
            yield "b"

        async with connect(server.uri) as ws:
            fragmented = asyncio.create_task(ws.send(slow()))
            await until(lambda: ws._fragmenting is not None)
            plain = asyncio.create_task(ws.send("plain"))
            await asyncio.sleep(0)
            assert not plain.done()
            release.set()
            await fragmented
            await plain
            assert [await ws.recv(), await ws.recv()] == ["ab", "plain"]

    async def test_two_concurrent_recv_raise_concurrency_error(self, start_server):
        server = await start_server(echo)
        async with connect(server.uri) as ws:
            first = asyncio.create_task(ws.recv())
            await until(lambda: ws._recv_waiter is not None)
            with pytest.raises(ConcurrencyError):
                await ws.recv()
            await ws.send("x")
            assert await first == "x"

    async def test_recv_cancelled_before_a_message_arrives_loses_nothing(self, start_server):
        server = await start_server(echo)
        async with connect(server.uri) as ws:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.01):
                    await ws.recv()
            await ws.send("late")
            assert await ws.recv() == "late"

    async def test_recv_cancelled_while_a_message_arrives_loses_nothing(self, start_server):
        release = asyncio.Event()
        started = asyncio.Event()

        async def fragments():
            yield b"x" * 1000
            started.set()
            await release.wait()
            yield b"y" * 1000

        async def handler(ws):
            await ws.send(fragments())
            await ws.recv()

        server = await start_server(handler)
        async with connect(server.uri) as ws:
            await started.wait()
            await until(lambda: ws.protocol.buffered_bytes() > 0)  # first half arrived
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.01):
                    await ws.recv()
            release.set()
            assert await ws.recv() == b"x" * 1000 + b"y" * 1000

    async def test_recv_cancelled_after_it_was_woken_loses_nothing(self, start_server):
        server = await start_server(echo)
        async with connect(server.uri) as ws:
            task = asyncio.create_task(ws.recv())
            await until(lambda: ws._recv_waiter is not None)
            # Deliver a message and cancel in the same step: the waiter is
            # done but recv() has not resumed to take the message yet.
            ws.protocol.receive_data(frame(OP_TEXT, b"woken", mask=False))
            ws._process()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await ws.recv() == "woken"


class TestIteration:
    async def test_async_for_ends_quietly_on_normal_close(self, start_server):
        async def handler(ws):
            for i in range(3):
                await ws.send(str(i))
            await ws.close(1001, "going")

        server = await start_server(handler)
        async with connect(server.uri) as ws:
            assert [message async for message in ws] == ["0", "1", "2"]
        assert (ws.close_code, ws.close_reason) == (1001, "going")

    async def test_async_for_raises_on_error_close(self, start_server):
        async def handler(ws):
            await ws.send("before")
            await ws.close(4000, "custom")

        server = await start_server(handler)
        async with connect(server.uri) as ws:
            received = []
            with pytest.raises(ConnectionClosedError) as info:
                async for message in ws:
                    received.append(message)
            assert received == ["before"]
            assert (info.value.code, info.value.reason) == (4000, "custom")


class TestPing:
    async def test_ping_returns_the_round_trip_time(self, start_server):
        server = await start_server(echo)
        async with connect(server.uri) as ws:
            rtt = await ws.ping()
            assert 0 < rtt < 5
            assert ws.latency == rtt
            assert await ws.ping("payload") > 0
            assert await ws.ping(memoryview(b"view")) > 0
            with pytest.raises(TypeError, match="ping data"):
                await ws.ping(5)  # not five NUL bytes

    async def test_a_pong_answers_every_earlier_ping(self, start_server):
        server = await start_server(echo)
        async with connect(server.uri) as ws:
            results = await asyncio.gather(*(ws.ping() for _ in range(5)))
            assert all(r > 0 for r in results)
            assert not ws._pings

    async def test_duplicate_payload_in_flight_is_refused(self, start_server):
        server = await start_server(echo)
        async with connect(server.uri) as ws:
            first = asyncio.create_task(ws.ping(b"same"))
            await asyncio.sleep(0)  # its ping is out; the pong needs a round trip
            assert b"same" in ws._pings
            with pytest.raises(ConcurrencyError):
                await ws.ping(b"same")
            assert await first >= 0

    async def test_pending_ping_fails_when_the_connection_closes(self, start_server):
        async def handler(ws):
            await ws.send("fill")
            await ws.wait_closed()

        server = await start_server(handler)
        async with connect(server.uri) as ws:
            ping = asyncio.create_task(ws.ping())
            await asyncio.sleep(0)  # its ping is out; the pong needs a round trip
            assert ws._pings
            ws.abort()
            with pytest.raises(ConnectionClosedError):
                await ping


class TestClose:
    async def test_client_initiated_close(self, start_server):
        handler = Recorder(lambda ws: ws.recv())
        server = await start_server(handler)
        ws = await connect(server.uri)
        await ws.close(1000, "done")
        assert ws.state is State.CLOSED
        assert (ws.close_code, ws.close_reason) == (1000, "done")
        await handler.done.wait()
        [exc] = handler.exceptions
        assert isinstance(exc, ConnectionClosedOK)
        assert exc.rcvd_then_sent is True
        assert str(exc) == "received 1000 (OK) done; then sent 1000 (OK) done"

    async def test_server_initiated_close(self, start_server):
        server = await start_server(lambda ws: ws.close(1001, "bye"))
        async with connect(server.uri) as ws:
            with pytest.raises(ConnectionClosedOK) as info:
                await ws.recv()
        assert info.value.rcvd_then_sent is True
        assert (info.value.code, info.value.reason) == (1001, "bye")

    async def test_messages_before_close_are_delivered_first(self, start_server):
        async def handler(ws):
            for i in range(5):
                await ws.send(f"m{i}")
            await ws.close()

        server = await start_server(handler)
        async with connect(server.uri, message_queue_size=math.inf) as ws:
            await ws.wait_closed()
            assert [await ws.recv() for _ in range(5)] == [f"m{i}" for i in range(5)]
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()

    async def test_messages_in_flight_when_we_close_are_kept(self, start_server):
        async def handler(ws):
            await ws.send("in flight")
            await ws.wait_closed()

        server = await start_server(handler)
        ws = await connect(server.uri)
        await ws.close()  # "in flight" arrives before or after our close frame
        assert await ws.recv() == "in flight"

    async def test_close_wakes_a_pending_recv(self, start_server):
        server = await start_server(echo)
        async with connect(server.uri) as ws:
            receiving = asyncio.create_task(ws.recv())
            await until(lambda: ws._recv_waiter is not None)
            await ws.close()
            with pytest.raises(ConnectionClosedOK):
                await receiving

    async def test_close_is_idempotent_and_send_after_close_raises(self, start_server):
        server = await start_server(echo)
        ws = await connect(server.uri)
        await ws.close()
        await ws.close()
        with pytest.raises(ConnectionClosedOK):
            await ws.send("too late")
        with pytest.raises(ConnectionClosedOK):
            await ws.ping()

    async def test_invalid_close_code_raises_value_error(self, start_server):
        server = await start_server(echo)
        async with connect(server.uri) as ws:
            with pytest.raises(ValueError):
                await ws.close(1006)
            assert ws.state is State.OPEN

    async def test_tcp_drop_without_close_frame_is_1006(self, start_server):
        async def handler(ws):
            ws.abort()

        server = await start_server(handler)
        async with connect(server.uri) as ws:
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
        assert info.value.code == 1006 and info.value.rcvd is None
        assert ws.close_code == 1006

    async def test_peer_that_never_answers_close_is_aborted_at_the_deadline(self, start_server):
        handler = Recorder(lambda ws: ws.close())
        server = await start_server(handler, disconnect_timeout=0.2)
        peer = await RawPeer.connect(server.port)  # reads nothing, answers nothing
        await handler.done.wait()
        ws = handler.connections[0]
        assert ws.state is State.CLOSED
        assert ws.protocol.close_sent.code == 1000 and ws.close_code == 1006
        peer.abort()

    async def test_disconnect_timeout_bounds_close_from_start_to_end(self, start_server):
        # One deadline: sending close, waiting for the reply, and waiting for
        # the TCP close all fit in disconnect_timeout (no phase restarts it).
        server = await start_server(lambda ws: asyncio.Event().wait())
        peer = await RawPeer.connect(server.port)
        ws = next(iter(server.server.connections))
        ws.disconnect_timeout = 0.3
        loop = asyncio.get_running_loop()
        start = loop.time()
        await ws.close()
        assert loop.time() - start < 0.3 + 0.2
        peer.abort()

    async def test_cancelled_close_aborts(self, start_server):
        server = await start_server(lambda ws: asyncio.Event().wait())
        peer = await RawPeer.connect(server.port)
        ws = next(iter(server.server.connections))
        ws.disconnect_timeout = math.inf
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await ws.close()
        await ws.wait_closed()
        assert ws.close_code == 1006
        peer.abort()


class TestPeerErrors:
    @pytest.mark.parametrize(
        "data, code",
        [
            (frame(3, b"x"), 1002),
            (frame(OP_TEXT, b"\xff"), 1007),
            (frame(OP_BINARY, b"x", mask=False), 1002),
            (frame(OP_CLOSE, close_payload(999)), 1002),
        ],
    )
    async def test_protocol_errors_get_the_right_close_code(self, start_server, data, code):
        handler = Recorder(echo)
        server = await start_server(handler)
        peer = await RawPeer.connect(server.port)
        peer.send(data)
        assert (await peer.read_close())[0] == code
        assert await peer.at_eof()  # the server closed the TCP connection
        await handler.done.wait()
        [exc] = handler.exceptions
        assert isinstance(exc, ConnectionClosedError) and exc.sent.code == code

    async def test_garbage_before_the_handshake_gets_400(self, start_server):
        handler = Recorder()
        server = await start_server(handler)
        peer = await RawPeer.connect(server.port, handshake=False)
        peer.send(b"\x00\x01\x02 not http\r\n\r\n")
        assert (await peer.reader.read(12)) == b"HTTP/1.1 400"
        assert await peer.at_eof()
        assert not handler.connections

    async def test_peer_close_reply_then_silence_on_client_side(self):
        # A server that answers our close but never closes TCP: the client
        # aborts at its deadline and reports a clean closing handshake.
        import base64
        import hashlib

        async def handle(reader, writer):
            head = await reader.readuntil(b"\r\n\r\n")
            key = next(line.split(b": ")[1] for line in head.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key"))
            accept = base64.b64encode(
                hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
            )
            writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            await reader.readexactly(2 + 4 + 2)  # the client's close frame: code only
            writer.write(frame(OP_CLOSE, close_payload(1000), mask=False))
            await reader.read()  # and never close

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            ws = await connect(f"ws://127.0.0.1:{port}/", disconnect_timeout=0.2,
                               compression=None)
            loop = asyncio.get_running_loop()
            start = loop.time()
            await ws.close()
            assert ws.close_code == 1000 and loop.time() - start >= 0.15

    async def test_connection_closed_str_mentions_both_sides(self, start_server):
        server = await start_server(lambda ws: ws.close(1011, "oops"))
        async with connect(server.uri) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
        assert str(info.value) == (
            "received 1011 (internal error) oops; then sent 1011 (internal error) oops"
        )
