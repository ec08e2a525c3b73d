"""websockets_lite.testing and the pytest plugin: handlers driven in memory
with the real connection code, bad input sent on purpose, ASGI and routed
apps, keepalive and timeouts on a fake clock (looptime), and the fixtures."""

from __future__ import annotations

import asyncio
import os

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute

from tests.conftest import echo
from websockets_lite import (
    CloseCause,
    ConnectionClosedError,
    ConnectionClosedOK,
    Hub,
    broadcast,
    consume,
    produce,
    registered,
    route,
    serve,
    testing,
)
from websockets_lite.asgi import accept


async def test_a_handler_in_memory():
    async with testing.connect(echo, "/room?x=1", headers={"X-Token": "t"}) as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        assert ws.server.request.path == "/room?x=1"
        assert ws.server.request.headers["X-Token"] == "t"
    assert ws.close_code == 1000 and ws.server.close_cause is CloseCause.PEER_NORMAL


async def test_the_handlers_exception_is_raised_at_the_end():
    async def broken(ws):
        await ws.recv()
        raise LookupError("bug in the handler")

    with pytest.raises(LookupError, match="bug in the handler"):
        async with testing.connect(broken) as ws:
            await ws.send("go")
            with pytest.raises(ConnectionClosedError) as caught:
                await ws.recv()
            assert caught.value.code == 1011


async def test_limits_and_settings_of_a_serve_setup():
    async with testing.connect(serve(echo, max_message_size=10, subprotocols=["v2"]),
                               subprotocols=["v1", "v2"]) as ws:
        assert ws.subprotocol == "v2"
        await ws.send("x" * 11)
        with pytest.raises(ConnectionClosedError) as caught:
            await ws.recv()
    assert caught.value.code == 1009
    assert ws.server.close_cause is CloseCause.MESSAGE_TOO_BIG


@pytest.mark.parametrize("frame, code, cause", [
    ({"opcode": 1, "payload": b"\xff"}, 1007, CloseCause.INVALID_UTF8),
    ({"opcode": 1, "payload": b"x", "mask": False}, 1002, CloseCause.PROTOCOL_ERROR),
    ({"opcode": 2, "payload": b"x", "rsv": 2}, 1002, CloseCause.PROTOCOL_ERROR),
    ({"opcode": 9, "payload": b"p" * 126}, 1002, CloseCause.PROTOCOL_ERROR),
])
async def test_bad_frames(frame, code, cause):
    async with testing.connect(echo, compression=None) as ws:
        ws.send_frame(**frame)
        with pytest.raises(ConnectionClosedError) as caught:
            await ws.recv()
    assert caught.value.code == code and ws.server.close_cause is cause


async def test_raw_bytes_and_a_client_that_vanishes():
    async def idle(ws):
        await ws.wait_closed()

    async with testing.connect(idle) as ws:
        ws.send_raw(b"\x81")  # half a header
        ws.drop()
        await ws.server.wait_closed()
        assert ws.server.close_cause is CloseCause.LOST


async def test_backpressure_behaves_as_on_a_socket():
    async def chunks():
        for _ in range(64):
            yield os.urandom(4096)

    async def flood(ws):
        await produce(ws, chunks())

    async with testing.connect(flood, compression=None) as ws:
        ws.transport.pause_reading()  # the client stops reading
        await asyncio.sleep(0.01)
        # No kernel buffers here: the server's send() waits at write_limit.
        assert ws.server.stats.write_buffer_size <= 2**16 + 4096 + 16
        assert ws.server._write_flow.waiters
        ws.transport.resume_reading()
        got = [await ws.recv() for _ in range(64)]
        assert all(len(message) == 4096 for message in got)


async def test_patterns_broadcast_and_a_hub():
    hub = Hub(history_size=10)
    room: set = set()

    async def chat(ws):
        with registered(room, ws):
            async with hub.subscribe(ws, "room"):
                await consume(ws, lambda message: hub.publish("room", message))

    async with testing.connect(chat) as one, testing.connect(chat) as two:
        while len(room) < 2 or hub.topics.get("room") != 2:
            await asyncio.sleep(0)
        await one.send("hi all")
        assert await one.recv() == await two.recv() == "hi all"
        assert broadcast(room, "from the server") == 2
        assert await one.recv() == await two.recv() == "from the server"
    assert [message for _, message in await hub.history("room")] == ["hi all"]


async def test_an_asgi_app():
    async def endpoint(websocket):
        ws = await accept(websocket, subprotocols=["chat"])
        async for message in ws:
            await ws.send(message.upper())

    app = Starlette(routes=[WebSocketRoute("/up", endpoint)])
    async with testing.connect(app, "/up", subprotocols=["chat"]) as ws:
        assert ws.subprotocol == "chat"
        await ws.send("shout")
        assert await ws.recv() == "SHOUT"


async def test_a_routed_app():
    from werkzeug.routing import Map, Rule

    async def room(ws, name):
        await ws.send(f"welcome to {name}")

    url_map = Map([Rule("/rooms/<name>", endpoint=room)])
    async with testing.connect(route(url_map), "/rooms/lobby") as ws:
        assert await ws.recv() == "welcome to lobby"
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()


@pytest.mark.looptime
async def test_keepalive_on_a_fake_clock():
    # 20 s intervals, as in production, and the test takes no real time.
    async def idle(ws):
        await ws.wait_closed()

    loop = asyncio.get_running_loop()
    start = loop.time()
    async with testing.connect(serve(idle, ping_interval=20, ping_timeout=20)) as ws:
        ws.transport.pause_reading()  # the client stops answering
        await ws.server.wait_closed()
    assert ws.server.close_cause is CloseCause.KEEPALIVE_TIMEOUT
    assert loop.time() - start == pytest.approx(40, abs=0.1)


@pytest.mark.looptime
async def test_recv_with_a_timeout_on_a_fake_clock():
    async def slow(ws):
        await asyncio.sleep(3600)
        await ws.send("an hour later")

    async with testing.connect(slow) as ws:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(60):
                await ws.recv()
        assert await ws.recv() == "an hour later"


async def test_the_pytest_fixtures(websocket_server, websocket_client):
    server = await websocket_server(echo, max_message_size=100)
    assert server.uri == f"ws://127.0.0.1:{server.port}"
    ws = await websocket_client(server, "/path")
    await ws.send("through a real socket")
    assert await ws.recv() == "through a real socket"
    assert server.stats.connections == 1
    also = await websocket_server(serve(echo))
    other = await websocket_client(also.uri)
    await other.send("and a serve() setup")
    assert await other.recv() == "and a serve() setup"
    with pytest.raises(TypeError, match="max_message_size"):  # not silently dropped
        await websocket_server(serve(echo), max_message_size=100)


def test_wrong_targets():
    with pytest.raises(TypeError, match="cannot connect"):
        asyncio.run(testing.connect(42)._open())  # type: ignore[arg-type]
