"""Our connection API over an ASGI WebSocket (Starlette, FastAPI, Quart, raw).

:func:`accept` completes the handshake of an ASGI WebSocket and returns an
object with the connection API: ``recv()``, ``send()``, ``async for``,
``close()``, ``wait_closed()``, ``request``, ``subprotocol``, ``id``,
``stats``, ``close_code``... so that :func:`~websockets_lite.consume`,
:func:`~websockets_lite.broadcast`, :func:`~websockets_lite.registered` and
``Hub.subscribe`` work unchanged inside ASGI apps.

It never reads ahead of the application: ``receive()`` is called only when
the application waits for a message (``recv()``) or for the end
(``wait_closed()``), and then at most ``message_queue_size`` messages are
taken from the server before the application asks for them. Writes go
through a bounded outbox (``write_limit`` bytes) drained by one writer
task, so that ``broadcast()`` stays synchronous and skips (or closes) a
client whose outbox is full. What ASGI cannot carry is not faked: no ping,
no fragmented messages, no pause of the server's reading (that is the
server's business: see :doc:`/topics/asgi`).

On the uvicorn protocol of :mod:`websockets_lite.uvicorn`, :func:`accept`
returns the native connection underneath instead: then ``broadcast()``
frames once and skips slow clients at the transport, with no outbox.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from types import TracebackType
from typing import Any, Self

from .close import Close, CloseCause, CloseCode, check_close
from .connection import Stats, default_logger
from .exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedOK,
    closed_exception,
)
from .http import Headers, HeadersLike, Request
from .options import Options
from .protocol import State
from .server import ServerProtocol
from .typing import Data, DataLike

__all__ = ["ASGIConnection", "Receive", "Scope", "Send", "accept"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

#: The scope extension through which the uvicorn protocol of this library
#: hands its native connection to :func:`accept`.
EXTENSION = "websockets_lite"


class ASGIConnection:
    """A WebSocket of an ASGI app, with the API of
    :class:`~websockets_lite.Connection` as far as ASGI can carry it.

    Made by :func:`accept`. ``recv()`` raises
    :exc:`~websockets_lite.ConnectionClosed` (with the client's code and
    reason) once the client has left and the messages received before are
    read; a second concurrent ``recv()`` raises
    :exc:`~websockets_lite.ConcurrencyError`. ``send()`` waits while more
    than ``write_limit`` bytes wait in the outbox.
    """

    #: Broadcasts frame once only for native connections.
    shares_frames = False
    #: ASGI sends whole messages only.
    sending_fragments = False
    #: ASGI has no ping: always 0.
    latency = 0.0

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        subprotocol: str | None = None,
        options: Options | None = None,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    ) -> None:
        options = options or Options()
        self.scope = scope
        self._receive = receive
        self._send = send
        #: The subprotocol agreed on, if any.
        self.subprotocol = subprotocol
        #: The handshake request: path with its query string, and headers.
        self.request = request_of(scope)
        self.logger = logger or default_logger
        self.write_limit = options.write_limit
        self.disconnect_timeout = options.disconnect_timeout
        self.broadcasts_sent = self.broadcasts_skipped = 0
        self.messages_in = self.messages_out = self.bytes_in = self.bytes_out = 0
        self._id: uuid.UUID | None = None
        self._queue_size = options.message_queue_size
        self._messages: deque[Data] = deque()
        self._queued_bytes = 0
        self._reader: asyncio.Future[None] | None = None
        self._receiving = False
        self._room: asyncio.Event | None = None
        self._outbox: deque[tuple[str, Any, int]] = deque()
        self._outbox_bytes = 0
        self._writer: asyncio.Task[None] | None = None
        self._drained: list[asyncio.Future[None]] = []
        self._state = State.OPEN
        self._cause: CloseCause | None = None
        self._rcvd: Close | None = None
        self._sent: Close | None = None
        self._rcvd_then_sent: bool | None = None
        self._closed = asyncio.Event()
        self._paused_since: float | None = None
        self._paused_total = 0.0

    # Attributes.

    @property
    def id(self) -> uuid.UUID:
        """A unique identifier of the connection, for logs and presence."""
        if self._id is None:
            self._id = uuid.uuid4()
        return self._id

    @property
    def state(self) -> State:
        """``OPEN``, ``CLOSING`` (we sent a close) or ``CLOSED``."""
        return self._state

    @property
    def remote_address(self) -> Any:
        """The client's address from the scope, ``(host, port)``, if the server gives it."""
        client = self.scope.get("client")
        return tuple(client) if client else None

    @property
    def close_code(self) -> int | None:
        """The close code once the client has left (1006 without a close frame)."""
        return self._exception().code if self._state is State.CLOSED else None

    @property
    def close_reason(self) -> str | None:
        """The close reason once the client has left."""
        return self._exception().reason if self._state is State.CLOSED else None

    @property
    def close_cause(self) -> CloseCause | None:
        """Why the connection ended, once it has: what ASGI can tell."""
        if self._state is not State.CLOSED:
            return None
        if self._cause is not None:
            return self._cause
        rcvd = self._rcvd
        if rcvd is None:
            return CloseCause.LOST
        return CloseCause.of_peer_close(rcvd.code)

    @property
    def stats(self) -> Stats:
        """The same counters as :attr:`Connection.stats <websockets_lite.Connection.stats>`;
        the write buffer is the outbox."""
        paused = self._paused_total
        if self._paused_since is not None:
            paused += time.perf_counter() - self._paused_since
        return Stats(
            messages_in=self.messages_in,
            messages_out=self.messages_out,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            queued_messages=len(self._messages),
            read_buffer_size=self._queued_bytes,
            write_buffer_size=self._outbox_bytes,
            read_paused=self._paused_since is not None,
            read_paused_seconds=paused,
            broadcasts_sent=self.broadcasts_sent,
            broadcasts_skipped=self.broadcasts_skipped,
        )

    # Receiving.

    async def recv(self) -> Data:
        """Return the next message: ``str`` for text, ``bytes`` for binary.

        Cancelling it is safe: a message being received is kept for the
        next call."""
        if self._receiving:
            raise ConcurrencyError("another coroutine is already receiving from this connection")
        self._receiving = True
        try:
            while not self._messages:
                if self._rcvd is not None or self._state is State.CLOSED:
                    raise self._exception()
                await self._read()
            message = self._messages.popleft()
            self._queued_bytes -= _size(message)
            if self._room is not None:
                self._room.set()
            return message
        finally:
            self._receiving = False

    get_message = recv

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Data:
        try:
            return await self.recv()
        except ConnectionClosedOK:
            raise StopAsyncIteration from None

    async def _read(self) -> None:
        # One receive() at a time, shared by recv() and wait_closed(), and
        # shielded: a cancelled caller leaves it running, so nothing is lost.
        if self._reader is None:
            self._reader = asyncio.ensure_future(self._receive_one())
        await asyncio.shield(self._reader)

    async def _receive_one(self) -> None:
        try:
            try:
                message = await self._receive()
            except Exception as exc:  # the framework says the client is gone
                self.logger.debug("ASGI receive() failed: %r", exc)
                self._disconnected(CloseCode.ABNORMAL_CLOSURE, "")
                return
            kind = message.get("type")
            if kind == "websocket.receive":
                text, data = message.get("text"), message.get("bytes")
                item: Data = text if text is not None else bytes(data or b"")
                self.messages_in += 1
                size = _size(item)
                self.bytes_in += size
                if self._state is State.OPEN:  # after our close, messages are dropped
                    self._messages.append(item)
                    self._queued_bytes += size
            elif kind == "websocket.disconnect":
                self._disconnected(message.get("code", 1005), message.get("reason") or "")
            else:
                raise RuntimeError(f"unexpected ASGI message {kind!r} on a WebSocket")
        finally:
            self._reader = None

    def _disconnected(self, code: int, reason: str) -> None:
        if self._state is State.CLOSED:
            return
        if code not in (CloseCode.ABNORMAL_CLOSURE, CloseCode.TLS_HANDSHAKE):
            self._rcvd = Close(code, reason)
            self._rcvd_then_sent = self._sent is None
            if self._sent is None:
                self._sent = self._rcvd  # the server answered it
        self._end()

    def _end(self) -> None:
        self._state = State.CLOSED
        self._outbox.clear()
        self._outbox_bytes = 0
        if self._paused_since is not None:
            self._paused_total += time.perf_counter() - self._paused_since
            self._paused_since = None
        exc = self._exception()
        for waiter in self._drained:
            if not waiter.done():
                waiter.set_exception(exc)
                waiter.exception()  # retrieved: raised where awaited
        self._drained.clear()
        if self._room is not None:
            self._room.set()
        self._closed.set()

    def _exception(self) -> ConnectionClosed:
        exc = closed_exception(self._rcvd, self._sent, self._rcvd_then_sent)
        exc.cause = self.close_cause
        return exc

    # Sending.

    async def send(self, message: DataLike) -> None:
        """Send a message: ``str`` as text, bytes-like as binary. Waits while
        the outbox holds more than ``write_limit`` bytes. ASGI carries no
        fragments: an iterable raises ``TypeError``."""
        if self._state is not State.OPEN:
            raise self._closed_now()
        self._enqueue(message)
        self.messages_out += 1
        if self._outbox_bytes > self.write_limit:
            waiter = asyncio.get_running_loop().create_future()
            self._drained.append(waiter)
            await waiter

    send_message = send

    def send_nowait(self, message: DataLike, frame: bytes | None = None) -> bool:
        """Queue a message if the outbox has room (an empty outbox takes any
        message), else send nothing and return ``False``: what
        :func:`~websockets_lite.broadcast` needs."""
        if self._state is not State.OPEN:
            return False
        size = len(message.encode()) if isinstance(message, str) else len(message)
        if self._outbox_bytes and self._outbox_bytes + size > self.write_limit:
            return False
        self._enqueue(message)
        self.messages_out += 1
        return True

    def _enqueue(self, message: DataLike) -> None:
        if isinstance(message, str):
            item: tuple[str, Any, int] = ("text", message, len(message.encode()))
        elif isinstance(message, (bytes, bytearray, memoryview)):
            item = ("bytes", bytes(message), len(message))
        else:
            raise TypeError(
                f"cannot send {type(message).__name__} over ASGI: expected str or bytes-like "
                "(ASGI carries no fragmented messages)"
            )
        self._outbox.append(item)
        self._outbox_bytes += item[2]
        if self._writer is None:
            self._writer = asyncio.ensure_future(self._write_all())

    async def _write_all(self) -> None:
        try:
            while self._outbox:
                kind, data, size = self._outbox[0]
                if kind == "close":
                    code, reason = data
                    await self._send({"type": "websocket.close", "code": code, "reason": reason})
                else:
                    await self._send({"type": "websocket.send", kind: data})
                    self.bytes_out += size
                if self._outbox:
                    self._outbox.popleft()
                    self._outbox_bytes -= size
                if self._outbox_bytes <= self.write_limit:
                    drained, self._drained = self._drained, []
                    for waiter in drained:
                        if not waiter.done():
                            waiter.set_result(None)
        except Exception as exc:  # the framework says the client is gone
            self.logger.debug("ASGI send() failed: %r", exc)
            self._end()
        finally:
            self._writer = None

    # Closing.

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Send a close (after what is queued) and wait, at most
        ``disconnect_timeout``, for the client to leave."""
        self.close_nowait(code, reason)
        try:
            async with asyncio.timeout(
                None if self.disconnect_timeout == float("inf") else self.disconnect_timeout
            ):
                await self.wait_closed()
        except TimeoutError:
            self._end()

    def close_nowait(
        self,
        code: int = CloseCode.NORMAL_CLOSURE,
        reason: str = "",
        *,
        cause: CloseCause = CloseCause.APPLICATION,
    ) -> None:
        """Start closing without waiting (what ``broadcast(on_slow="close")`` uses)."""
        check_close(code, reason)
        if self._state is not State.OPEN:
            return
        self._state = State.CLOSING
        self._cause = cause
        self._sent = Close(code, reason)
        self._outbox.append(("close", (code, reason), 0))
        if self._writer is None:
            self._writer = asyncio.ensure_future(self._write_all())

    async def wait_closed(self) -> None:
        """Wait until the client has left. It reads to find out, but never
        takes more than ``message_queue_size`` unread messages from the
        server: while that many wait, only a failed write can tell."""
        while self._state is not State.CLOSED:
            if len(self._messages) > self._queue_size:
                if self._room is None:
                    self._room = asyncio.Event()
                self._room.clear()
                if self._paused_since is None:
                    self._paused_since = time.perf_counter()
                room = asyncio.ensure_future(self._room.wait())
                closed = asyncio.ensure_future(self._closed.wait())
                try:
                    await asyncio.wait([room, closed], return_when=asyncio.FIRST_COMPLETED)
                finally:
                    room.cancel()
                    closed.cancel()
                continue
            if self._paused_since is not None:
                self._paused_total += time.perf_counter() - self._paused_since
                self._paused_since = None
            await self._read()

    def _closed_now(self) -> ConnectionClosed:
        return self._exception()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close(CloseCode.NORMAL_CLOSURE if exc_type is None else CloseCode.INTERNAL_ERROR)

    def __repr__(self) -> str:
        return f"<ASGIConnection {self.request.path} {self._state.name}>"


def _size(message: Data) -> int:
    return len(message) if isinstance(message, bytes) or message.isascii() else len(
        message.encode()
    )


def request_of(scope: Scope) -> Request:
    """The handshake request of an ASGI WebSocket scope: path with its query
    string, and headers."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) and raw else scope.get("path", "/")
    query = scope.get("query_string", b"")
    if query:
        path += "?" + (query.decode("latin-1") if isinstance(query, bytes) else str(query))
    headers = Headers(
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in scope.get("headers", [])
    )
    return Request(path, headers)


