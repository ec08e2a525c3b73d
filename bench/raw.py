"""The raw asyncio limit: a WebSocket server and client with no library.

An ``asyncio.Protocol`` that parses the frames the bench clients send (one
frame per message, no fragments, no compression, no checks) and writes
pre-framed ``bytes``: what asyncio itself costs, the reference point of
every scenario. Unmasking uses the fastest routine installed (websockets'
C ``apply_mask``), as a library with its speedups would.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
from collections.abc import Callable
from typing import Any

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover

    def apply_mask(data: bytes | bytearray | memoryview, mask: bytes) -> bytes:
        size = len(data)
        key = int.from_bytes((bytes(mask) * (size // 4 + 1))[:size], "little")
        return (int.from_bytes(data, "little") ^ key).to_bytes(size, "little")


GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode: int, payload: bytes, mask: bool = False) -> bytes:
    """One whole frame (FIN set); a client masks."""
    size = len(payload)
    bit = 0x80 if mask else 0
    if size < 126:
        header = bytes((0x80 | opcode, bit | size))
    elif size < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, bit | 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, bit | 127, size)
    if not mask:
        return header + payload
    key = os.urandom(4)
    return header + key + apply_mask(payload, key)


def parse(buffer: bytearray) -> tuple[list[tuple[int, bytes]], int]:
    """The whole frames at the front of ``buffer`` and the bytes they take."""
    frames: list[tuple[int, bytes]] = []
    offset, size = 0, len(buffer)
    while size - offset >= 2:
        first, second = buffer[offset], buffer[offset + 1]
        length, header = second & 0x7F, 2
        if length == 126:
            if size - offset < 4:
                break
            length, header = int.from_bytes(buffer[offset + 2 : offset + 4], "big"), 4
        elif length == 127:
            if size - offset < 10:
                break
            length, header = int.from_bytes(buffer[offset + 2 : offset + 10], "big"), 10
        masked = second & 0x80
        if masked:
            header += 4
        end = offset + header + length
        if size < end:
            break
        with memoryview(buffer) as view:
            payload = view[offset + header : end]
            if masked:
                key = bytes(view[offset + header - 4 : offset + header])
                data = apply_mask(payload, key)
            else:
                data = bytes(payload)
            payload.release()
        frames.append((first & 0x0F, data))
        offset = end
    return frames, offset


class RawServer(asyncio.Protocol):
    """One connection: ``on_message(self, opcode, payload)`` handles data."""

    def __init__(self, on_message: Callable[[RawServer, int, bytes], None],
                 on_open: Callable[[RawServer], None] | None = None) -> None:
        self.on_message = on_message
        self.on_open = on_open
        self.buffer = bytearray()
        self.open = False
        self.count = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.open:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1")
            del self.buffer[: end + 4]
            key = next(line.split(":", 1)[1].strip() for line in head.split("\r\n")
                       if line.lower().startswith("sec-websocket-key:"))
            accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
            self.transport.write(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n".encode())
            self.open = True
            if self.on_open is not None:
                self.on_open(self)
        frames, used = parse(self.buffer)
        if used:
            del self.buffer[:used]
        for opcode, payload in frames:
            if opcode == 0x8:
                self.transport.write(frame(0x8, payload[:2]))
                self.transport.close()
                return
            if opcode == 0x9:
                self.transport.write(frame(0xA, payload))
            elif opcode in (0x1, 0x2):
                self.on_message(self, opcode, payload)


class RawClient(asyncio.Protocol):
    """A client with one waiter: ``send()`` and ``recv()`` of whole messages."""

    def __init__(self, host: str, path: str) -> None:
        loop = asyncio.get_running_loop()
        self.host, self.path = host, path
        self.buffer = bytearray()
        self.messages: list[str | bytes] = []
        self.waiter: asyncio.Future[None] | None = None
        self.opened = loop.create_future()
        self.closed = loop.create_future()
        self.writable: asyncio.Future[None] | None = None

    def pause_writing(self) -> None:
        self.writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)
        self.writable = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.opened.done():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            del self.buffer[: end + 4]
            self.opened.set_result(None)
        frames, used = parse(self.buffer)
        if used:
            del self.buffer[:used]
        for opcode, payload in frames:
            if opcode == 0x1:
                self.messages.append(payload.decode())
            elif opcode == 0x2:
                self.messages.append(payload)
            elif opcode == 0x8:
                self.transport.close()
        if self.messages and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        self.resume_writing()

    async def send(self, data: str | bytes) -> None:
        if isinstance(data, str):
            self.transport.write(frame(0x1, data.encode(), mask=True))
        else:
            self.transport.write(frame(0x2, data, mask=True))
        if self.writable is not None:  # flow control, as every client has
            await self.writable

    async def recv(self) -> str | bytes:
        while not self.messages:
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        return self.messages.pop(0)

    async def close(self) -> None:
        self.transport.write(frame(0x8, b"\x03\xe8", mask=True))
        await self.closed


class RawConnect:
    """``connect(url)`` for the raw client (or another ``client(hostport,
    path)`` protocol with ``opened`` and ``close()``, as bench/peers.py's
    wsproto one): await it or use ``async with``."""

    def __init__(self, url: str, client: Callable[[str, str], Any] | None = None) -> None:
        self.hostport, _, path = url.split("://", 1)[1].partition("/")
        self.path = "/" + path
        self.factory = client or RawClient

    async def __aenter__(self) -> Any:
        host, port = self.hostport.split(":")
        _, self.client = await asyncio.get_running_loop().create_connection(
            lambda: self.factory(self.hostport, self.path), host, int(port))
        await self.client.opened
        return self.client

    def __await__(self) -> Any:
        return self.__aenter__().__await__()

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()
