"""ASGI: the wrapper inside Starlette, FastAPI and Quart apps, on uvicorn's
own WebSocket protocols and on ours, over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import uvicorn

from tests import asgi_apps
from tests.support import until
from websockets_lite import (
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidStatus,
    connect,
)
from websockets_lite.asgi import ASGIConnection, accept

OURS = "websockets_lite.uvicorn:WebSocketProtocol"
IMPLEMENTATIONS = [OURS, "websockets-sansio", "wsproto"]


RUNNING: dict[str, uvicorn.Server] = {}


def server_socket(uri: str, client_port: int) -> socket.socket:
    """The server's socket of the connection from ``client_port``."""
    for connection in RUNNING[uri].server_state.connections:
        transport = connection.transport
        if transport.get_extra_info("peername")[1] == client_port:
            return transport.get_extra_info("socket")
    raise LookupError(client_port)


@pytest.fixture
async def start_uvicorn() -> AsyncIterator[Callable[..., Any]]:
    """Run uvicorn servers in this process, on 127.0.0.1, port 0."""
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(app: Any, ws: Any = OURS, **config: Any) -> str:
        config.setdefault("log_level", "warning")
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, ws=ws, lifespan="off", **config)
        )
        task = asyncio.ensure_future(server.serve())
        await until(lambda: server.started or task.done(), timeout=10)
        servers.append((server, task))
        port = server.servers[0].sockets[0].getsockname()[1]
        RUNNING[f"ws://127.0.0.1:{port}"] = server
        return f"ws://127.0.0.1:{port}"

    yield start
    for server, task in servers:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
async def test_echo_through_the_wrapper(start_uvicorn, impl):
    uri = await start_uvicorn(asgi_apps.starlette_app, ws=impl)
    async with connect(
        uri + "/echo?x=1", subprotocols=["superchat"], user_agent_header="tester/1"
    ) as ws:
        info = json.loads(await ws.recv())
        assert info == {"path": "/echo?x=1", "subprotocol": "superchat", "agent": "tester/1",
                        "native": impl == OURS}
        assert ws.subprotocol == "superchat"
        await ws.send("text")
        assert await ws.recv() == "text"
        await ws.send(b"\x00\xff")
        assert await ws.recv() == b"\x00\xff"
        await ws.send("close please")
        with pytest.raises(ConnectionClosedError) as caught:
            await ws.recv()
    assert (caught.value.code, caught.value.reason) == (4000, "as asked")


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
async def test_registration_sees_the_client_leave(start_uvicorn, impl):
    uri = await start_uvicorn(asgi_apps.starlette_app, ws=impl)
    async with connect(uri + "/idle") as ws:
        assert await ws.recv() == "registered"
        [server_side] = asgi_apps.CLIENTS
        await ws.close(1001, "bye")
    await until(lambda: not asgi_apps.CLIENTS)
    assert (server_side.close_code, server_side.close_reason) == (1001, "bye")
    with pytest.raises(ConnectionClosedOK):
        await server_side.recv()


@pytest.mark.parametrize("impl", [OURS, "websockets-sansio"])
async def test_fastapi_broadcast_with_a_slow_reader_among_200(start_uvicorn, impl):
    uri = await start_uvicorn(asgi_apps.fastapi_app, ws=impl, ws_per_message_deflate=False)
    clients = []
    for _ in range(4):
        clients += await asyncio.gather(*(
            connect(uri + "/room", compression=None, message_queue_size=None)
            for _ in range(50)
        ))
    for ws in clients:
        assert await ws.recv() == "joined"
    await until(lambda: len(asgi_apps.ROOM) == 200)
    slow = clients[0]
    slow.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.transport.pause_reading()
    by_port = {c.remote_address[1]: c for c in asgi_apps.ROOM}
    slow_server_side = by_port[slow.local_address[1]]
    assert isinstance(slow_server_side, ASGIConnection) is (impl != OURS)
    limit = slow_server_side.write_limit
    server_socket(uri, slow.local_address[1]).setsockopt(
        socket.SOL_SOCKET, socket.SO_SNDBUF, 4096
    )
    payload = "x" * 1024
    most = 0
    for i in range(300):
        await clients[1].send(f"{i:04d}{payload}")
        await asyncio.sleep(0)
        most = max(most, slow_server_side.stats.write_buffer_size)
    for ws in clients[1:]:
        got = [await ws.recv() for _ in range(300)]
        assert [m[:4] for m in got] == [f"{i:04d}" for i in range(300)]
    assert slow_server_side.stats.broadcasts_skipped > 0
    assert most <= limit + 1100  # bounded: the slow one is skipped, not buffered
    for ws in clients:
        ws.abort()