class _Quart:
    """Quart's ``websocket`` object seen as ASGI receive and send."""

    def __init__(self, websocket: Any) -> None:
        self.websocket = websocket
        self.scope: Scope = websocket.scope

    async def receive(self) -> MutableMapping[str, Any]:
        data = await self.websocket.receive()
        return {"type": "websocket.receive", "text" if isinstance(data, str) else "bytes": data}

    async def send(self, message: MutableMapping[str, Any]) -> None:
        kind = message["type"]
        if kind == "websocket.accept":
            await self.websocket.accept(
                headers={k.decode(): v.decode() for k, v in message.get("headers", [])},
                subprotocol=message.get("subprotocol"),
            )
        elif kind == "websocket.send":
            data = message.get("text")
            await self.websocket.send(data if data is not None else message["bytes"])
        elif kind == "websocket.close":
            await self.websocket.close(message.get("code", 1000), message.get("reason", ""))
        else:
            raise RuntimeError(f"cannot send {kind!r} through Quart")


async def accept(
    websocket: Any,
    receive: Receive | None = None,
    send: Send | None = None,
    *,
    subprotocols: Sequence[str] | None = None,
    headers: HeadersLike | None = None,
    message_queue_size: float | None = 1,
    write_limit: float | None = 2**16,
    disconnect_timeout: float | None = 10,
    logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
) -> ASGIConnection | ServerProtocol:
    """Accept an ASGI WebSocket and return it with our connection API.

    ``websocket`` is the raw ASGI ``scope`` (then give ``receive`` and
    ``send``), a Starlette or FastAPI ``WebSocket`` (accepted already or
    not), or Quart's ``websocket``. The subprotocol is the first of
    ``subprotocols`` that the client offers (or none); ``headers`` go with
    the acceptance. On the uvicorn protocol of this library the native
    connection is returned. Raises ``TypeError`` for a scope that is not a
    WebSocket one, ``RuntimeError`` when the client left before the
    handshake ended.
    """
    options = Options.build(
        message_queue_size=message_queue_size,
        write_limit=write_limit,
        disconnect_timeout=disconnect_timeout,
    )
    if subprotocols is not None and isinstance(subprotocols, (str, bytes)):
        raise TypeError("subprotocols must be a list of strings, not a single string")
    accepted = False
    if isinstance(websocket, MutableMapping):
        scope = websocket
        if receive is None or send is None:
            raise TypeError("give receive and send with a raw ASGI scope")
    elif hasattr(websocket, "requested_subprotocols"):
        # Quart reads the client's messages itself (into a queue of its own)
        # and accepts through its own call.
        quart = _Quart(websocket)
        chosen = _choose(subprotocols, list(websocket.requested_subprotocols))
        await quart.send(
            {"type": "websocket.accept", "subprotocol": chosen, "headers": _raw_headers(headers)}
        )
        return ASGIConnection(
            quart.scope, quart.receive, quart.send, subprotocol=chosen, options=options,
            logger=logger,
        )
    elif hasattr(websocket, "scope") and hasattr(websocket, "receive") and hasattr(
        websocket, "send"
    ):  # Starlette / FastAPI
        scope, receive, send = websocket.scope, websocket.receive, websocket.send
        accepted = getattr(getattr(websocket, "application_state", None), "name", "") == (
            "CONNECTED"
        )
    else:
        raise TypeError(f"cannot accept {type(websocket).__name__}: expected an ASGI WebSocket")
    if scope.get("type") != "websocket":
        raise TypeError(f"not a WebSocket scope: {scope.get('type')!r}")
    assert receive is not None and send is not None
    chosen = _choose(subprotocols, list(scope.get("subprotocols") or ()))
    if not accepted:
        message = await receive()
        if message.get("type") != "websocket.connect":
            raise RuntimeError(
                f"the client left before the handshake ended ({message.get('type')!r})"
            )
        await send({"type": "websocket.accept", "subprotocol": chosen,
                    "headers": _raw_headers(headers)})
    native = scope.get("extensions", {}).get(EXTENSION, {}).get("connection")
    if isinstance(native, ServerProtocol):
        return native
    return ASGIConnection(
        scope, receive, send, subprotocol=chosen, options=options, logger=logger
    )


def _choose(ours: Sequence[str] | None, offered: list[str]) -> str | None:
    return next((s for s in ours or () if s in offered), None)


def _raw_headers(headers: HeadersLike | None) -> list[tuple[bytes, bytes]]:
    return [
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in Headers(headers).raw_items()
    ]

