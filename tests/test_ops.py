"""Operating a server: why each connection closed (told apart over real
sockets: "you were slow" is never "the peer vanished"), server-wide stats
checked against a known sequence of events, the Prometheus endpoint scraped
over HTTP, and the log line of each close."""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import pytest
import websockets.asyncio.client

from tests.conftest import echo
from tests.support import OP_BINARY, OP_TEXT, RawPeer, frame, reset, until
from websockets_lite import (
    CloseCause,
    ConnectionClosed,
    Hub,
    broadcast,
    connect,
)
from websockets_lite.metrics import Metrics


class Ends:
    """A handler that keeps each connection and waits for its end."""

    def __init__(self, read: bool = True) -> None:
        self.read = read
        self.connections: list = []

    async def __call__(self, ws) -> None:
        self.connections.append(ws)
        if self.read:
            try:
                async for _ in ws:
                    pass
            except ConnectionClosed:
                pass
        await ws.wait_closed()

    async def first_cause(self):
        await until(lambda: self.connections and self.connections[0].close_cause)
        return self.connections[0].close_cause


class TestCauses:
    @pytest.mark.parametrize("code, cause", [
        (1000, CloseCause.PEER_NORMAL),
        (1001, CloseCause.PEER_GOING_AWAY),
        (4000, CloseCause.PEER_ERROR),
    ])
    async def test_the_peer_closed(self, start_server, code, cause):
        ends = Ends()
        server = await start_server(ends)
        async with connect(server.uri) as ws:
            await ws.close(code)
        assert await ends.first_cause() is cause
        assert ws.close_cause is CloseCause.APPLICATION  # our side closed it

    async def test_we_closed_and_the_server_shut_down(self, start_server):
        async def closer(ws):
            await ws.close(4001, "bye")

        server = await start_server(closer)
        async with connect(server.uri) as ws:
            with pytest.raises(ConnectionClosed) as caught:
                await ws.recv()
        assert caught.value.cause is CloseCause.PEER_ERROR
        ends = Ends()
        server = await start_server(ends)
        client = await connect(server.uri)
        await until(lambda: ends.connections)
        server.server.close()
        await server.server.wait_closed()
        assert ends.connections[0].close_cause is CloseCause.SHUTDOWN
        await client.wait_closed()
        assert client.close_cause is CloseCause.PEER_GOING_AWAY

    async def test_keepalive_timeout_the_peer_vanished(self, start_server):
        ends = Ends()
        server = await start_server(ends, ping_interval=0.05, ping_timeout=0.05)
        raw = await RawPeer.connect(server.port)  # answers no ping, reads everything
        assert await ends.first_cause() is CloseCause.KEEPALIVE_TIMEOUT
        raw.abort()

    async def test_write_stalled_the_peer_stopped_reading(self, start_server):
        async def sender(ws):
            ends.connections.append(ws)
            ws.transport.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_SNDBUF, 4096
            )
            try:
                while True:
                    await ws.send(os.urandom(8192))
            except ConnectionClosed:
                pass

        ends = Ends()
        server = await start_server(
            sender, ping_interval=0.05, ping_timeout=0.1, write_limit=8192, compression=None
        )
        raw = await RawPeer.connect(server.port)
        raw.writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.writer.transport.pause_reading()  # it stops reading
        assert await ends.first_cause() is CloseCause.WRITE_STALLED
        raw.abort()

    async def test_the_peers_keepalive_gave_up_on_us_while_we_did_not_read(self, start_server):
        # The client's pings are stuck behind its own data, which we do not
        # read: its keepalive closes with 1011. Our slowness, not the network.
        class Slow(Ends):
            async def __call__(self, ws) -> None:
                self.connections.append(ws)
                await asyncio.sleep(1.2)  # reading paused meanwhile
                try:
                    async for _ in ws:
                        pass
                except ConnectionClosed:
                    pass

        slow = Slow()
        server = await start_server(slow, compression=None)
        async with websockets.asyncio.client.connect(
            server.uri, ping_interval=0.1, ping_timeout=0.1, close_timeout=5, compression=None
        ) as ws:
            sending = asyncio.gather(*(ws.send(os.urandom(65536)) for _ in range(40)))
            await ws.wait_closed()
            sending.cancel()
        assert await slow.first_cause() is CloseCause.PEER_TIMEOUT_WHILE_PAUSED

    async def test_the_peer_vanished(self, start_server):
        ends = Ends()
        server = await start_server(ends)
        raw = await RawPeer.connect(server.port)
        await until(lambda: ends.connections)
        reset(raw.writer)
        assert await ends.first_cause() is CloseCause.LOST

    @pytest.mark.parametrize("data, cause", [
        (frame(OP_BINARY, b"x" * 2000), CloseCause.MESSAGE_TOO_BIG),
        (frame(OP_TEXT, b"\xff\xfe"), CloseCause.INVALID_UTF8),
        (frame(OP_TEXT, b"unmasked", mask=False), CloseCause.PROTOCOL_ERROR),
    ])
    async def test_the_peer_broke_a_rule(self, start_server, data, cause):
        ends = Ends()
        server = await start_server(ends, max_message_size=1000)
        raw = await RawPeer.connect(server.port)
        raw.send(data)
        assert await ends.first_cause() is cause
        raw.abort()

    async def test_handshake_timeout_and_too_slow(self, start_server):
        ends = Ends(read=False)
        server = await start_server(ends, connect_timeout=0.05, compression=None)
        raw = await RawPeer.connect(server.port, handshake=False)  # silent
        await until(lambda: server.server.stats.closes.get("handshake_timeout"))
        raw.abort()
        client = await connect(server.uri, compression=None)
        await until(lambda: ends.connections)
        client.transport.pause_reading()
        peer = ends.connections[0]
        peer.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, 4096
        )
        async with asyncio.timeout(10):
            while peer.close_cause is None:
                broadcast([peer], os.urandom(16384), on_slow="close")
                await asyncio.sleep(0)
        assert peer.close_cause is CloseCause.TOO_SLOW
        client.abort()