async def test_fastapi_chat_across_two_uvicorn_processes(redis_server):
    processes = []
    uris = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.asgi_apps", "chat", redis_server.url, str(port)],
            stdout=subprocess.PIPE, text=True,
        )
        processes.append(process)
        assert process.stdout is not None and process.stdout.readline().strip() == "READY"
        uris.append(f"ws://127.0.0.1:{port}")
    try:
        one = await connect(uris[0] + "/chat/lobby")
        two = await connect(uris[1] + "/chat/lobby")
        assert await one.recv() == await two.recv() == "ready"
        await until_subscribed(redis_server, "lobby", 2)
        await one.send("from the first process")
        assert await two.recv() == "from the first process"
        assert await one.recv() == "from the first process"
        await two.send(b"and back")
        assert await one.recv() == b"and back"
        await one.close()
        await two.close()
    finally:
        for process in processes:
            process.kill()
            process.wait()


async def until_subscribed(redis_server, topic: str, count: int) -> None:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        async with asyncio.timeout(10):
            while (await client.pubsub_numsub(f"websockets_lite:{topic}"))[0][1] < count:
                await asyncio.sleep(0.01)
    finally:
        await client.aclose()


FLOOD_SERVER = r"""
import sys, uvicorn
from tests.asgi_apps import starlette_app
uvicorn.run(starlette_app, host="127.0.0.1", port=int(sys.argv[1]), ws=sys.argv[2],
            ws_max_queue=1, ws_max_size=2**20, ws_per_message_deflate=False,
            log_level="warning", lifespan="off")
"""


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


@pytest.mark.timeout(60)
async def test_flood_to_an_endpoint_that_never_receives_stays_bounded():
    # The client sends as fast as it can; the app never calls receive().
    # With our protocol the client ends up blocked in send() and the
    # server's memory stays within the documented bound: (queue + 2)
    # messages of max size, one read chunk, the write limit.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-c", FLOOD_SERVER, str(port), OURS],
                               env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        async with asyncio.timeout(15):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    await asyncio.sleep(0.05)
        before = rss_kib(process.pid)
        async with connect(f"ws://127.0.0.1:{port}/flood", compression=None) as ws:
            message = os.urandom(65536)

            async def flood() -> None:
                while True:
                    await ws.send(message)

            task = asyncio.ensure_future(flood())
            await until(lambda: ws._write_flow.waiters, timeout=20)  # blocked in send()
            await asyncio.sleep(0.5)
            growth = rss_kib(process.pid) - before
            task.cancel()
            ws.abort()
        from websockets_lite import memory_bound

        bound = memory_bound(1, 2**20, 2**16) / 1024  # KiB
        assert growth < bound + 4096, f"{growth} KiB grown, bound {bound:.0f} KiB"
    finally:
        process.kill()
        process.wait()


