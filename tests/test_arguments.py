"""Every setting is checked where it is given: wrong values raise at the
call, naming the parameter; ``None`` disables a limit or a timeout."""

from __future__ import annotations

import asyncio
import math
import re

import pytest

from tests.conftest import echo
from tests.support import RawPeer, until
from websockets_lite import (
    ClientProtocol,
    ConnectionClosedError,
    Options,
    ServerProtocol,
    broadcast,
    connect,
    serve,
    unix_connect,
    unix_serve,
)

BAD = [
    ({"message_queue_size": -1}, ValueError, "message_queue_size"),
    ({"message_queue_size": 1.5}, ValueError, "message_queue_size"),
    ({"compression": "gzip"}, ValueError, "compression"),
    ({"write_limit": -5}, ValueError, "write_limit"),
    ({"write_limit": "64k"}, TypeError, "write_limit"),
    ({"max_message_size": 0}, ValueError, "max_message_size"),
    ({"max_message_size": -1}, ValueError, "max_message_size"),
    ({"max_message_size": math.nan}, ValueError, "max_message_size"),
    ({"max_fragments": 0}, ValueError, "max_fragments"),
    ({"ping_interval": 0}, ValueError, "ping_interval"),
    ({"ping_interval": True}, TypeError, "ping_interval"),
    ({"ping_timeout": 0}, ValueError, "ping_timeout"),
    ({"disconnect_timeout": -1}, ValueError, "disconnect_timeout"),
    ({"subprotocols": "chat"}, TypeError, "subprotocols"),
    ({"subprotocols": [b"chat"]}, TypeError, "subprotocols"),
]
SERVER_BAD = [
    *BAD,
    ({"connect_timeout": 0}, ValueError, "connect_timeout"),
    ({"connect_timeout": "10"}, TypeError, "connect_timeout"),
    ({"origins": "https://x.example"}, TypeError, "origins"),
    ({"origins": [42]}, TypeError, "origins"),
    ({"process_request": "yes"}, TypeError, "process_request"),
    ({"select_subprotocol": 1}, TypeError, "select_subprotocol"),
]
CLIENT_BAD = [
    *BAD,
    ({"connect_timeout": 0}, ValueError, "connect_timeout"),
    ({"origin": 42}, TypeError, "origin"),
    ({"user_agent_header": b"x"}, TypeError, "user_agent_header"),
    ({"backoff": 1.0}, TypeError, "backoff"),
]


def ids(case):
    return ",".join(f"{k}={v!r}" for k, v in case[0].items())


@pytest.mark.parametrize("case", SERVER_BAD, ids=ids)
@pytest.mark.parametrize("make", [
    lambda kw: serve(echo, "127.0.0.1", 0, **kw),
    lambda kw: unix_serve(echo, "/tmp/never-bound.sock", **kw),
], ids=["serve", "unix_serve"])
def test_server_refuses_bad_values_at_the_call(make, case):
    kwargs, error, name = case
    with pytest.raises(error, match=name):
        make(kwargs)


@pytest.mark.parametrize("case", CLIENT_BAD, ids=ids)
@pytest.mark.parametrize("make", [
    lambda kw: connect("ws://127.0.0.1:1/", **kw),
    lambda kw: unix_connect("/tmp/never-bound.sock", **kw),
], ids=["connect", "unix_connect"])
def test_client_refuses_bad_values_at_the_call(make, case):
    kwargs, error, name = case
    with pytest.raises(error, match=name):
        make(kwargs)


@pytest.mark.parametrize("case", [c for c in SERVER_BAD if "connect_timeout" not in c[0]], ids=ids)
async def test_low_level_server_protocol_refuses_bad_values(case):
    kwargs, error, name = case
    with pytest.raises(error, match=name):
        ServerProtocol(echo, **kwargs)


@pytest.mark.parametrize("case", [c for c in CLIENT_BAD if c[2] not in (
    "connect_timeout", "backoff")], ids=ids)
async def test_low_level_client_protocol_refuses_bad_values(case):
    kwargs, error, name = case
    with pytest.raises(error, match=name):
        ClientProtocol("ws://127.0.0.1/", **kwargs)


def test_options_are_frozen_and_shared_checks():
    options = Options(max_message_size=None, ping_interval=None)
    assert options.max_message_size == math.inf and options.ping_interval == math.inf
    with pytest.raises(AttributeError):
        options.max_message_size = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="write_limit"):
        options.replace(write_limit=-1)
    server = serve(echo, "127.0.0.1", 0, max_message_size=None)
    assert server.options.max_message_size == math.inf


def test_other_server_arguments():
    with pytest.raises(ValueError, match="max_connections"):
        serve(echo, "127.0.0.1", 0, max_connections=0)
    with pytest.raises(TypeError, match="handler"):
        serve("echo", "127.0.0.1", 0)  # type: ignore[arg-type]
    from websockets_lite import InvalidURI

    with pytest.raises(InvalidURI):
        connect("http://127.0.0.1/")


