"""Testing WebSocket handlers without opening ports.

:func:`connect` drives a handler (or a ``serve()``/``route()`` setup, or an
ASGI app) as a client would, over a pair of in-memory transports that run
the real connection and protocol code: limits, backpressure, keepalive and
closes behave as on a socket. :meth:`TestClient.send_frame` and
:meth:`TestClient.send_raw` send what a real client would not, to test how
the handler treats bad input.

::

    from websockets_lite import testing

    async def test_echo():
        async with testing.connect(echo) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"

What differs from a socket: there are no kernel buffers, so the write side
pushes back as soon as the peer stops reading (on a socket, the kernel
first absorbs a few hundred KiB); reads arrive in chunks of up to 256 KiB,
one per loop iteration; there is no TLS; the only network failure is
:meth:`TestClient.drop` (a reset). Everything runs on the event loop's
clock: with a fake clock (the ``looptime`` pytest plugin) keepalive and
timeouts fire without real waiting, see :doc:`/howto/testing`.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os
import struct
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any

from .asgi_server import ASGIServerProtocol
from .client import ClientProtocol
from .exceptions import ConnectionClosed
from .flow import READ_CHUNK
from .http import HeadersLike
from .options import LOW_LEVEL, Options
from .protocol import State, frames
from .server import Handler, HandshakePolicy, ServerProtocol, serve

__all__ = ["MemoryTransport", "TestClient", "connect", "pair"]

_ports = itertools.count(50000)


class MemoryTransport(asyncio.Transport):
    """One end of an in-memory connection, delivering to the other end's
    protocol on the next loop iterations, with flow control both ways."""

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str) -> None:
        super().__init__()
        self._loop = loop
        self._protocol: Any = None
        self._peer: MemoryTransport | None = None
        self._buffer = bytearray()
        self._reading = True
        self._closing = False
        self._lost = False
        self._eof = False  # after the buffer, the peer gets an EOF
        self._eof_sent = False
        self._scheduled = False
        self._high, self._low = 2**16, 2**14
        self._writing_paused = False
        self._extra = {"peername": ("memory", next(_ports)), "sockname": (name, next(_ports))}

    def link(self, peer: MemoryTransport) -> None:
        self._peer = peer
        self._extra["peername"] = peer._extra["sockname"]

    # BaseTransport.

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def close(self) -> None:
        if not self._closing and not self._lost:
            self._closing = self._eof = True
            self._schedule()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol  # type: ignore[no-any-return]

    # ReadTransport.

    def is_reading(self) -> bool:
        return self._reading and not self._lost

    def pause_reading(self) -> None:
        self._reading = False

    def resume_reading(self) -> None:
        if not self._reading:
            self._reading = True
            if self._peer is not None:
                self._peer._schedule()

    # WriteTransport.

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high = 2**16 if high is None else high
        self._low = self._high // 4 if low is None else low
        self._check_writing()

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._eof or self._lost:
            return  # as a socket transport: written after close, dropped
        self._buffer += data
        self._check_writing()
        self._schedule()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if not self._eof:
            self._eof = True
            self._schedule()

    def abort(self) -> None:
        """Drop the connection now: our protocol loses it, the peer's gets a reset."""
        if self._lost:
            return
        self._buffer.clear()
        self._lose(None)
        peer = self._peer
        if peer is not None:
            peer._lose(ConnectionResetError("connection reset by peer"))

    # Delivery.

    def _schedule(self) -> None:
        if not self._scheduled and not self._lost:
            self._scheduled = True
            self._loop.call_soon(self._deliver)

    def _deliver(self) -> None:
        self._scheduled = False
        peer = self._peer
        if self._lost or peer is None:
            return
        if self._buffer and peer._reading and not peer._lost:
            view = peer._protocol.get_buffer(len(self._buffer))
            size = min(len(view), len(self._buffer), READ_CHUNK)
            view[:size] = self._buffer[:size]
            del self._buffer[:size]
            peer._protocol.buffer_updated(size)
            self._check_writing()
            if self._buffer:
                self._schedule()  # one read per loop iteration, as from a socket
                return
        if self._buffer:
            return  # the peer resumes reading later and schedules us
        if self._eof and not self._eof_sent:
            self._eof_sent = True
            if not peer._lost and not peer._protocol.eof_received():
                peer.close()
        if self._closing:
            self._lose(None)

    def _check_writing(self) -> None:
        size = len(self._buffer)
        if not self._writing_paused and size > self._high:
            self._writing_paused = True
            self._protocol.pause_writing()
        elif self._writing_paused and size <= self._low:
            self._writing_paused = False
            self._protocol.resume_writing()

    def _lose(self, exc: Exception | None) -> None:
        if not self._lost:
            self._lost = True
            self._loop.call_soon(self._protocol.connection_lost, exc)


def pair(client: asyncio.BaseProtocol, server: asyncio.BaseProtocol) -> None:
    """Connect two protocols through in-memory transports: each gets its
    ``connection_made``, the server first."""
    loop = asyncio.get_running_loop()
    client_end = MemoryTransport(loop, "client")
    server_end = MemoryTransport(loop, "server")
    client_end.link(server_end)
    server_end.link(client_end)
    client_end.set_protocol(client)
    server_end.set_protocol(server)
    server.connection_made(server_end)
    client.connection_made(client_end)


