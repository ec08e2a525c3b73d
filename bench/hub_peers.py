"""Processes of bench/hub.py: pub/sub servers, the common client, the publisher.

    python bench/hub_peers.py server PEER REDIS_URL [--history N]
        serves on 127.0.0.1, prints "PORT n"; stdin commands: cpu, stats
    python bench/hub_peers.py client KIND --connections N URL [URL ...]
        opens N connections round-robin over the URLs, prints one JSON line;
        stdin commands: status, final SEQ, report
    python bench/hub_peers.py publish PEER REDIS_URL --rate R --duration S [--history N]
        publishes warm-up messages until "go" on stdin, then R msg/s (0: back
        to back) for S seconds, and prints one JSON line

Peers: websockets_lite (Hub + RedisBackend, history off), websockets_lite+history
(the same with history on), python-socketio (AsyncServer on aiohttp with
AsyncRedisManager, clients in one room), broadcaster (Broadcast on Redis,
Starlette WebSocket endpoints on uvicorn). Every server runs on the default
asyncio loop, with compression and keepalive pings off.

Every message is 100 bytes of text that ends with "@SEQUENCE,TIMESTAMP#"
(10 and 16 digits; the timestamp is time.time() in microseconds when the
publisher calls publish). Sequence 0 is a warm-up message, outside any count.
The client (KIND "ws" or "sio", for Engine.IO v4 / Socket.IO over WebSocket)
is the same for every peer: it does not parse frames, it finds these markers
in what it reads, so each peer's framing (a position prefix, Socket.IO's
42["m", ...]) costs it the same.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import os
import resource
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

TOPIC = "bench"
PEERS = ("websockets_lite", "websockets_lite+history", "python-socketio", "broadcaster")
MESSAGE_SIZE = 100
MARKER_END = b"#"
#: Timestamps are compared modulo 10,000 s (their last 10 digits).
MODULUS = 10**10


def message(seq: int, ts_us: int) -> str:
    """The 100-byte message: padding, then the marker the clients look for."""
    marker = f"@{seq:010d},{ts_us:016d}#"
    return "x" * (MESSAGE_SIZE - len(marker)) + marker


# Latency histogram buckets: 10 µs wide below 1 s, then 10 ms wide up to 10 min.
FINE_BUCKETS, FINE_US = 100_000, 10
COARSE_BUCKETS, COARSE_US = 60_000, 10_000
BUCKETS = FINE_BUCKETS + COARSE_BUCKETS


def bucket_value_us(bucket: int) -> float:
    """The middle of a latency bucket, in microseconds."""
    if bucket < FINE_BUCKETS:
        return (bucket + 0.5) * FINE_US
    return FINE_BUCKETS * FINE_US + (bucket - FINE_BUCKETS + 0.5) * COARSE_US


async def stdin_lines() -> Any:
    """An async iterator over the lines of stdin (the orchestrator's commands)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        yield line.decode().strip()


def reply(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def command_loop(handlers: dict[str, Callable[[list[str]], Any]]) -> None:
    async for line in stdin_lines():
        if not line:
            continue
        name, *args = line.split()
        result = handlers[name](args)
        if asyncio.iscoroutine(result):
            result = await result
        reply(result)
    os._exit(0)  # the orchestrator closed our stdin: it is done with us


async def server_commands(stats: Callable[[], dict[str, Any]]) -> None:
    """Answer the orchestrator from a thread: a busy server loop (one that
    drains a backlog without yielding) must not delay the CPU reading."""
    def answer() -> None:
        for line in sys.stdin:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            cpu = {"cpu": usage.ru_utime + usage.ru_stime, "sys": usage.ru_stime}
            if line.strip() == "cpu":
                reply(cpu)
            elif line.strip() == "stats":
                # Read-only looks at the loop's objects; the GIL keeps each consistent.
                reply({**cpu, **stats()})
        os._exit(0)

    threading.Thread(target=answer, daemon=True).start()
    await asyncio.Event().wait()


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


# Servers -----------------------------------------------------------------------


class WarningCounter(logging.Handler):
    """Counts the warnings a library logs (a backend lost, a refill...)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self.last = record.getMessage()[:200]


def position_formatter(topic: str, position: Any, message: Any) -> str:
    """What a real application sends with history on: the position, so that a
    client can resume from it. Used with history off too, so that both send
    the same bytes."""
    return f"{position}|{message}"


async def serve_lite(url: str, history: int, ready: Callable[[int], None]) -> dict[str, Any]:
    import websockets_lite as lib
    from websockets_lite.pubsub import Hub, RedisBackend

    warnings = WarningCounter()
    logging.getLogger("websockets_lite").addHandler(warnings)
    hub = Hub(RedisBackend(url, history_size=history), formatter=position_formatter)
    await hub.start()
    connections: set[Any] = set()

    async def handler(ws: Any) -> None:
        connections.add(ws)
        try:
            async with hub.subscribe(ws, TOPIC):
                async for _ in ws:
                    pass
        finally:
            connections.discard(ws)

    sock = listening_socket()
    server = await lib.serve(handler, sock=sock, compression=None, ping_interval=None)
    ready(sock.getsockname()[1])

    def stats() -> dict[str, Any]:
        topic = hub._topics.get(TOPIC)
        live = sum(len(group) for group in list(topic.groups.values())) if topic else 0
        current = list(connections)
        return {
            "connections": len(current),
            "skipped": sum(ws.broadcasts_skipped for ws in current),
            "live_subscribers": live,
            "warnings": warnings.count, "last_warning": warnings.last,
        }

    await server_commands(stats)
    server.close()
    return {}


async def serve_socketio(url: str, history: int, ready: Callable[[int], None]) -> None:
    import socketio
    from aiohttp import web

    manager = socketio.AsyncRedisManager(url)
    # Engine.IO pings off in effect (as keepalive is off for every peer):
    # a ping queued behind a long backlog would otherwise close connections.
    sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager,
                               ping_interval=3600, ping_timeout=3600,
                               logger=False, engineio_logger=False)

    @sio.event  # type: ignore[untyped-decorator]
    async def connect(sid: str, environ: Any, auth: Any = None) -> None:
        await sio.enter_room(sid, TOPIC)

    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = listening_socket()
    site = web.SockSite(runner, sock)
    await site.start()
    ready(sock.getsockname()[1])

    def stats() -> dict[str, Any]:
        sockets = list(sio.eio.sockets.values())
        return {"connections": len(sockets),
                "queued": sum(s.queue.qsize() for s in sockets)}

    await server_commands(stats)


def fixed_broadcaster_backend(url: str) -> Any:
    """broadcaster 0.3.1's Redis backend, with its first subscribe fixed.

    As installed, ``subscribe()`` wakes the listener before the SUBSCRIBE is
    sent; with redis-py 8, ``PubSub.listen()`` returns at once while no
    channel is subscribed, so the listener goes back to waiting for a wake-up
    that never comes, and nothing is ever delivered. Here the wake-up comes
    after the SUBSCRIBE.
    """
    from broadcaster._backends.redis import RedisBackend

    class Fixed(RedisBackend):  # type: ignore[misc]
        async def subscribe(self, channel: str) -> None:
            await self._pubsub.subscribe(channel)
            self._ready.set()

    return Fixed(url)


async def serve_broadcaster(url: str, history: int, ready: Callable[[int], None]) -> None:
    import uvicorn
    from broadcaster import Broadcast
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    broadcast = Broadcast(backend=fixed_broadcaster_backend(url))
    await broadcast.connect()

    # Second workaround: when many endpoints subscribe to a channel before the
    # first SUBSCRIBE returns, each replaces the channel's set of queues and
    # all but the last are dropped. One subscription held from the start
    # makes every endpoint add itself to the set instead.
    held = asyncio.get_running_loop().create_future()

    async def hold() -> None:
        async with broadcast.subscribe(TOPIC) as subscriber:
            held.set_result(None)
            async for _ in subscriber:
                pass

    holder = asyncio.create_task(hold())
    await held

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        async with broadcast.subscribe(TOPIC) as subscriber:
            async for event in subscriber:
                await websocket.send_text(event.message)

    app = Starlette(routes=[WebSocketRoute("/", endpoint)])
    config = uvicorn.Config(app, ws="auto", ws_ping_interval=None, ws_ping_timeout=None,
                            lifespan="off", log_level="error", access_log=False)
    server = uvicorn.Server(config)
    sock = listening_socket()
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.05)
    ready(sock.getsockname()[1])

    def stats() -> dict[str, Any]:
        queues = list(broadcast._subscribers.get(TOPIC, set()))
        return {"connections": len(queues) - 1,
                "queued": sum(queue.qsize() for queue in queues)}

    await server_commands(stats)
    del holder, serving


SERVERS: dict[str, Callable[[str, int, Callable[[int], None]], Awaitable[Any]]] = {
    "websockets_lite": serve_lite, "websockets_lite+history": serve_lite,
    "python-socketio": serve_socketio, "broadcaster": serve_broadcaster,
}


# Publisher ---------------------------------------------------------------------


async def publisher(peer: str, url: str, history: int) -> Callable[[str], Awaitable[Any]]:
    """Each peer's own way to publish from a process without clients."""
    if peer.startswith("websockets_lite"):
        from websockets_lite.pubsub import Hub, RedisBackend

        hub = Hub(RedisBackend(url, history_size=history))
        await hub.start()
        return lambda text: hub.publish(TOPIC, text)
    if peer == "python-socketio":
        import socketio

        manager = socketio.AsyncRedisManager(url, write_only=True)
        return lambda text: manager.emit("m", text, room=TOPIC, namespace="/")
    if peer == "broadcaster":
        from broadcaster import Broadcast

        broadcast = Broadcast(url)  # publishing works as installed
        await broadcast.connect()
        return lambda text: broadcast.publish(TOPIC, text)
    raise ValueError(peer)


async def run_publisher(peer: str, url: str, rate: float, duration: float, history: int) -> None:
    publish = await publisher(peer, url, history)
    go = asyncio.Event()

    async def commands() -> None:
        async for line in stdin_lines():
            if line == "go":
                go.set()
        os._exit(0)

    reader = asyncio.create_task(commands())
    reply({"ready": True})
    while not go.is_set():  # warm-up: sequence 0, until every client got one
        await publish(message(0, int(time.time() * 1e6)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(go.wait(), 0.05)
    cpu = time.process_time()
    start = time.time()
    end = start + duration
    seq = 0
    ts_us = 0
    if rate > 0:
        interval = 1 / rate
        count = int(duration * rate)
        for seq in range(1, count + 1):
            delay = start + (seq - 1) * interval - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            ts_us = int(time.time() * 1e6)
            await publish(message(seq, ts_us))
    else:  # back to back: the highest rate this publisher sustains
        while time.time() < end:
            seq += 1
            ts_us = int(time.time() * 1e6)
            await publish(message(seq, ts_us))
    finished = time.time()
    reply({"published": seq, "t_go": start, "t_end": finished, "ts_final_us": ts_us,
           "rate": seq / (finished - start), "cpu": time.process_time() - cpu})
    await reader


# The common client -------------------------------------------------------------


class Receiver:
    """What one client process received, over all its connections.

    A read costs one copy and a few appends, whatever it holds: each read's
    bytes up to its last complete marker are kept with its time and its
    connection, and every 100 ms (and on demand) numpy finds and decodes the
    markers of all of them at once. Per connection, sequences must follow
    one another: a gap is recorded as missing, an earlier sequence as late if
    it was missing, else as a duplicate. Each latency is the read's time
    minus the message's timestamp.
    """

    def __init__(self, connections: int) -> None:
        import numpy as np

        self.np = np
        self.size = connections
        self.buffer = bytearray(256 * 1024)
        self.view = memoryview(self.buffer)
        self.chunks: list[bytes] = []
        self.times: list[float] = []
        self.owners: list[int] = []
        self.expected = np.ones(connections, np.int64)
        self.newest_ts = np.zeros(connections, np.int64)
        self.warmed = np.zeros(connections, bool)
        self.missing: dict[int, set[int]] = {}
        self.late = 0
        self.duplicates = 0
        self.malformed = 0
        self.delivered = 0
        self.reads = 0
        self.last_received = 0.0
        self.histogram = np.zeros(BUCKETS, np.int64)
        #: Where the digits kept are, from each "@": 7 of the sequence, 10 of the timestamp.
        self.span = np.r_[4:11, 18:28]
        self.closed = 0
        self.opened = 0
        self.final: int | None = None

    def digits(self, marker: Any, first: int, count: int) -> Any:
        """The decimal number in columns ``first`` to ``first + count`` of each row."""
        np = self.np
        value = np.zeros(len(marker), np.int64)
        for column in range(first, first + count):
            value *= 10
            value += marker[:, column]
        return value

    def process(self) -> None:
        np = self.np
        if not self.chunks:
            return
        chunks, self.chunks = self.chunks, []
        times, self.times = self.times, []
        owners, self.owners = self.owners, []
        self.reads += len(chunks)
        data = np.frombuffer(b"".join(chunks), np.uint8)
        # "@" + 10 digits + "," + 16 digits + "#": a read holds whole markers.
        at = np.flatnonzero(data == 64)
        at = at[at + 28 < len(data)]
        valid = (data[at + 11] == 44) & (data[at + 28] == 35)
        if not valid.all():  # never seen: an "@" outside a marker
            self.malformed += int((~valid).sum())
            at = at[valid]
        if not len(at):
            return
        self.last_received = max(self.last_received, max(times))
        chunk = np.searchsorted(np.cumsum([len(c) for c in chunks]), at, side="right")
        # The last 7 digits of the sequence, the last 10 of the timestamp
        # (microseconds modulo 10,000 s): enough, and fewer columns to decode.
        marker = data[at[:, None] + self.span] - 48
        seq = self.digits(marker, 0, 7)
        ts = self.digits(marker, 7, 10)
        received = (np.array(times)[chunk] * 1e6).astype(np.int64) % MODULUS
        owner = np.array(owners, np.int64)[chunk]
        warm = seq == 0
        if warm.any():
            self.warmed[owner[warm]] = True
            keep = ~warm
            seq, ts, received, owner = seq[keep], ts[keep], received[keep], owner[keep]
            if not len(seq):
                return
        latency = (received - ts) % MODULUS
        buckets = np.where(
            latency < FINE_BUCKETS * FINE_US, latency // FINE_US,
            FINE_BUCKETS + np.minimum((latency - FINE_BUCKETS * FINE_US) // COARSE_US,
                                      COARSE_BUCKETS - 1))
        self.histogram += np.bincount(buckets, minlength=BUCKETS)
        # Per connection, in the order received.
        order = np.argsort(owner, kind="stable")
        owner, seq, ts = owner[order], seq[order], ts[order]
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        sizes = np.diff(np.r_[starts, len(owner)])
        groups = owner[starts]
        rank = np.arange(len(owner)) - np.repeat(starts, sizes)
        wrong = seq != self.expected[owner] + rank
        self.newest_ts[groups] = np.maximum(self.newest_ts[groups],
                                            np.maximum.reduceat(ts, starts))  # modulo: see report
        if not wrong.any():
            self.expected[groups] += sizes
            self.delivered += len(seq)
            return
        bad = set(owner[wrong].tolist())
        for group, start, size in zip(groups.tolist(), starts.tolist(), sizes.tolist(),
                                      strict=True):
            if group not in bad:
                self.expected[group] += size
                self.delivered += size
                continue
            expected = int(self.expected[group])
            missing = self.missing.setdefault(group, set())
            for s in seq[start:start + size].tolist():
                if s == expected:
                    expected += 1
                    self.delivered += 1
                elif s > expected:
                    missing.update(range(expected, s))
                    expected = s + 1
                    self.delivered += 1
                elif s in missing:
                    missing.discard(s)
                    self.late += 1
                    self.delivered += 1
                else:
                    self.duplicates += 1
            self.expected[group] = expected

    def status(self) -> dict[str, Any]:
        self.process()
        complete = 0
        if self.final is not None:
            complete = int((self.expected > self.final).sum())
        return {"opened": self.opened, "warmed": int(self.warmed.sum()),
                "delivered": self.delivered, "complete": complete,
                "last_received": self.last_received, "closed": self.closed,
                "reads": self.reads, "malformed": self.malformed,
                "cpu": time.process_time()}

    def report(self, ts_final_us: int) -> dict[str, Any]:
        np = self.np
        status = self.status()
        final = self.final or 0
        tail = np.maximum(final - (self.expected - 1), 0)
        behind = np.where(tail > 0, (ts_final_us - self.newest_ts) % MODULUS, 0)
        nonzero = np.flatnonzero(self.histogram)
        return {
            **status,
            "gaps": sum(len(m) for m in self.missing.values()),
            "tail": int(tail.sum()), "late": self.late, "duplicates": self.duplicates,
            "behind_us": int(behind.max()) if len(behind) else 0,
            "histogram": dict(zip(nonzero.tolist(), self.histogram[nonzero].tolist(),
                                  strict=True)),
        }


class Client(asyncio.BufferedProtocol):
    """One connection: a raw WebSocket client that parses no frame; its
    process finds the markers in what it reads."""

    def __init__(self, receiver: Receiver, index: int, host: str, path: str,
                 socketio: bool) -> None:
        self.receiver = receiver
        self.index = index
        self.host = host
        self.path = path
        self.socketio = socketio
        self.pending = b""
        self.open = False
        self.opened = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.receiver.buffer

    def buffer_updated(self, nbytes: int) -> None:
        now = time.time()
        receiver = self.receiver
        data = self.pending + receiver.view[:nbytes]
        if not self.open:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.pending = data
                return
            if not data.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(ConnectionError(data[:end].decode(errors="replace")))
                self.transport.abort()
                return
            self.open = True
            data = data[end + 4:]
            if self.socketio:
                self.send_text("40")  # connect to the default namespace
            receiver.opened += 1
            self.opened.set_result(None)
        if self.socketio and b"\x81\x012" in data:
            self.send_text("3")  # Engine.IO pong (pings are 1 h apart: never in a run)
        cut = data.rfind(MARKER_END) + 1  # after the last complete marker
        if cut:
            receiver.chunks.append(data if cut == len(data) else data[:cut])
            receiver.times.append(now)
            receiver.owners.append(self.index)
            data = data[cut:]
        self.pending = data[-1024:] if len(data) > 1024 else data

    def send_text(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.open:
            self.receiver.closed += 1
        elif not self.opened.done():
            self.opened.set_exception(ConnectionError("closed during the handshake"))


async def run_client(kind: str, connections: int, urls: list[str]) -> None:
    loop = asyncio.get_running_loop()
    receiver = Receiver(connections)
    path = "/socket.io/?EIO=4&transport=websocket" if kind == "sio" else "/"
    clients: list[Client] = []
    limit = asyncio.Semaphore(64)

    async def open_one(index: int) -> None:
        hostport = urls[index % len(urls)].split("://", 1)[1].split("/")[0]
        host, port = hostport.rsplit(":", 1)
        async with limit:
            _, client = await loop.create_connection(
                lambda: Client(receiver, index, hostport, path, kind == "sio"), host, int(port))
            await client.opened
        clients.append(client)

    await asyncio.gather(*(open_one(i) for i in range(connections)))
    reply({"ready": len(clients)})

    async def tick() -> None:
        while True:
            await asyncio.sleep(0.1)
            receiver.process()

    ticker = asyncio.create_task(tick())

    def final(args: list[str]) -> dict[str, Any]:
        receiver.final = int(args[0])
        return {"ok": True}

    await command_loop({
        "status": lambda args: receiver.status(),
        "final": final,
        "report": lambda args: receiver.report(int(args[0])),
    })
    del ticker


# Main --------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="role", required=True)
    server = sub.add_parser("server")
    server.add_argument("peer", choices=PEERS)
    server.add_argument("url")
    server.add_argument("--history", type=int, default=0)
    client = sub.add_parser("client")
    client.add_argument("kind", choices=("ws", "sio"))
    client.add_argument("urls", nargs="+")
    client.add_argument("--connections", type=int, required=True)
    client.add_argument("--asyncio", action="store_true", help="not uvloop")
    publish = sub.add_parser("publish")
    publish.add_argument("peer", choices=PEERS)
    publish.add_argument("url")
    publish.add_argument("--rate", type=float, required=True)
    publish.add_argument("--duration", type=float, required=True)
    publish.add_argument("--history", type=int, default=0)
    args = parser.parse_args()
    # Peers log every connection a benchmark client drops: not news here.
    logging.disable(logging.INFO)

    if args.role == "server":
        def ready(port: int) -> None:
            print(f"PORT {port}", flush=True)

        asyncio.run(SERVERS[args.peer](args.url, args.history, ready))
    elif args.role == "client":
        # The instrument, not the measured: uvloop when available, to read
        # 1,000,000 deliveries per second with as little CPU as possible.
        if not args.asyncio:
            try:
                import uvloop

                asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
            except ImportError:
                pass
        asyncio.run(run_client(args.kind, args.connections, args.urls))
    else:
        asyncio.run(run_publisher(args.peer, args.url, args.rate, args.duration, args.history))


if __name__ == "__main__":
    main()
