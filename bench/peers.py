"""Servers and clients of every library, for every scenario of bench/run.py.

    python bench/peers.py server LIBRARY SCENARIO      prints "PORT n", serves
    python bench/peers.py client LIBRARY SCENARIO URL  prints one JSON line

Libraries: websockets_lite, websockets (asyncio API), aiohttp, wsproto-raw
(a minimal asyncio.BufferedProtocol + wsproto echo: no queue, no limits, no
safety: the ceiling of the parser websockets_lite builds on), raw (asyncio
with no library at all, bench/raw.py: the limit), picows (a Cython library
with a frame-level API; no compression), fast (the common client for
fanout: it parses unmasked server frames itself). Set
BENCH_UVLOOP=1 to run on uvloop. Compression is off everywhere, except in
the idle-mem scenario with BENCH_COMPRESSION=deflate.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

SCENARIOS = ("rtt", "stream64", "stream16k", "large", "fanout", "connect")
RTT_SECONDS = float(os.environ.get("BENCH_RTT_SECONDS", "3"))
STREAM_COUNT = {"stream64": int(os.environ.get("BENCH_STREAM64", "60000")),
                "stream16k": int(os.environ.get("BENCH_STREAM16K", "6000"))}
STREAM_SIZE = {"stream64": 64, "stream16k": 16 * 1024}
LARGE_SIZE, LARGE_COUNT = 8 * 2**20, int(os.environ.get("BENCH_LARGE", "16"))
FANOUT_CLIENTS = int(os.environ.get("BENCH_FANOUT_CLIENTS", "500"))
FANOUT_MESSAGES = int(os.environ.get("BENCH_FANOUT_MESSAGES", "1000"))
CONNECT_SECONDS = float(os.environ.get("BENCH_CONNECT_SECONDS", "3"))
COMPRESSION = os.environ.get("BENCH_COMPRESSION") or None
MAX = 64 * 2**20


#: The scenario this process runs (set by main()).
SCENARIO = ""


def mode(scenario: str) -> str:
    """What the server does: echo, sink (count, answer "end"), or fanout."""
    return {"stream64": "sink", "stream16k": "sink", "fanout": "fanout",
            "fanout-tick": "fanout"}.get(scenario, "echo")


class Fanout:
    """Server side of fanout: wait for "go", broadcast, then say "end" to all."""

    def __init__(self, broadcast: Callable[[list[Any], bytes], Any],
                 send_end: Callable[[Any], Awaitable[None]]) -> None:
        self.connections: list[Any] = []
        self.task: asyncio.Future[None] | None = None
        self.broadcast = broadcast
        self.send_end = send_end

    async def go(self) -> None:
        message = b"m" * 64
        # fanout: bursts of 20 broadcasts per loop iteration; fanout-tick: one
        # per iteration, as a server that broadcasts each event as it comes.
        burst = 1 if SCENARIO == "fanout-tick" else 20
        cpu = time.process_time()
        for i in range(FANOUT_MESSAGES):
            result = self.broadcast(self.connections, message)
            if asyncio.iscoroutine(result):
                await result
            if i % burst == burst - 1:
                await asyncio.sleep(0)  # let the transports flush, as a real server would
        for connection in list(self.connections):
            await self.send_end(connection)
        # The server's CPU for the whole broadcast, read by bench/run.py.
        print(f"CPU {time.process_time() - cpu}", flush=True)


def handler_for(scenario: str, fanout: Fanout) -> Callable[[Any], Awaitable[None]]:
    """The server handler, for libraries with ``async for`` and ``send()``
    (websockets_lite and websockets)."""

    async def handler(ws: Any) -> None:
        if mode(scenario) == "echo":
            async for message in ws:
                await ws.send(message)
        elif mode(scenario) == "sink":
            count = 0
            async for message in ws:
                if message == "end":
                    await ws.send(str(count))
                else:
                    count += 1
        else:
            fanout.connections.append(ws)
            async for message in ws:
                if message == "go":
                    await fanout.go()

    return handler


# websockets_lite ----------------------------------------------------------------


async def serve_lite(scenario: str, ready: Callable[[int], None]) -> None:
    import websockets_lite as lib

    fanout = Fanout(lib.broadcast, lambda ws: ws.send("end"))
    server = await lib.serve(
        handler_for(scenario, fanout), "127.0.0.1", 0, compression=COMPRESSION,
        max_message_size=MAX, ping_interval=None, max_fragments=float("inf"), backlog=2048,
    )
    ready(server.sockets[0].getsockname()[1])
    await server.serve_forever()


def connect_lite(url: str) -> Any:
    import websockets_lite as lib

    return lib.connect(url, compression=COMPRESSION, max_message_size=MAX, ping_interval=None)


# websockets ---------------------------------------------------------------------


async def serve_websockets(scenario: str, ready: Callable[[int], None]) -> None:
    from websockets.asyncio.server import broadcast, serve

    async def send_end(ws: Any) -> None:
        await ws.send("end")

    fanout = Fanout(broadcast, send_end)
    server = await serve(handler_for(scenario, fanout), "127.0.0.1", 0,
                         compression=COMPRESSION, max_size=MAX, ping_interval=None, backlog=2048)
    ready(server.sockets[0].getsockname()[1])
    await server.serve_forever()


def connect_websockets(url: str) -> Any:
    from websockets.asyncio.client import connect

    return connect(url, compression=COMPRESSION, max_size=MAX, ping_interval=None)


# aiohttp ------------------------------------------------------------------------


async def serve_aiohttp(scenario: str, ready: Callable[[int], None]) -> None:
    from aiohttp import WSMsgType, web

    async def broadcast(connections: list[Any], message: bytes) -> None:
        for ws in connections:  # no helper in aiohttp: what users write
            await ws.send_bytes(message)

    async def send_end(ws: Any) -> None:
        await ws.send_str("end")

    fanout = Fanout(broadcast, send_end)

    async def handler(request: Any) -> Any:
        ws = web.WebSocketResponse(compress=bool(COMPRESSION), max_msg_size=0)
        await ws.prepare(request)
        count = 0
        if mode(scenario) == "fanout":
            fanout.connections.append(ws)
        async for msg in ws:
            data = msg.data
            if mode(scenario) == "echo":
                if msg.type == WSMsgType.BINARY:
                    await ws.send_bytes(data)
                else:
                    await ws.send_str(data)
            elif mode(scenario) == "sink":
                if msg.type == WSMsgType.TEXT and data == "end":
                    await ws.send_str(str(count))
                else:
                    count += 1
            elif data == "go":
                await fanout.go()
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
    await site.start()
    ready(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    await asyncio.Event().wait()


class AiohttpClient:
    """aiohttp's client behind the small API the scenarios use."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def __aenter__(self) -> AiohttpClient:
        import aiohttp

        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(self.url, compress=0, max_msg_size=0,
                                                autoping=True)
        return self

    def __await__(self) -> Any:
        return self.__aenter__().__await__()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()

    async def send(self, data: str | bytes) -> None:
        if isinstance(data, str):
            await self.ws.send_str(data)
        else:
            await self.ws.send_bytes(data)

    async def recv(self) -> str | bytes:
        msg = await self.ws.receive()
        return msg.data  # type: ignore[no-any-return]