class TestClient(ClientProtocol):
    """The client end of :func:`connect`: a normal connection, plus ways to
    send what a normal client would not, and the server end for assertions."""

    __slots__ = ("_server",)
    _server: ServerProtocol

    @property
    def server(self) -> ServerProtocol:
        """The server's connection (its ``stats``, ``close_cause``...)."""
        return self._server

    def send_frame(
        self, opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0,
        mask: bool = True, length: int | None = None,
    ) -> None:
        """Write one frame as given, valid or not: ``rsv`` is the 3 RSV bits,
        ``mask=False`` leaves it unmasked (a protocol error from a client),
        ``length`` lies about the payload's size."""
        size = len(payload) if length is None else length
        head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
        bit = 0x80 if mask else 0
        if size < 126:
            head += bytes([bit | size])
        elif size < 2**16:
            head += bytes([bit | 126]) + struct.pack("!H", size)
        else:
            head += bytes([bit | 127]) + struct.pack("!Q", size)
        if mask:
            key = os.urandom(4)
            self.send_raw(head + key + frames.mask(payload, key))
        else:
            self.send_raw(head + payload)

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are."""
        self.transport.write(data)

    def drop(self) -> None:
        """Vanish without a closing handshake: the server sees a reset."""
        self.abort()


Target = Handler | serve | Callable[..., Awaitable[None]]


class connect:
    """Connect a :class:`TestClient` in memory to ``target``, as
    ``async with`` or ``await``.

    ``target`` is a connection handler; or a ``serve(...)`` (or
    ``route(...)``) made but not started, whose handler, limits and
    handshake settings apply; or an ASGI app (``app(scope, receive,
    send)``, Starlette and FastAPI apps included). ``path``, ``headers``,
    ``subprotocols`` and the other keyword arguments (limits, timeouts:
    none by default) are the client's, as for
    :class:`~websockets_lite.ClientProtocol`. Leaving the block closes the
    client, waits for the handler (or app) to finish, and raises what it
    raised, other than the connection's own end.
    """

    def __init__(
        self,
        target: Any,
        path: str = "/",
        *,
        headers: HeadersLike | None = None,
        subprotocols: Sequence[str] | None = None,
        **options: Any,
    ) -> None:
        self.target = target
        self.path = path
        self.headers = headers
        self.subprotocols = subprotocols
        # A bound on the closing handshake, so that a handler that never
        # closes fails the test rather than hanging it.
        options.setdefault("disconnect_timeout", 5)
        self.options = options
        self.client: TestClient | None = None
        self._errors: list[BaseException] = []
        self._server: ServerProtocol | None = None

    def _server_end(self) -> ServerProtocol:
        target = self.target
        if isinstance(target, serve):
            handler = self._recording(target.handler)
            factory = target.create_connection or ServerProtocol
            return factory(handler, options=target.options, policy=target.policy,
                           logger=target.logger)
        if not callable(target):
            raise TypeError(f"cannot connect to {type(target).__name__}: expected a handler, "
                            "a serve() or route() setup, or an ASGI app")
        if _is_asgi(target):
            return _RecordingASGI(self._errors, target, options=Options.build(LOW_LEVEL))
        return ServerProtocol(self._recording(target), options=Options.build(LOW_LEVEL),
                              policy=HandshakePolicy())

    def _recording(self, handler: Any) -> Handler:
        errors = self._errors

        async def recording(ws: ServerProtocol, **arguments: Any) -> None:
            try:
                await handler(ws, **arguments)
            except ConnectionClosed:
                if ws.state is State.OPEN:
                    errors.append(ConnectionError("a ConnectionClosed of another connection"))
                raise
            except BaseException as exc:
                errors.append(exc)
                raise

        return recording

    async def _open(self) -> TestClient:
        self._server = server = self._server_end()
        client = TestClient(
            "ws://testserver" + self.path, subprotocols=self.subprotocols,
            additional_headers=self.headers, **self.options,
        )
        client._server = server
        pair(client, server)
        await client.handshake()
        self.client = client
        return client

    def __await__(self) -> Any:
        return self._open().__await__()

    async def __aenter__(self) -> TestClient:
        return await self._open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.client is not None and self._server is not None
        await self.client.close()
        server = self._server
        task = server._task
        if task is not None:
            await asyncio.wait([task], timeout=5)
        await server.wait_closed()
        if exc_type is None and self._errors:
            raise self._errors[0]


def _is_asgi(target: Any) -> bool:
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    return len(parameters) == 3


class _RecordingASGI(ASGIServerProtocol):
    """An ASGI server end that keeps the app's exception for the test."""

    __slots__ = ()

    def __init__(self, errors: list[BaseException], app: Any, **kwargs: Any) -> None:
        async def recording(scope: Any, receive: Any, send: Any) -> None:
            try:
                await app(scope, receive, send)
            except BaseException as exc:
                errors.append(exc)
                raise

        super().__init__(recording, **kwargs)