async def test_each_close_is_logged_once_with_its_cause(start_server, caplog):
    caplog.set_level(logging.DEBUG, logger="websockets_lite")
    server = await start_server(echo)
    async with connect(server.uri) as ws:
        await ws.send("hi")
        await ws.recv()
    raw = await RawPeer.connect(server.port)
    await until(lambda: len(server.server.connections) == 1)
    reset(raw.writer)

    def closes():
        return [r for r in caplog.records if "connection closed" in r.getMessage()]

    await until(lambda: len(closes()) == 2)
    assert [(r.levelno, r.getMessage().rsplit("(", 1)[1]) for r in closes()] == [
        (logging.DEBUG, "peer_normal)"), (logging.INFO, "lost)")
    ]


async def test_server_stats_after_a_known_sequence(start_server):
    ends = Ends()
    server = await start_server(ends, max_message_size=1000, compression=None,
                                origins=["https://ok.example"])
    stats = server.server.stats
    assert stats.connections == 0 and stats.handshakes_accepted == 0
    clients = [await connect(server.uri, origin="https://ok.example", compression=None)
               for _ in range(3)]
    with pytest.raises(Exception):  # noqa: B017  (InvalidStatus 403)
        await connect(server.uri, origin="https://evil.example")
    await until(lambda: len(ends.connections) == 3)
    for ws in clients:
        await ws.send("x" * 10)
    broadcast(ends.connections, "y" * 5)
    await until(lambda: server.server.stats.messages_in == 3)
    for ws in clients:
        assert await ws.recv() == "y" * 5
    stats = server.server.stats
    assert stats.connections == 3
    assert stats.handshakes_accepted == 3 and stats.handshakes_rejected == {403: 1}
    assert stats.messages_in == 3 and stats.messages_out == 3
    assert stats.broadcasts_delivered == 3 and stats.broadcasts_skipped == 0
    # send_nowait() alone is no broadcast (the Hub's catch-up uses it).
    assert ends.connections[0].send_nowait("w")
    assert await clients[0].recv() == "w"
    assert server.server.stats.broadcasts_delivered == 3
    await clients[0].close()
    await clients[1].send("z" * 2000)  # over the limit: 1009
    await until(lambda: sum(server.server.stats.closes.values()) == 2)
    stats = server.server.stats
    assert stats.closes == {"peer_normal": 1, "message_too_big": 1}
    assert stats.connections == 1
    assert stats.messages_in == 3  # what ended connections counted is kept
    assert stats.read_buffer_bytes == 0 and stats.paused_connections == 0
    await clients[2].close()


async def test_prometheus_endpoint(start_server):
    import prometheus_client

    hub = Hub()
    metrics = Metrics(hub=hub, registry=prometheus_client.CollectorRegistry())

    async def handler(ws):
        async with hub.subscribe(ws, "room"):
            async for message in ws:
                await hub.publish("room", message)

    server = await start_server(handler, process_request=metrics.process_request,
                                compression=None)
    async with connect(server.uri) as a, connect(server.uri) as b:
        await until(lambda: hub.topics.get("room") == 2)
        await a.send("hello")
        assert await a.recv() == await b.recv() == "hello"
        body = await scrape(server.port)
    values = parse(body)
    assert values["websockets_lite_connections"] == 2
    assert values['websockets_lite_handshakes_total{status="101"}'] == 2
    assert values["websockets_lite_messages_received_total"] == 1
    assert values["websockets_lite_messages_sent_total"] == 2
    assert values["websockets_lite_broadcast_deliveries_total"] == 2
    assert values["websockets_lite_hub_publishes_total"] == 1
    assert values["websockets_lite_hub_deliveries_total"] == 2
    assert values["websockets_lite_hub_subscriptions"] == 2
    await until(lambda: server.server.stats.connections == 0)
    values = parse(await scrape(server.port))
    assert values['websockets_lite_closes_total{cause="peer_normal"}'] == 2
    assert values["websockets_lite_connections"] == 0


async def scrape(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"text/plain; version=" in head
    return body.decode()


def parse(body: str) -> dict[str, float]:
    values = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_metrics_without_prometheus_client(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def without(name, *args, **kwargs):
        if name.startswith("prometheus_client"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without)
    with pytest.raises(ImportError, match=r"websockets_lite\[metrics\]"):
        Metrics()