def connect_aiohttp(url: str) -> Any:
    return AiohttpClient(url)


# wsproto-raw: the bare parser, no queue, no limits --------------------------------


def _wsproto_server_protocol(scenario: str, fanout: Fanout) -> Any:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import (
        AcceptConnection,
        BytesMessage,
        CloseConnection,
        Ping,
        Request,
        TextMessage,
    )

    class RawServer(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.conn = WSConnection(ConnectionType.SERVER)
            self.buffer = bytearray(256 * 1024)
            self.parts: list[Any] = []
            self.count = 0

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def get_buffer(self, sizehint: int) -> bytearray:
            return self.buffer

        def buffer_updated(self, nbytes: int) -> None:
            conn = self.conn
            conn.receive_data(self.buffer[:nbytes])
            out = []
            for event in conn.events():
                if isinstance(event, (BytesMessage, TextMessage)):
                    self.parts.append(event.data)
                    if not event.message_finished:
                        continue
                    data = self.parts[0] if len(self.parts) == 1 else (
                        "" if isinstance(event, TextMessage) else b"").join(self.parts)
                    self.parts = []
                    kind = mode(scenario)
                    if kind == "echo":
                        out.append(conn.send(event.__class__(data=data)))
                    elif kind == "sink":
                        if data == "end":
                            out.append(conn.send(TextMessage(data=str(self.count))))
                        else:
                            self.count += 1
                    elif data == "go":
                        fanout.task = asyncio.ensure_future(fanout.go())
                elif isinstance(event, Request):
                    out.append(conn.send(AcceptConnection()))
                    if mode(scenario) == "fanout":
                        fanout.connections.append(self)
                elif isinstance(event, Ping):
                    out.append(conn.send(event.response()))
                elif isinstance(event, CloseConnection):
                    if conn.state.name == "REMOTE_CLOSING":
                        out.append(conn.send(event.response()))
                    self.transport.close()
            if out:
                self.transport.write(b"".join(out))

    return RawServer


async def serve_raw(scenario: str, ready: Callable[[int], None]) -> None:
    from wsproto.frame_protocol import FrameProtocol

    framer = FrameProtocol(client=False, extensions=[])

    def broadcast(connections: list[Any], message: bytes) -> None:
        frame = bytes(framer.send_data(message))  # one frame for all
        for connection in connections:
            connection.transport.write(frame)

    async def send_end(connection: Any) -> None:
        connection.transport.write(bytes(framer.send_data("end")))

    fanout = Fanout(broadcast, send_end)
    loop = asyncio.get_running_loop()
    protocol = _wsproto_server_protocol(scenario, fanout)
    server = await loop.create_server(protocol, "127.0.0.1", 0, backlog=2048)
    ready(server.sockets[0].getsockname()[1])
    await server.serve_forever()


class Inbox:
    """Messages a callback-based client received, for an awaiting recv()."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.waiter: asyncio.Future[None] | None = None

    def deliver(self, message: Any) -> None:
        self.messages.append(message)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def recv(self) -> Any:
        while not self.messages:
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        return self.messages.pop(0)


class RawClient(Inbox, asyncio.BufferedProtocol):
    """A wsproto client with one waiter: the bare ceiling."""

    def __init__(self, host: str, path: str) -> None:
        from wsproto import ConnectionType, WSConnection

        self.conn = WSConnection(ConnectionType.CLIENT)
        self.host, self.path = host, path
        super().__init__()
        self.buffer = bytearray(256 * 1024)
        self.parts: list[Any] = []
        self.opened = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        from wsproto.events import Request

        self.transport = transport
        transport.write(self.conn.send(Request(host=self.host, target=self.path)))

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        from wsproto.events import AcceptConnection, CloseConnection, Message, Ping

        conn = self.conn
        conn.receive_data(self.buffer[:nbytes])
        for event in conn.events():
            if isinstance(event, Message):
                self.parts.append(event.data)
                if event.message_finished:
                    parts, self.parts = self.parts, []
                    data = parts[0] if len(parts) == 1 else (
                        "" if isinstance(parts[0], str) else b"").join(parts)
                    self.deliver(data)
            elif isinstance(event, AcceptConnection):
                self.opened.set_result(None)
            elif isinstance(event, Ping):
                self.transport.write(conn.send(event.response()))
            elif isinstance(event, CloseConnection):
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    async def send(self, data: str | bytes) -> None:
        from wsproto.events import BytesMessage, TextMessage

        event = TextMessage(data=data) if isinstance(data, str) else BytesMessage(data=data)
        self.transport.write(self.conn.send(event))

    async def close(self) -> None:
        from wsproto.events import CloseConnection

        self.transport.write(self.conn.send(CloseConnection(code=1000)))
        await self.closed


def connect_raw(url: str) -> Any:
    from raw import RawConnect

    return RawConnect(url, RawClient)


# raw: asyncio with no library, pre-framed bytes (bench/raw.py) -----------------------


async def serve_asyncio_raw(scenario: str, ready: Callable[[int], None]) -> None:
    from raw import RawServer, frame

    def broadcast(connections: list[Any], message: bytes) -> None:
        data = frame(0x2, message)  # one frame for all, one write per connection
        for connection in connections:
            connection.transport.write(data)

    async def send_end(connection: Any) -> None:
        connection.transport.write(frame(0x1, b"end"))

    fanout = Fanout(broadcast, send_end)
    kind = mode(scenario)

    def on_message(connection: Any, opcode: int, payload: bytes) -> None:
        if kind == "echo":
            connection.transport.write(frame(opcode, payload))
        elif kind == "sink":
            if opcode == 0x1 and payload == b"end":
                connection.transport.write(frame(0x1, str(connection.count).encode()))
            else:
                connection.count += 1
        elif payload == b"go":
            fanout.task = asyncio.ensure_future(fanout.go())

    def on_open(connection: Any) -> None:
        if kind == "fanout":
            fanout.connections.append(connection)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: RawServer(on_message, on_open), "127.0.0.1", 0,
                                      backlog=2048)
    ready(server.sockets[0].getsockname()[1])
    await server.serve_forever()


def connect_asyncio_raw(url: str) -> Any:
    from raw import RawConnect

    return RawConnect(url)


# picows: a Cython WebSocket library with a frame-level API ---------------------------


async def serve_picows(scenario: str, ready: Callable[[int], None]) -> None:
    from picows import WSListener, WSMsgType, ws_create_server

    def broadcast(connections: list[Any], message: bytes) -> None:
        for listener in connections:  # no helper in picows: what users write
            listener.transport.send(WSMsgType.BINARY, message)

    async def send_end(listener: Any) -> None:
        listener.transport.send(WSMsgType.TEXT, b"end")

    fanout = Fanout(broadcast, send_end)

    class Server(WSListener):  # type: ignore[misc]
        def on_ws_connected(self, transport: Any) -> None:
            self.transport = transport
            self.count = 0
            if mode(scenario) == "fanout":
                fanout.connections.append(self)

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            # Every bench client sends whole messages, one frame each.
            kind = frame.msg_type
            if kind == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
                transport.disconnect()
            elif kind not in (WSMsgType.TEXT, WSMsgType.BINARY):
                return
            elif mode(scenario) == "echo":
                transport.send(kind, frame.get_payload_as_bytes())
            elif mode(scenario) == "sink":
                if kind == WSMsgType.TEXT and frame.get_payload_as_bytes() == b"end":
                    transport.send(WSMsgType.TEXT, str(self.count).encode())
                else:
                    self.count += 1
            elif frame.get_payload_as_bytes() == b"go":
                fanout.task = asyncio.ensure_future(fanout.go())

    server = await ws_create_server(lambda request: Server(), "127.0.0.1", 0,
                                    max_frame_size=MAX, backlog=2048)
    ready(server.sockets[0].getsockname()[1])
    await server.serve_forever()


class PicowsClient(Inbox):
    """A picows client behind the small API the scenarios use."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    async def __aenter__(self) -> PicowsClient:
        from picows import WSListener, WSMsgType, ws_connect

        client = self

        class Listener(WSListener):  # type: ignore[misc]
            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                if frame.msg_type == WSMsgType.BINARY:
                    client.deliver(frame.get_payload_as_bytes())
                elif frame.msg_type == WSMsgType.TEXT:
                    client.deliver(frame.get_payload_as_utf8_text())
                elif frame.msg_type == WSMsgType.CLOSE:
                    transport.disconnect()

        self.transport, _ = await ws_connect(Listener, self.url, max_frame_size=MAX)
        return self

    def __await__(self) -> Any:
        return self.__aenter__().__await__()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def send(self, data: str | bytes) -> None:
        from picows import WSMsgType

        if isinstance(data, str):
            self.transport.send(WSMsgType.TEXT, data.encode())
        else:
            self.transport.send(WSMsgType.BINARY, data)

    async def close(self) -> None:
        from picows import WSCloseCode

        self.transport.send_close(WSCloseCode.OK)
        await self.transport.wait_disconnected()


def connect_picows(url: str) -> Any:
    return PicowsClient(url)


# The common fast client for fanout: it parses unmasked frames itself --------------


class FastFanoutClient(asyncio.BufferedProtocol):
    def __init__(self, host: str, done: Callable[[int], None]) -> None:
        self.host = host
        self.done = done
        self.buffer = bytearray(256 * 1024)
        self.pending = b""
        self.handshaken = False
        self.count = 0
        self.opened = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            f"GET / HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        data = self.pending + bytes(self.buffer[:nbytes])
        if not self.handshaken:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.pending = data
                return
            self.handshaken = True
            self.opened.set_result(None)
            data = data[end + 4:]
        offset, size = 0, len(data)
        while size - offset >= 2:
            first, length = data[offset], data[offset + 1] & 0x7F
            header = 2
            if length == 126:
                if size - offset < 4:
                    break
                length, header = int.from_bytes(data[offset + 2:offset + 4], "big"), 4
            elif length == 127:
                if size - offset < 10:
                    break
                length, header = int.from_bytes(data[offset + 2:offset + 10], "big"), 10
            if size - offset < header + length:
                break
            if first & 0x0F == 0x01:  # text: "end"
                self.done(self.count)
            elif first & 0x0F == 0x02:
                self.count += 1
            offset += header + length
        self.pending = data[offset:]

    def send_text(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x81, 0x80 | len(payload)]) + mask + masked)


