"""The connection layer: asyncio transport callbacks and the public API.

Where things happen:

- bytes enter in :meth:`Connection.buffer_updated` and go to the sans-I/O
  :class:`~websockets_lite.protocol.Protocol`;
- :meth:`Connection._process` pulls events: messages are queued in the
  :class:`~websockets_lite.flow.ReadFlow`, and when it overflows the parser
  stalls and reading pauses until ``recv()`` makes room;
- every write goes through :meth:`Connection._write`, and ``send()`` waits in
  :meth:`Connection._drain` while the write buffer is above ``write_limit``;
- a close starts one deadline (``disconnect_timeout``) that aborts the TCP
  connection if the closing handshake has not finished by then;
- :meth:`Connection.connection_lost` is the single place where a connection
  ends: it wakes every waiter exactly once.

Naming: "protocol" is the sans-I/O object; an asyncio "protocol" is what we
call a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import os
import threading
import uuid
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from types import TracebackType
from typing import Any, Self, cast

from .close import CloseCause, CloseCode
from .exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedOK,
    PayloadTooBig,
    ProtocolError,
    closed_exception,
)
from .flow import READ_CHUNK, ReadFlow, WriteFlow
from .http import Request, Response
from .options import LOW_LEVEL, Options
from .protocol import LARGE_MESSAGE, Fragment, Pong, Protocol, Side, State
from .typing import Data, DataLike, Fragments

__all__ = ["Connection", "Stats"]

default_logger = logging.getLogger("websockets_lite")
# Enum members looked up once: State.OPEN costs a metaclass lookup per use.
_OPEN, _CLOSED = State.OPEN, State.CLOSED
# The close codes we send when the peer breaks a rule, and what they mean.
_PEER_ERRORS: dict[int, CloseCause] = {
    CloseCode.MESSAGE_TOO_BIG: CloseCause.MESSAGE_TOO_BIG,
    CloseCode.INVALID_DATA: CloseCause.INVALID_UTF8,
}


class _ReadBuffer(threading.local):
    # One read buffer per thread, shared by every connection: the transport
    # fills it and calls buffer_updated() synchronously, which copies the
    # bytes into the parser, so no connection holds 256 KiB while idle.
    def __init__(self) -> None:
        self.view = memoryview(bytearray(READ_CHUNK))


_read_buffer = _ReadBuffer()


class _Flusher:
    """How ``send_nowait()`` writes, per event loop.

    A broadcast per loop iteration (a price tick, a chat message) costs what
    a raw write costs: each frame goes straight to the transport. Bursts
    (several broadcasts in one iteration) are corked instead: the frames a
    connection gets in one iteration reach the transport in one write, at
    the start of the next iteration. Which case holds is seen as it happens:
    a connection that gets a second frame in the iteration where it wrote
    one directly corks it, and the loop then corks from the first frame on
    while bursts go on.
    """

    __slots__ = ("burst", "burst_seen", "epoch", "pending", "scheduled")

    def __init__(self) -> None:
        # No reference to the loop: it is the weak key of this object.
        self.pending: list[Connection] = []
        self.scheduled = False
        self.epoch = 0  # counts loop iterations in which send_nowait() wrote
        self.burst = False  # cork every frame: bursts are going on
        self.burst_seen = False  # a connection got two frames this iteration

    def arm(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run :meth:`flush` once the current loop iteration is over."""
        if not self.scheduled:
            self.scheduled = True
            loop.call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        self.epoch += 1
        self.burst, self.burst_seen = self.burst_seen, False
        pending, self.pending = self.pending, []
        for connection in pending:
            connection._uncork()


_flushers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Flusher] = (
    weakref.WeakKeyDictionary()
)


def _flusher(loop: asyncio.AbstractEventLoop) -> _Flusher:
    flusher = _flushers.get(loop)
    if flusher is None:
        flusher = _flushers[loop] = _Flusher()
    return flusher


@dataclasses.dataclass(frozen=True, slots=True)
class Stats:
    """A snapshot of one connection's counters (see :attr:`Connection.stats`)."""

    messages_in: int
    messages_out: int
    bytes_in: int
    bytes_out: int
    #: Messages received and waiting for ``recv()``.
    queued_messages: int
    #: Bytes held for reading: queued messages (UTF-8 size for text), the
    #: message being assembled and bytes not parsed yet. Bounded by
    #: :func:`~websockets_lite.memory_bound`.
    read_buffer_size: int
    #: Bytes waiting to be written: the transport's write buffer, plus the
    #: frames that broadcasts wrote this loop iteration.
    write_buffer_size: int
    #: Whether reading is paused now because messages are not consumed (the
    #: parser waits; the socket is still read ahead, up to 256 KiB).
    read_paused: bool
    #: Total seconds reading stayed paused because messages were not consumed.
    read_paused_seconds: float
    #: Broadcasts that skipped this connection because its buffer was full.
    broadcasts_skipped: int
    #: Broadcasts that this connection took.
    broadcasts_sent: int = 0