NO_LIMITS = dict(
    message_queue_size=None, max_message_size=None, max_fragments=None, write_limit=None,
    connect_timeout=None, disconnect_timeout=None, ping_interval=None, ping_timeout=None,
)


async def test_none_disables_every_limit_and_timeout(start_server):
    connections = []

    async def handler(ws):
        connections.append(ws)
        async for message in ws:
            # Two broadcasts in one loop iteration: no write limit to check.
            assert broadcast([ws], message) == 1
            assert broadcast([ws], message) == 1

    server = await start_server(handler, **NO_LIMITS)
    async with connect(server.uri, **NO_LIMITS) as ws:
        await ws.send("x" * (3 * 2**20))  # over the default 1 MiB
        assert await ws.recv() == await ws.recv() == "x" * (3 * 2**20)
        await ws.send([b"a"] * 5000)  # over the default 4096 fragments
        assert await ws.recv() == b"a" * 5000
    # A clean close, with no deadline armed and no internal error.
    assert ws.close_code == 1000
    await until(lambda: connections[0].close_code == 1000)


async def test_ping_interval_without_ping_timeout_pings_at_the_interval(start_server):
    connections = []

    async def handler(ws):
        connections.append(ws)
        await ws.wait_closed()

    server = await start_server(handler, ping_interval=0.05, ping_timeout=None)
    async with connect(server.uri, ping_interval=None) as ws:
        peer = await asyncio.wait_for(_first(connections), 5)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 0.5
        await until(lambda: loop.time() > deadline)
        # About ten pings of 10 bytes, not a flood of them.
        assert 40 <= peer.bytes_out - _head_size(peer) <= 400
        assert ws.state.name == "OPEN"


async def _first(connections):
    await until(lambda: connections)
    return connections[0]


def _head_size(ws) -> int:
    return len(b"HTTP/1.1 101 Switching Protocols\r\n") + sum(
        len(name) + len(value) + 4 for name, value in ws.response.headers.raw_items()
    ) + 2


async def test_origins_accept_compiled_patterns(start_server):
    server = await start_server(
        echo, origins=[re.compile(r"https://[a-z]+\.example"), "https://exact.test"]
    )
    for origin, allowed in [
        ("https://app.example", True),
        ("https://exact.test", True),
        ("https://app.example.evil", False),  # a pattern matches the whole origin
        ("https://other.test", False),
        (None, False),
    ]:
        extra = b"" if origin is None else f"Origin: {origin}\r\n".encode()
        raw, head = await RawPeer.connect_with(server.port, extra)
        assert head.startswith(b"HTTP/1.1 101" if allowed else b"HTTP/1.1 403"), origin
        raw.abort()


class TestShutdown:
    async def test_one_deadline_for_the_whole_shutdown(self, start_server):
        # A silent client (never answers our close frame) and a slow handler
        # (ignores the close): both bounded by one disconnect_timeout.
        started = asyncio.Event()

        async def slow(ws):
            started.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                await asyncio.sleep(0)
                raise

        timeout = 0.5
        server = await start_server(slow, disconnect_timeout=timeout)
        raw = await RawPeer.connect(server.port)
        await started.wait()
        loop = asyncio.get_running_loop()
        start = loop.time()
        server.server.close()
        await server.server.wait_closed()
        elapsed = loop.time() - start
        assert timeout <= elapsed < timeout + 0.2, elapsed
        raw.abort()

    async def test_close_code_is_checked_at_the_call(self, start_server):
        server = await start_server(echo)
        with pytest.raises(ValueError, match="close code"):
            server.server.close(code=999)
        with pytest.raises(ValueError, match="123 bytes"):
            server.server.close(reason="x" * 200)
        with pytest.raises(TypeError):
            server.server.close(code="1001")  # type: ignore[arg-type]
        assert not server.server.closing


async def test_handler_leaking_another_connections_close_fails_its_own(start_server, caplog):
    # A handler that relays to a connection that closed lets that
    # connection's ConnectionClosed escape: its own connection must not stay
    # open without a handler.
    others = []

    async def relay(ws):
        if ws.request.path == "/other":
            others.append(ws)
            await ws.wait_closed()
            return
        async for message in ws:
            await others[0].send(message)

    server = await start_server(relay)
    async with connect(server.uri + "/other") as other:
        await until(lambda: others)
    async with connect(server.uri + "/main") as ws:
        await ws.send("hello")
        with pytest.raises(ConnectionClosedError) as caught:
            await ws.recv()
    assert caught.value.code == 1011
    assert other.close_code == 1000
    assert any("connection handler failed" in r.getMessage() for r in caplog.records)