# Client scenarios, on any library's connect() ------------------------------------


async def client_rtt(connect: Callable[[str], Any], url: str) -> dict[str, Any]:
    payload = os.urandom(32)
    async with connect(url) as ws:
        for _ in range(200):
            await ws.send(payload)
            await ws.recv()
        latencies = []
        clock = time.perf_counter
        start = clock()
        deadline = start + RTT_SECONDS
        while True:
            before = clock()
            await ws.send(payload)
            await ws.recv()
            after = clock()
            latencies.append(after - before)
            if after > deadline:
                break
        elapsed = clock() - start
    latencies.sort()
    return {
        "value": len(latencies) / elapsed, "unit": "round trips/s",
        "p50_us": latencies[len(latencies) // 2] * 1e6,
        "p99_us": latencies[int(len(latencies) * 0.99)] * 1e6,
    }


async def client_stream(scenario: str, connect: Callable[[str], Any], url: str) -> dict[str, Any]:
    count, size = STREAM_COUNT[scenario], STREAM_SIZE[scenario]
    payload = os.urandom(size)
    async with connect(url) as ws:
        await ws.send("end")
        await ws.recv()  # warm up and reset: the count starts at 0 next
        start = time.perf_counter()
        for _ in range(count):
            await ws.send(payload)
        await ws.send("end")
        received = int(await ws.recv())
        elapsed = time.perf_counter() - start
    assert received == count, (received, count)
    return {"value": count / elapsed, "unit": "messages/s",
            "mb_s": count * size / elapsed / 1e6}


async def client_large(connect: Callable[[str], Any], url: str) -> dict[str, Any]:
    payload = os.urandom(LARGE_SIZE)
    async with connect(url) as ws:
        start = time.perf_counter()
        for _ in range(LARGE_COUNT):
            await ws.send(payload)
            assert len(await ws.recv()) == LARGE_SIZE
        elapsed = time.perf_counter() - start
    return {"value": LARGE_SIZE * LARGE_COUNT / elapsed / 1e6, "unit": "MB/s"}


async def client_connect(connect: Callable[[str], Any], url: str) -> dict[str, Any]:
    count = 0
    start = time.perf_counter()
    deadline = start + CONNECT_SECONDS
    while time.perf_counter() < deadline:
        async with connect(url):
            pass
        count += 1
    return {"value": count / (time.perf_counter() - start), "unit": "handshakes/s"}


async def client_fanout(connect: Callable[[str], Any], url: str) -> dict[str, Any]:
    clients = [await connect(url) for _ in range(FANOUT_CLIENTS)]
    await asyncio.sleep(0.5)  # let the server register them all

    async def count(ws: Any) -> int:
        received = 0
        while True:
            message = await ws.recv()
            if message == "end":
                return received
            received += 1

    counters = [asyncio.ensure_future(count(ws)) for ws in clients]
    start = time.perf_counter()
    await clients[0].send("go")
    totals = await asyncio.gather(*counters)
    elapsed = time.perf_counter() - start
    await asyncio.gather(*(ws.close() for ws in clients))
    return {"value": sum(totals) / elapsed, "unit": "deliveries/s",
            "delivered": sum(totals) / (FANOUT_CLIENTS * FANOUT_MESSAGES)}


async def client_fanout_fast(url: str) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    host_port = url.split("://", 1)[1].split("/")[0]
    host, port = host_port.split(":")
    totals: list[int] = []
    finished = loop.create_future()

    def done(received: int) -> None:
        totals.append(received)
        if len(totals) == FANOUT_CLIENTS and not finished.done():
            finished.set_result(None)

    clients = []
    for _ in range(FANOUT_CLIENTS):
        _, client = await loop.create_connection(
            lambda: FastFanoutClient(host_port, done), host, int(port))
        await client.opened
        clients.append(client)
    await asyncio.sleep(0.5)
    start = time.perf_counter()
    clients[0].send_text("go")
    await finished
    elapsed = time.perf_counter() - start
    for client in clients:
        client.transport.abort()
    return {"value": sum(totals) / elapsed, "unit": "deliveries/s",
            "delivered": sum(totals) / (FANOUT_CLIENTS * FANOUT_MESSAGES)}


SERVERS = {"websockets_lite": serve_lite, "websockets": serve_websockets,
           "aiohttp": serve_aiohttp, "wsproto-raw": serve_raw, "picows": serve_picows,
           "raw": serve_asyncio_raw}
CONNECTS = {"websockets_lite": connect_lite, "websockets": connect_websockets,
            "aiohttp": connect_aiohttp, "wsproto-raw": connect_raw, "picows": connect_picows,
            "raw": connect_asyncio_raw}


async def run_client(library: str, scenario: str, url: str) -> dict[str, Any]:
    if library == "fast":
        return await client_fanout_fast(url)
    connect = CONNECTS[library]
    if scenario == "rtt":
        return await client_rtt(connect, url)
    if scenario in STREAM_COUNT:
        return await client_stream(scenario, connect, url)
    if scenario == "large":
        return await client_large(connect, url)
    if scenario == "connect":
        return await client_connect(connect, url)
    return await client_fanout(connect, url)


def use_other_copy() -> None:
    """BENCH_LITE_PATH=DIR measures the websockets_lite found in DIR (a
    worktree of another commit, say) instead of the installed one."""
    path = os.environ.get("BENCH_LITE_PATH")
    if path:
        sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
        sys.path.insert(0, path)


def main() -> None:
    global SCENARIO
    use_other_copy()
    role, library, scenario = sys.argv[1:4]
    SCENARIO = scenario
    # Peers log every connection a benchmark client drops: not news here.
    logging.disable(logging.ERROR)
    if os.environ.get("BENCH_UVLOOP"):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if role == "server":
        def ready(port: int) -> None:
            print(f"PORT {port}", flush=True)

        asyncio.run(SERVERS[library](scenario, ready))
    else:
        result = asyncio.run(run_client(library, scenario, sys.argv[4]))
        print(json.dumps(result))


if __name__ == "__main__":
    main()