class Connection(asyncio.BufferedProtocol):
    """One WebSocket connection, client or server side.

    Created by :func:`~websockets_lite.connect` or :func:`~websockets_lite.serve`
    (or, at a low level, by an event loop from :class:`~websockets_lite.ClientProtocol`
    or :class:`~websockets_lite.ServerProtocol`), with its
    :class:`~websockets_lite.Options`: timeouts and keepalive are off unless
    the high-level API sets them. ``write_limit``, ``ping_interval``,
    ``ping_timeout`` and ``disconnect_timeout`` are copied from them and may
    be changed on one connection (``math.inf`` disables).
    """

    __slots__ = (
        # Attributes set by the application (ws.user = ...), as websockets
        # allows; the dictionary is only made when one is set.
        "__dict__",
        "__weakref__",  # weak registries (weakref.WeakSet) of connections work
        "_blind",
        "_cause",
        "_closed_waiters",
        "_cork",
        "_cork_size",
        "_deadline",
        "_epoch",
        "_flusher",
        "_fragmenting",
        "_handshake_waiters",
        "_id",
        "_keepalive",
        "_lost",
        "_lost_exc",
        "_pings",
        "_read_flow",
        "_recv_waiter",
        "_scanned",
        "_seen_state",
        "_stalled",
        "_streaming",
        "_transport_paused",
        "_write_flow",
        "broadcasts_sent",
        "broadcasts_skipped",
        "bytes_in",
        "bytes_out",
        "disconnect_timeout",
        "latency",
        "logger",
        "loop",
        "messages_in",
        "messages_out",
        "ping_interval",
        "ping_timeout",
        "protocol",
        "shares_frames",
        "transport",
        "write_limit",
    )

    def __init__(
        self,
        protocol: Protocol,
        options: Options = LOW_LEVEL,
        *,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    ) -> None:
        self.protocol = protocol
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set on connect
        self.write_limit = options.write_limit
        self.ping_interval = options.ping_interval
        self.ping_timeout = options.ping_timeout
        self.disconnect_timeout = options.disconnect_timeout
        self.logger = logger or default_logger
        #: Round-trip time of the latest ping answered, in seconds.
        self.latency = 0.0
        self.messages_in = self.messages_out = self.bytes_in = self.bytes_out = 0
        self.broadcasts_skipped = self.broadcasts_sent = 0
        self._id: uuid.UUID | None = None
        # The loop's clock: a test that fakes it (looptime) moves these too.
        self._read_flow = ReadFlow(options.message_queue_size, self._on_stall, self._on_unstall,
                                   self.loop.time)
        self._write_flow = WriteFlow()
        # The parser stalls when the application is behind (see _look_ahead).
        self._stalled = False
        self._streaming = False  # recv_streaming() owns the input
        # Where the look-ahead stopped, counted like bytes_in; and whether it
        # can see no further (it stopped reading).
        self._scanned = 0
        self._blind = False
        self._cause: CloseCause | None = None
        self._transport_paused = False
        self._seen_state = protocol.state
        self._recv_waiter: asyncio.Future[None] | None = None
        # One future per waiting coroutine, woken directly: cheaper than
        # asyncio.shield() around a shared one (no extra loop iteration).
        self._closed_waiters: list[asyncio.Future[None]] | None = None
        self._handshake_waiters: list[asyncio.Future[None]] | None = None
        self._fragmenting: asyncio.Future[None] | None = None
        self._pings: dict[bytes, tuple[float, asyncio.Future[float] | None]] = {}
        self._keepalive: asyncio.TimerHandle | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._lost = False
        self._lost_exc: Exception | None = None
        #: Whether this connection sends exactly the bytes that
        #: ``protocol.encode_frame()`` builds (server side, no compression),
        #: so that one frame serves every such connection in a broadcast.
        self.shares_frames = False
        # Frames written by send_nowait() and not yet handed to the transport.
        self._cork: list[bytes] | None = None
        self._cork_size = 0
        self._flusher = _flusher(self.loop)
        self._epoch = -1  # the flusher's epoch when send_nowait() last wrote directly

    # Attributes.

    @property
    def id(self) -> uuid.UUID:
        """A unique identifier of the connection, for logs."""
        if self._id is None:
            self._id = uuid.uuid4()
        return self._id

    @property
    def request(self) -> Request | None:
        """The opening handshake request (``request.path``, ``request.headers``)."""
        return self.protocol.request

    @property
    def response(self) -> Response | None:
        """The opening handshake response."""
        return self.protocol.response

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol both sides agreed on, if any."""
        return self.protocol.subprotocol

    @property
    def state(self) -> State:
        """``CONNECTING``, ``OPEN``, ``CLOSING`` or ``CLOSED`` (the TCP connection ended)."""
        if self._lost:
            return State.CLOSED
        state = self.protocol.state
        return State.CLOSING if state is State.CLOSED else state

    @property
    def local_address(self) -> Any:
        """The local socket address (``(host, port)`` for TCP)."""
        return self.transport.get_extra_info("sockname") if self.transport else None

    @property
    def remote_address(self) -> Any:
        """The peer's socket address (``(host, port)`` for TCP)."""
        return self.transport.get_extra_info("peername") if self.transport else None

    @property
    def peer(self) -> str:
        """The peer's address as ``host:port``, for logs."""
        address = self.remote_address
        if isinstance(address, tuple) and len(address) >= 2:
            host, port = address[0], address[1]
            return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
        return str(address or "unix socket")

    @property
    def close_code(self) -> int | None:
        """The close code once the closing handshake is over (1006 without a
        close frame); ``None`` before."""
        return self._closed_exc().code if self._closed() else None

    @property
    def close_reason(self) -> str | None:
        """The close reason once the closing handshake is over."""
        return self._closed_exc().reason if self._closed() else None

    @property
    def close_cause(self) -> CloseCause | None:
        """Why the connection ended (a :class:`~websockets_lite.CloseCause`),
        once it has; ``None`` before."""
        if not self._closed():
            return None
        if self._cause is not None:
            return self._cause
        protocol = self.protocol
        error = protocol.peer_error
        if error is not None:  # we failed the connection: the peer broke a rule
            return _PEER_ERRORS.get(error.code, CloseCause.PROTOCOL_ERROR)
        rcvd = protocol.close_rcvd
        if rcvd is not None and protocol.close_rcvd_then_sent is not False:
            if rcvd.code == CloseCode.INTERNAL_ERROR and self._read_flow.paused_seconds() >= 1.0:
                return CloseCause.PEER_TIMEOUT_WHILE_PAUSED
            return CloseCause.of_peer_close(rcvd.code)
        if protocol.close_sent is not None:
            return CloseCause.APPLICATION
        return CloseCause.LOST

    def _closed(self) -> bool:
        # Both close frames are known for good (or the connection failed),
        # even if the TCP connection is still being torn down.
        return self._lost or self.protocol.state is _CLOSED

    @property
    def stats(self) -> Stats:
        """Counters for monitoring: messages and bytes in and out, queue and buffers."""
        return Stats(
            messages_in=self.messages_in,
            messages_out=self.messages_out,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            queued_messages=len(self._read_flow.messages),
            read_buffer_size=self._read_held(),
            write_buffer_size=self._write_held(),
            read_paused=self._stalled,
            read_paused_seconds=self._read_flow.paused_seconds(),
            broadcasts_skipped=self.broadcasts_skipped,
            broadcasts_sent=self.broadcasts_sent,
        )

    def _read_held(self) -> int:
        """Bytes held for reading: queued messages and what is not parsed yet."""
        held = self.protocol.buffered_bytes()
        for message in self._read_flow.messages:
            if type(message) is Fragment:
                message = message.data
            held += len(message) if isinstance(message, bytes) or message.isascii() else len(
                message.encode()
            )
        return held

    def _write_held(self) -> int:
        """Bytes waiting to be written."""
        if self.transport is None or self._lost:
            return 0
        return self.transport.get_write_buffer_size() + self._cork_size

    # Context manager.

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the connection: with 1000 on a normal exit, with 1011
        (internal error) when the block raised, as websockets does."""
        if exc_type is None:
            await self.close()
        else:
            await self.close(CloseCode.INTERNAL_ERROR)

    # Receiving.

    async def recv(self, decode: bool | None = None) -> Data:
        """Return the next message: ``str`` for text, ``bytes`` for binary.

        ``decode=False`` returns text messages as UTF-8 ``bytes`` too, and
        ``decode=True`` binary messages as ``str`` (decoded as UTF-8;
        ``UnicodeDecodeError`` when they are not), as websockets does.
        Messages that arrived before the connection closed are returned
        first; then :exc:`~websockets_lite.ConnectionClosed` is raised.
        Cancelling ``recv()`` (for example with ``asyncio.timeout()``) is safe:
        no message is lost. Two concurrent calls raise
        :exc:`~websockets_lite.ConcurrencyError`.
        """
        if decode is not None:
            received = await self.recv()
            if decode and isinstance(received, bytes):
                return received.decode()
            if not decode and isinstance(received, str):
                return received.encode()
            return received
        if self._recv_waiter is not None or self._streaming:
            raise ConcurrencyError("another coroutine is already receiving from this connection")
        # Queued already (the common case under load): no coroutine to await.
        message = self._take() if self._read_flow.messages else await self._next_item()
        if type(message) is Fragment:
            return await self._join(message)
        return message  # type: ignore[return-value]  # not a Fragment

    get_message = recv

    async def _join(self, first: Fragment) -> Data:
        """A message streamed for a recv_streaming() that was left before it
        took anything: assemble it (its size is bounded as any message)."""
        parts = [first.data]
        last = first.last
        while not last:
            item = await self._next_item()
            assert type(item) is Fragment
            parts.append(item.data)
            last = item.last
        if isinstance(first.data, str):
            return "".join(parts)  # type: ignore[arg-type]
        return b"".join(parts)  # type: ignore[arg-type]

    async def _next_item(self) -> Data | Fragment:
        """The next message or streamed piece, waiting for one; resumes
        reading once the queue has room."""
        messages = self._read_flow.messages
        while not messages:
            # Once the protocol is CLOSED both close frames are known for good
            # (or the connection failed): no need to wait for TCP to end.
            if self._closed():
                raise self._closed_exc()
            waiter = self._recv_waiter = self.loop.create_future()
            try:
                await waiter
            finally:
                self._recv_waiter = None
        return self._take()

    def _take(self) -> Data | Fragment:
        """Take the first queued item, and go on reading once there is room."""
        item: Data | Fragment = self._read_flow.take()
        if self._stalled and len(self._read_flow.messages) <= self._read_flow.size:
            self._stalled = False
            self._process()
        return item

    async def recv_streaming(self, decode: bool | None = None) -> AsyncIterator[Data]:
        """Iterate over the fragments of the next message as they arrive:
        ``str`` pieces (whole characters) for text, ``bytes`` for binary,
        ``decode`` as in :meth:`recv`. A message that arrived whole comes as
        one piece.

        The bounds hold as for :meth:`recv`: the message's total size is
        checked against ``max_message_size`` while it arrives (a fragment
        never exceeds it), its pieces count against ``max_fragments``, and
        pieces wait in the same bounded queue. A second consumer, or a
        ``recv()`` meanwhile, raises
        :exc:`~websockets_lite.ConcurrencyError`. Cancelling it (or leaving
        the loop) before any piece of the message has arrived is safe: the
        message is then returned whole by the next ``recv()``. After that,
        the rest of the message is dropped, and the connection stays usable.
        """
        if self._recv_waiter is not None or self._streaming:
            raise ConcurrencyError("another coroutine is already receiving from this connection")
        self._streaming = True  # keeps recv() out meanwhile
        started = finished = False
        try:
            if not self._read_flow.messages:
                self.protocol.stream_next = True
                self._process()  # a message in progress now comes in pieces
            while not finished:
                item = await self._next_item()
                started = True
                if type(item) is Fragment:
                    data, finished = item.data, item.last
                else:
                    data, finished = item, True  # type: ignore[assignment]
                if decode is not None:
                    if decode and isinstance(data, bytes):
                        data = data.decode()
                    elif not decode and isinstance(data, str):
                        data = data.encode()
                yield data
        finally:
            self._streaming = False
            if started and not finished:
                self._skip_stream()
            elif not started:
                self.protocol.stream_next = False

    def _skip_stream(self) -> None:
        # Left midway: drop the rest of the message, queued or to come.
        self.protocol.skip_message()
        messages = self._read_flow.messages
        while messages and type(messages[0]) is Fragment:
            last = self._read_flow.take().last
            if last:
                return

    def __aiter__(self) -> Connection:
        """Iterate over messages; stop quietly on a normal close (1000, 1001,
        1005), raise :exc:`~websockets_lite.ConnectionClosedError` otherwise."""
        return self

    async def __anext__(self) -> Data:
        # A coroutine rather than an async generator: one wrapper less per message.
        try:
            return await self.recv()
        except ConnectionClosedOK:
            raise StopAsyncIteration from None

    # Sending.

    async def send(self, message: DataLike | Fragments, text: bool | None = None) -> None:
        """Send a message: ``str`` as text, bytes-like as binary, or an iterable
        or async iterable of fragments as one fragmented message.

        ``text=True`` sends bytes as a text message (they must be UTF-8: the
        peer fails the connection otherwise) and ``text=False`` a ``str`` as
        a binary message (encoded as UTF-8), as websockets does. Waits while
        the write buffer is above ``write_limit``, so a producer cannot
        outrun the peer. Raises :exc:`~websockets_lite.ConnectionClosed` once
        the connection is closing or closed, ``TypeError`` for anything
        else, and closes the connection with 1011 if an iterable of fragments
        fails midway (the message cannot be completed).
        """
        if text is not None:
            if text and isinstance(message, (bytes, bytearray, memoryview)):
                message = bytes(message).decode()  # sent as text: checked here, not by the peer
            elif not text and isinstance(message, str):
                message = message.encode()
        while self._fragmenting is not None:
            await asyncio.shield(self._fragmenting)
        protocol = self.protocol
        if protocol.state is not _OPEN:
            await self._raise_closed()
        if (
            isinstance(message, (str, bytes, bytearray, memoryview))
            # A memoryview's len() counts items, not bytes.
            and (len(message) >= LARGE_MESSAGE or type(message) is memoryview)
            and (parts := protocol.send_parts(message))
        ):
            self.messages_out += 1
            for part in parts:
                self._write(part)
            if self._write_flow.paused or self.transport.is_closing():
                await self._drain()
            return
        if isinstance(message, str):
            data = protocol.send_text(message)
        elif isinstance(message, (bytes, bytearray, memoryview)):
            data = protocol.send_binary(message)
        elif isinstance(message, (Iterable, AsyncIterable)) and not isinstance(message, Mapping):
            await self._send_fragments(message)  # type: ignore[arg-type]  # not bytes-like here
            return
        else:
            raise TypeError(
                f"cannot send {type(message).__name__}: expected str, bytes-like or fragments"
            )
        self.messages_out += 1
        self._write(data)
        if self._write_flow.paused or self.transport.is_closing():
            await self._drain()

    send_message = send

    @property
    def sending_fragments(self) -> bool:
        """Whether a fragmented message is being sent: other messages wait."""
        return self._fragmenting is not None

    def send_nowait(self, message: DataLike, frame: bytes | None = None) -> bool:
        """Send a complete message now if the connection can take it without
        waiting, else send nothing and return ``False``: the fast path of
        :func:`~websockets_lite.broadcast`.

        It returns ``False`` when the connection is not open, is in the
        middle of a fragmented message, or its write buffer would go above
        ``write_limit`` (an empty buffer takes any message). ``frame`` is the
        message already framed by ``encode_frame()``, used when
        :attr:`shares_frames` is true. One message per loop iteration goes
        straight to the transport; when several come in one iteration, they
        reach the transport in one write at the start of the next (see
        :doc:`/topics/performance`). Any other write on the connection goes
        after them.
        """
        if self.protocol.state is not _OPEN or self._fragmenting is not None:
            return False
        flusher = self._flusher
        if (
            frame is not None
            and self._cork is None
            and self._epoch != flusher.epoch
            and not flusher.burst
            and self.shares_frames
        ):
            # The common case, kept short: the first broadcast of this loop
            # iteration, framed once for every connection, written now.
            transport = self.transport
            size = len(frame)
            buffered = transport.get_write_buffer_size()
            if buffered and buffered + size > self.write_limit:
                return False
            self._epoch = flusher.epoch
            if not flusher.scheduled:
                flusher.arm(self.loop)
            self.messages_out += 1
            self.bytes_out += size
            transport.write(frame)
            return True
        return self._send_corked(message, frame)

    def _send_corked(self, message: DataLike, frame: bytes | None) -> bool:
        """send_nowait() when the frame is corked, or framed here."""
        protocol = self.protocol
        if frame is not None and self.shares_frames:
            size = len(frame)
        else:
            frame = None
            if isinstance(message, str):
                size = len(message.encode())
            else:
                size = message.nbytes if isinstance(message, memoryview) else len(message)
        cork = self._cork
        transport = self.transport
        buffered = transport.get_write_buffer_size()
        if cork is not None:
            buffered += self._cork_size
        if buffered and buffered + size > self.write_limit:
            return False
        if frame is None:
            if isinstance(message, str):
                frame = protocol.send_text(message)
            else:
                frame = protocol.send_binary(message)
        self.messages_out += 1
        flusher = self._flusher
        if cork is None:
            if self._epoch != flusher.epoch:
                if not flusher.burst:
                    self._epoch = flusher.epoch
                    flusher.arm(self.loop)
                    self.bytes_out += len(frame)
                    transport.write(frame)
                    return True
            else:  # the second frame of this iteration: bursts have begun
                flusher.burst_seen = True
            self._cork = [frame]
            self._cork_size = len(frame)
            flusher.pending.append(self)
            flusher.arm(self.loop)
        else:
            flusher.burst_seen = True
            cork.append(frame)
            self._cork_size += len(frame)
        return True

    def _uncork(self) -> None:
        cork = self._cork
        if cork is not None:
            self._cork = None
            self._cork_size = 0
            if not self._lost:
                data = cork[0] if len(cork) == 1 else b"".join(cork)
                self.bytes_out += len(data)
                self.transport.write(data)

    async def _send_fragments(self, fragments: Fragments) -> None:
        # Each fragment goes out as soon as the iterable yields it, so a
        # producer can stream; an empty final frame ends the message.
        self._fragmenting = self.loop.create_future()
        first: DataLike | None = None
        try:
            if isinstance(fragments, AsyncIterable):
                async for fragment in fragments:
                    first = _check_fragment(fragment, first)
                    await self._send_fragment(fragment, False)
            else:
                for fragment in fragments:
                    first = _check_fragment(fragment, first)
                    await self._send_fragment(fragment, False)
            if first is not None:
                await self._send_fragment("" if isinstance(first, str) else b"", True)
                self.messages_out += 1
        except BaseException:
            if first is not None and self.protocol.state is State.OPEN:
                # The message cannot be completed, so nothing else can be sent.
                self._write(self.protocol.send_close(
                    CloseCode.INTERNAL_ERROR, "error while sending a fragmented message"
                ))
                self._closing()
            raise
        finally:
            self._fragmenting.set_result(None)
            self._fragmenting = None

    async def _send_fragment(self, fragment: DataLike, fin: bool) -> None:
        if self.protocol.state is not State.OPEN:
            await self._raise_closed()
        self._write(self.protocol.send_fragment(fragment, fin))
        if self._write_flow.paused or self.transport.is_closing():
            await self._drain()

    async def ping(self, data: DataLike | None = None) -> float:
        """Send a ping and return the round-trip time in seconds once the pong
        arrives. A pong answers every earlier ping too (RFC 6455 5.5.3).

        While messages wait unread (see ``message_queue_size``), the pong is
        found by reading ahead of them, up to 256 KiB; beyond that it waits
        until the application reads. Cancelling ``ping()`` is safe.

        websockets' ``ping()`` returns a future instead, whose result is the
        latency (``latency = await (await ws.ping())``); here the latency
        comes in one ``await``. ``websockets_lite.compat`` keeps websockets'
        form.
        """
        if data is not None and not isinstance(data, (str, bytes, bytearray, memoryview)):
            raise TypeError(f"ping data must be str or bytes-like, not {type(data).__name__}")
        if self.protocol.state is not State.OPEN:
            await self._raise_closed()
        if data is None:
            payload = os.urandom(4)
            while payload in self._pings:
                payload = os.urandom(4)
        else:
            payload = data.encode() if isinstance(data, str) else bytes(data)
            if payload in self._pings:
                raise ConcurrencyError("already waiting for a pong with the same data")
        waiter: asyncio.Future[float] = self.loop.create_future()
        self._pings[payload] = (self.loop.time(), waiter)
        try:
            self._write(self.protocol.send_ping(payload))
            if self._write_flow.paused or self.transport.is_closing():
                await self._drain()
            return await waiter
        finally:
            self._pings.pop(payload, None)

    async def pong(self, data: str | bytes = b"") -> None:
        """Send an unsolicited pong (RFC 6455 5.5.3 allows them): a
        unidirectional heartbeat. ``data`` is at most 125 bytes."""
        payload = data.encode() if isinstance(data, str) else bytes(data)
        if len(payload) > 125:
            raise ValueError("a pong carries at most 125 bytes")
        if self.protocol.state is not State.OPEN:
            await self._raise_closed()
        self._write(self.protocol.send_pong(payload))
        if self._write_flow.paused or self.transport.is_closing():
            await self._drain()

    # Closing.

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake and wait until the TCP connection is closed.

        Messages already queued stay readable with ``recv()``. A high-level
        connection aborts the TCP connection after ``disconnect_timeout``; if
        ``close()`` itself is cancelled (for example by ``asyncio.timeout()``),
        the TCP connection is aborted too. Raises ``ValueError`` for a code
        that may not be sent or a reason over 123 bytes.
        """
        self.close_nowait(code, reason)
        try:
            await self.wait_closed()
        except asyncio.CancelledError:
            self.abort()
            raise

    def close_nowait(
        self,
        code: int = CloseCode.NORMAL_CLOSURE,
        reason: str = "",
        *,
        cause: CloseCause = CloseCause.APPLICATION,
    ) -> None:
        """Start the closing handshake without waiting for its end (for code
        that cannot await); :meth:`wait_closed` waits for it. The deadline
        of ``disconnect_timeout`` applies as with :meth:`close`. ``cause``
        is what :attr:`close_cause` will say (the library's own closes pass
        theirs)."""
        state = self.protocol.state
        if state is State.OPEN:
            self._write(self.protocol.send_close(code, reason))
            if self._cause is None:
                self._cause = cause
            self._closing()
        elif state is State.CONNECTING and self.transport is not None:
            self.transport.abort()

    async def wait_closed(self) -> None:
        """Wait until the TCP connection is closed. Cancelling it is safe."""
        while not self._lost:
            if self._closed_waiters is None:
                self._closed_waiters = []
            await self._wait(self._closed_waiters)

    async def _wait(self, waiters: list[asyncio.Future[None]]) -> None:
        waiter = self.loop.create_future()
        waiters.append(waiter)
        try:
            await waiter
        finally:
            if not waiter.done() or waiter.cancelled():
                with contextlib.suppress(ValueError):
                    waiters.remove(waiter)

    @staticmethod
    def _wake(waiters: list[asyncio.Future[None]] | None) -> None:
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)
        if waiters:
            waiters.clear()

    def abort(self) -> None:
        """Drop the TCP connection at once, without a closing handshake."""
        if self.transport is not None and not self._lost:
            self.transport.abort()

    # Internals: writing and closing.

    def _write(self, data: bytes) -> None:
        if self._cork is not None:
            self._uncork()  # what send_nowait() corked goes first
        self.bytes_out += len(data)
        self.transport.write(data)

    async def _drain(self) -> None:
        if self.transport.is_closing() and not self._lost:
            # Let connection_lost() run: a loop that only writes would starve it.
            await asyncio.sleep(0)
        if self._lost:
            raise self._closed_exc()
        if self._write_flow.paused:
            waiter: asyncio.Future[None] = self.loop.create_future()
            self._write_flow.waiters.append(waiter)
            await waiter

    async def _raise_closed(self) -> None:
        # Build ConnectionClosed only once the connection is closed, when both
        # close frames (or their absence) are known.
        await self.wait_closed()
        raise self._closed_exc()

    def _closed_exc(self) -> ConnectionClosed:
        protocol = self.protocol
        hint = ""
        paused = self._read_flow.paused_seconds()
        if paused >= 1.0 and (protocol.close_rcvd is None or protocol.close_rcvd.code == 1011):
            hint = (
                f"reading was paused for {paused:.1f} s because messages were not "
                "consumed; the peer's keepalive may have timed out"
            )
        exc = closed_exception(
            protocol.close_rcvd, protocol.close_sent, protocol.close_rcvd_then_sent, hint
        )
        exc.cause = self.close_cause
        error = protocol.peer_error
        if error is not None:  # we closed because the peer broke a rule or a limit
            cause: BaseException = (
                PayloadTooBig(error.reason) if error.code == CloseCode.MESSAGE_TOO_BIG
                else ProtocolError(error.reason)
            )
            cause.__cause__ = self._lost_exc
            exc.__cause__ = cause
        else:
            exc.__cause__ = self._lost_exc
        return exc

    def _fail(self, code: int, reason: str) -> None:
        """Send a close frame and stop processing input (RFC 6455 7.1.7)."""
        self.protocol.fail(code, reason)
        self._after_events()

    def _closing(self) -> None:
        # We sent a close frame: start the deadline and stop stalling, so that
        # the peer's close reply can be read (queued messages stay readable).
        self._arm_deadline()
        if self._stalled:
            self._stalled = False
            self._process()

    def _arm_deadline(self) -> None:
        if self._deadline is None and not self._lost and self.disconnect_timeout != math.inf:
            self._deadline = self.loop.call_later(self.disconnect_timeout, self._on_deadline)

    def _on_deadline(self) -> None:
        self.logger.debug("closing handshake timed out; aborting the TCP connection")
        self.transport.abort()

    # Internals: processing what the peer sent.

    def _process(self, drain: bool = False) -> None:
        """Pull events from the protocol; never raises (asyncio would drop
        the connection with a 'Fatal error' if a transport callback did).

        ``drain`` pulls every event, over the queue's size: for bytes already
        held (turning them into messages holds no more) when the peer is
        done sending."""
        try:
            if drain:
                self._stalled = False
                self._pull_events(math.inf)
            else:
                self._pull_events(self._read_flow.size)
            self._after_events()
        except Exception:
            self.logger.exception("internal error; aborting the connection")
            self.transport.abort()

    def _pull_events(self, limit: float) -> None:
        protocol = self.protocol
        read = self._read_flow
        messages = read.messages
        while True:
            event = protocol.next_event()
            if event is None:
                break
            cls = type(event)
            if cls is str or cls is bytes or cls is Fragment:
                if cls is not Fragment or event.last:  # type: ignore[union-attr]
                    self.messages_in += 1
                waiter = self._recv_waiter
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
                if protocol.state is _OPEN:
                    messages.append(event)
                    if len(messages) > limit:
                        self._stalled = True
                        break
                elif len(messages) < read.size or not messages:
                    # After our close frame, keep what fits but never stall:
                    # the peer's close reply must get through.
                    messages.append(event)
            elif cls is Pong:
                self._on_pong(event.payload)  # type: ignore[union-attr]
            else:
                self._on_request(event)  # type: ignore[arg-type]
                if protocol.state is State.CONNECTING:
                    break  # the answer comes later: stop parsing meanwhile

    def _after_events(self) -> None:
        protocol = self.protocol
        self._write_replies()
        if protocol.state is not self._seen_state:
            previous, self._seen_state = self._seen_state, protocol.state
            self._state_changed(previous, protocol.state)
        if self._stalled:
            if self._read_flow.paused:
                self._look_ahead()  # stalled again: there may be room to read now
            else:
                self._read_flow.pause_reading()
        elif self._read_flow.paused and not self._handshake_pending():
            self._read_flow.resume_reading()

    def _write_replies(self) -> None:
        # What the protocol wrote itself: pongs, close replies, handshake answers.
        if not self._lost:
            protocol = self.protocol
            data = protocol.data_to_send()
            if data:
                self._write(data)
            if protocol.pong is not None and not self._write_flow.paused:
                self._write(protocol.pong)
                protocol.pong = None

    def _look_ahead(self) -> None:
        """Keep reading while the application is behind, without parsing
        messages: at most ``READ_CHUNK`` unparsed bytes (the read side's bound
        already counts them), walked for control frames. Pings are answered,
        pongs taken, and a close frame, an EOF or a reset are noticed at once;
        so a peer that vanishes is noticed even while messages wait unread,
        and a live one gets its pongs. Reading stops when the bytes reach the
        bound or the walk can go no further: the look-ahead is then blind."""
        protocol = self.protocol
        front = self.bytes_in - protocol.unparsed_size()
        end, pongs, closing, blocked = protocol.look_ahead(max(0, self._scanned - front))
        self._scanned = front + end
        for payload in pongs:
            self._on_pong(payload)
        if closing:
            # The peer is done sending: what it sent becomes messages (bytes
            # already held), and its close frame is answered as usual.
            self._process(drain=True)
            return
        self._write_replies()
        self._blind = blocked or protocol.unparsed_size() >= READ_CHUNK
        if self._blind:
            self._pause_transport()
        else:
            self._resume_transport()

    def _handshake_pending(self) -> bool:
        # A server pauses reading while an async process_request decides.
        return self.protocol.state is State.CONNECTING and self.protocol.request is not None

    def _state_changed(self, previous: State, state: State) -> None:
        if previous is State.CONNECTING:
            if not self.protocol.opened:
                self._handshake_failed()
                return
            self._opened()
        error = self.protocol.peer_error
        if error is not None and previous is not State.CLOSING:
            self.logger.warning("peer error on %s: closing with %s", self.peer, error)
        if state is State.CLOSING:
            self._arm_deadline()
        elif state is State.CLOSED and not self._lost:
            waiter = self._recv_waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)  # recv() can raise now
            self._arm_deadline()
            if self.protocol.side is Side.SERVER:
                # RFC 6455 7.1.1: the server closes the TCP connection first.
                if self.protocol.close_rcvd is None and self.transport.can_write_eof():
                    # We failed the connection: half-close, so that the peer
                    # reads our close frame rather than a reset caused by its
                    # unread data, and discard what it still sends until it
                    # closes (or the deadline aborts).
                    try:
                        self.transport.write_eof()
                    except OSError:  # the peer is gone already: nothing to half-close
                        self.transport.abort()
                else:
                    self.transport.close()

    def _opened(self) -> None:
        self.shares_frames = self.protocol.side is Side.SERVER and self.protocol.deflate is None
        self._wake(self._handshake_waiters)
        if self.ping_interval != math.inf:
            self._keepalive = self.loop.call_later(self.ping_interval, self._keepalive_ping)

    def _handshake_failed(self) -> None:
        exc = self.protocol.handshake_exc
        if exc is not None and self.protocol.side is Side.SERVER:
            self.logger.warning("invalid opening handshake from %s: %s", self.peer, exc)
        self._wake(self._handshake_waiters)
        if not self._lost:
            self._arm_deadline()
            self.transport.close()

    def _on_request(self, request: Request) -> None:
        """Hook for the server side: the opening handshake request arrived."""

    def _on_pong(self, payload: bytes) -> None:
        pings = self._pings
        if payload not in pings:
            return  # unsolicited, or its ping was cancelled
        now = self.loop.time()
        for key in list(pings):
            sent, waiter = pings.pop(key)
            if waiter is not None and not waiter.done():
                waiter.set_result(now - sent)
            if key == payload:
                self.latency = now - sent
                break

    # Internals: keepalive.

    def _keepalive_ping(self) -> None:
        # Pings go out whether or not the application is behind: the
        # look-ahead finds the pong behind messages not read yet.
        self._keepalive = None
        if self.protocol.state is not State.OPEN or self._lost:
            return
        payload = os.urandom(4)
        now = self.loop.time()
        self._pings[payload] = (now, None)
        self._write(self.protocol.send_ping(payload))
        if self.ping_timeout == math.inf:
            self._keepalive = self.loop.call_later(self.ping_interval, self._keepalive_ping)
        else:
            self._keepalive = self.loop.call_later(
                self.ping_timeout, self._keepalive_check, payload, now
            )

    def _keepalive_check(self, payload: bytes, sent: float) -> None:
        self._keepalive = None
        if self.protocol.state is not State.OPEN or self._lost:
            return
        if payload in self._pings:
            if self._stalled and self._blind:
                # The pong, if any, is behind more unread messages than the
                # look-ahead holds: the peer sent them, so it is there, and
                # the slow side is ours. Never close it for our slowness.
                del self._pings[payload]
            else:
                self._keepalive_timeout()
                return
        delay = max(0.0, sent + self.ping_interval - self.loop.time())
        self._keepalive = self.loop.call_later(delay, self._keepalive_ping)

    def _keepalive_timeout(self) -> None:
        # Our writes stalled too: the ping sat behind data the peer did not read.
        stalled = self._write_flow.paused
        self._cause = CloseCause.WRITE_STALLED if stalled else CloseCause.KEEPALIVE_TIMEOUT
        if self._stalled:
            self._process(drain=True)  # what the peer sent before going silent stays readable
        self.logger.info("keepalive ping timeout; closing the connection")
        self._fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
        self.transport.abort()

    # asyncio.BufferedProtocol callbacks.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports are not
        # asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)
        # An int: uvloop takes no float; "unlimited" is a buffer nobody reaches.
        self.transport.set_write_buffer_limits(high=int(min(self.write_limit, 2**62)))

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._stalled:
            # Reading ahead: at most READ_CHUNK bytes wait unparsed.
            return _read_buffer.view[: max(1, READ_CHUNK - self.protocol.unparsed_size())]
        return _read_buffer.view

    def buffer_updated(self, nbytes: int) -> None:
        self.bytes_in += nbytes
        try:
            self.protocol.receive_data(_read_buffer.view[:nbytes])
            if self._stalled:
                self._look_ahead()
                return
        except Exception:
            self.logger.exception("internal error; aborting the connection")
            self.transport.abort()
            return
        self._process()

    def eof_received(self) -> None:
        if self._stalled:
            self._process(drain=True)  # what the peer sent before its EOF stays readable
        self.protocol.receive_eof()
        self._process()
        # Returning None lets the transport close itself (after flushing).

    def pause_writing(self) -> None:
        self._write_flow.pause()
        self.protocol.hold_pongs = True

    def resume_writing(self) -> None:
        self.protocol.hold_pongs = False
        pong = self.protocol.pong
        if pong is not None and not self._lost:
            self.protocol.pong = None
            self._write(pong)
        self._write_flow.resume()

    def _on_stall(self) -> None:
        # The read flow paused: the application is behind (or, server side,
        # an async process_request is deciding the handshake).
        if self.protocol.state is _OPEN:
            self._look_ahead()
        else:
            self._pause_transport()

    def _on_unstall(self) -> None:
        self._blind = False
        self._resume_transport()

    def _pause_transport(self) -> None:
        # Flow-control calls must never raise (some transports do once closing).
        if not self._transport_paused and not self._lost and not self.transport.is_closing():
            self._transport_paused = True
            with contextlib.suppress(AttributeError, NotImplementedError, RuntimeError):
                self.transport.pause_reading()

    def _resume_transport(self) -> None:
        if self._transport_paused and not self._lost and not self.transport.is_closing():
            self._transport_paused = False
            with contextlib.suppress(AttributeError, NotImplementedError, RuntimeError):
                self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._lost_exc = exc
        if self._stalled:
            # What the peer sent before the connection dropped stays readable.
            self._stalled = False
            with contextlib.suppress(Exception):  # parse errors end it anyway
                self._pull_events(math.inf)
        self.protocol.lost()
        self._read_flow.resume_reading()  # only accounts the paused time now
        for handle in (self._keepalive, self._deadline):
            if handle is not None:
                handle.cancel()
        self._keepalive = self._deadline = None
        self._cork, self._cork_size = None, 0
        self._wake(self._handshake_waiters)
        if self._recv_waiter is not None and not self._recv_waiter.done():
            self._recv_waiter.set_result(None)
        if self._write_flow.waiters or self._pings:
            closed = self._closed_exc()
            self._write_flow.lost(closed)
            for _, ping_waiter in self._pings.values():
                if ping_waiter is not None and not ping_waiter.done():
                    ping_waiter.set_exception(closed)
                    # Mark it retrieved: nobody may await it any more.
                    ping_waiter.exception()
            self._pings.clear()
        self._wake(self._closed_waiters)
        self._connection_ended()

    def _connection_ended(self) -> None:
        """Hook for subclasses: runs once, when the TCP connection ended."""


def _check_fragment(fragment: object, first: DataLike | None) -> DataLike:
    """Return the message's first fragment; raise ``TypeError`` for a fragment
    that is not text or bytes-like, or whose kind differs from the first."""
    if not isinstance(fragment, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"cannot send a fragment of type {type(fragment).__name__}")
    if first is None:
        return fragment
    if isinstance(fragment, str) != isinstance(first, str):
        raise TypeError("fragments of one message must be all text or all binary")
    return first