class TestBadInput:
    async def test_not_a_websocket_scope(self):
        async def receive():
            return {"type": "http.request"}

        async def send(message):
            pass

        with pytest.raises(TypeError, match="not a WebSocket scope"):
            await accept({"type": "http"}, receive, send)
        with pytest.raises(TypeError, match="receive and send"):
            await accept({"type": "websocket"})
        with pytest.raises(TypeError, match="cannot accept"):
            await accept(42)

    async def test_send_before_accepting_is_an_error_not_a_hang(self, start_uvicorn, caplog):
        uri = await start_uvicorn(asgi_apps.send_before_accept)
        logging.getLogger("uvicorn.error").addHandler(caplog.handler)  # it does not propagate
        try:
            with pytest.raises(InvalidStatus) as caught:
                await connect(uri)
        finally:
            logging.getLogger("uvicorn.error").removeHandler(caplog.handler)
        assert caught.value.status == 500
        [record] = [r for r in caplog.records if "Exception in ASGI application" in r.getMessage()]
        assert "Expected ASGI message 'websocket.accept'" in str(record.exc_info[1])

    async def test_denial_response(self, start_uvicorn):
        uri = await start_uvicorn(asgi_apps.deny)
        with pytest.raises(InvalidStatus) as caught:
            await connect(uri)
        assert caught.value.status == 401 and caught.value.body == b"who are you?"

    async def test_receive_after_disconnect_does_not_hang(self, start_uvicorn):
        uri = await start_uvicorn(asgi_apps.receive_after_disconnect)
        async with connect(uri) as ws:
            await ws.send("one")
        await until(lambda: asgi_apps.RESULTS)
        events, again = asgi_apps.RESULTS.pop()
        assert events == ["websocket.receive", "websocket.disconnect"]
        assert again["type"] == "websocket.disconnect" and again["code"] == 1000


class TestOurProtocol:
    async def test_raw_asgi_app_and_limits_from_the_command_line(self, start_uvicorn):
        uri = await start_uvicorn(asgi_apps.raw_app, ws_max_size=1000)
        async with connect(uri) as ws:
            await ws.send("x" * 1000)
            assert await ws.recv() == "x" * 1000
            await ws.send("x" * 1001)
            with pytest.raises(ConnectionClosedError) as caught:
                await ws.recv()
        assert caught.value.code == 1009

    async def test_server_exit_closes_with_1012(self):
        server = uvicorn.Server(uvicorn.Config(
            asgi_apps.raw_app, host="127.0.0.1", port=0, ws=OURS, lifespan="off",
            log_level="warning",
        ))
        task = asyncio.ensure_future(server.serve())
        await until(lambda: server.started)
        port = server.servers[0].sockets[0].getsockname()[1]
        ws = await connect(f"ws://127.0.0.1:{port}")
        await ws.send("hi")
        assert await ws.recv() == "hi"
        server.should_exit = True
        with pytest.raises(ConnectionClosedError) as caught:
            await ws.recv()
        assert caught.value.code == 1012
        await asyncio.wait_for(task, 15)

    async def test_settings_uvicorn_has_no_option_for_come_from_configure(
        self, start_uvicorn
    ):
        from websockets_lite.uvicorn import WebSocketProtocol

        # Two fragments go as three frames: the last one empty.
        few_fragments = WebSocketProtocol.configure(max_fragments=3)
        assert few_fragments.configure(write_limit=10).settings == {
            "max_fragments": 3, "write_limit": 10
        }
        uri = await start_uvicorn(asgi_apps.raw_app, ws=few_fragments)
        async with connect(uri) as ws:
            await ws.send(["a", "b"])
            assert await ws.recv() == "ab"
            await ws.send(["a", "b", "c"])
            with pytest.raises(ConnectionClosedError) as caught:
                await ws.recv()
        assert caught.value.code == 1009 and "fragments" in caught.value.reason

        with pytest.raises(ValueError, match="max_fragments"):
            WebSocketProtocol.configure(max_fragments=0)
        with pytest.raises(TypeError):
            WebSocketProtocol.configure(no_such_setting=1)

    async def test_keepalive_from_the_command_line(self, start_uvicorn):
        uri = await start_uvicorn(asgi_apps.raw_app, ws_ping_interval=0.05, ws_ping_timeout=0.5)
        async with connect(uri, ping_interval=None) as ws:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 0.3
            await until(lambda: loop.time() > deadline)
            # Pings came and were answered (by our client's protocol).
            assert ws.stats.bytes_in > 20 and ws.state.name == "OPEN"


async def test_quart(start_uvicorn):
    uri = await start_uvicorn(asgi_apps.quart_app(), ws="websockets-sansio")
    async with connect(uri + "/echo", subprotocols=["chat"]) as ws:
        assert await ws.recv() == "subprotocol chat"
        await ws.send("through quart")
        assert await ws.recv() == "through quart"
