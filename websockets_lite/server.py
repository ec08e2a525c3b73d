"""The server: :func:`serve` and :class:`Server` (high level, with timeouts)
and :class:`ServerProtocol` (low level, for ``loop.create_server``)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import hmac
import inspect
import logging
import math
import re
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable, Sequence
from types import TracebackType
from typing import Any, cast

from .close import CloseCause, CloseCode, check_close
from .connection import Connection
from .exceptions import ConnectionClosed
from .http import Headers, Request, Response
from .options import LOW_LEVEL, Options, check_strings
from .protocol import Protocol, Side, State
from .version import __version__

__all__ = [
    "Handler",
    "ServerStats",
    "ProcessRequest",
    "SelectSubprotocol",
    "Server",
    "ServerProtocol",
    "basic_auth",
    "serve",
    "unix_serve",
]

#: A connection handler: called with each open connection; when it returns,
#: the connection is closed with 1000; when it raises, with 1011.
Handler = Callable[["ServerProtocol"], Awaitable[None]]

#: ``process_request(connection, request)``, sync or async: return a
#: :class:`~websockets_lite.Response` to answer the request with it (health
#: checks, 401, 403, redirects...), or ``None`` to go on with the handshake.
#: Plain HTTP requests, without ``Upgrade: websocket``, reach it too.
ProcessRequest = Callable[
    ["ServerProtocol", Request], "Awaitable[Response | None] | Response | None"
]

#: ``select_subprotocol(connection, offered)``: return one of the offered
#: subprotocols, ``None`` to go on without one, or a
#: :class:`~websockets_lite.Response` to refuse the connection with it.
SelectSubprotocol = Callable[["ServerProtocol", list[str]], "str | Response | None"]

#: An allowed ``Origin``: a string, a compiled pattern that must match it
#: whole, or ``None`` for requests without one.
Origin = str | re.Pattern[str] | None

#: ``process_response(connection, request, response)``, sync or async: may
#: change the 101 ``response`` in place, or return another
#: :class:`~websockets_lite.Response` to send instead (a 101, or a refusal).
ProcessResponse = Callable[
    ["ServerProtocol", Request, Response], "Awaitable[Response | None] | Response | None"
]

#: Why a connection may end without anything worth more than a debug line.
_NORMAL_ENDS = frozenset({
    CloseCause.PEER_NORMAL, CloseCause.PEER_GOING_AWAY, CloseCause.APPLICATION,
    CloseCause.SHUTDOWN,
})

#: The default ``Server`` header of handshake answers.
SERVER = f"Python/{sys.version_info.major}.{sys.version_info.minor} websockets_lite/{__version__}"


def offered_subprotocols(request: Request) -> list[str]:
    """The subprotocols a client offers, in its order of preference."""
    return [
        item.strip()
        for value in request.headers.get_all("Sec-WebSocket-Protocol")
        for item in value.split(",")
        if item.strip()
    ]


@dataclasses.dataclass(frozen=True, slots=True)
class HandshakePolicy:
    """How a server answers opening handshakes, checked once and shared by
    its connections (see :class:`ServerProtocol` for the order of checks)."""

    subprotocols: tuple[str, ...] = ()
    select_subprotocol: SelectSubprotocol | None = None
    process_request: ProcessRequest | None = None
    origins: tuple[Origin, ...] | None = None
    process_response: ProcessResponse | None = None
    server_header: str | None = SERVER

    @classmethod
    def build(
        cls,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: SelectSubprotocol | None = None,
        process_request: ProcessRequest | None = None,
        origins: Sequence[Origin] | None = None,
        process_response: ProcessResponse | None = None,
        server_header: str | None = SERVER,
    ) -> HandshakePolicy:
        """Check the arguments as :func:`serve` takes them."""
        check_strings("subprotocols", subprotocols)
        if origins is not None:
            if isinstance(origins, (str, bytes, re.Pattern)):
                raise TypeError("origins must be a list of origins, not a single origin")
            for origin in origins:
                if origin is not None and not isinstance(origin, (str, re.Pattern)):
                    raise TypeError(
                        f"origins must hold strings, patterns or None, not {type(origin).__name__}"
                    )
        for name, hook in (("select_subprotocol", select_subprotocol),
                           ("process_request", process_request),
                           ("process_response", process_response)):
            if hook is not None and not callable(hook):
                raise TypeError(f"{name} must be callable, not {type(hook).__name__}")
        if server_header is not None and not isinstance(server_header, str):
            kind = type(server_header).__name__
            raise TypeError(f"server_header must be a str or None, not {kind}")
        return cls(
            tuple(subprotocols or ()),
            select_subprotocol,
            process_request,
            None if origins is None else tuple(origins),
            process_response,
            server_header,
        )

    def origin_allowed(self, origin: str | None) -> bool:
        """Whether a request with this ``Origin`` (``None``: without one) may connect."""
        if self.origins is None:
            return True
        for allowed in self.origins:
            if isinstance(allowed, re.Pattern):
                if origin is not None and allowed.fullmatch(origin):
                    return True
            elif allowed == origin:
                return True
        return False


class ServerProtocol(Connection):
    """A server connection for ``loop.create_server``, without timeouts.

    When the opening handshake request arrives, the answer is decided in this
    order: 503 if the server is shutting down or has ``max_connections``
    open; ``process_request``'s response if it returns one (plain HTTP
    requests reach it too); an HTTP error for an invalid upgrade request; 403
    if ``origins`` is given and the request's ``Origin`` is not in it (strings
    compare exactly, compiled patterns must match the whole origin; put
    ``None`` in it to allow requests without one); then the subprotocol is
    chosen (``select_subprotocol``, or the first of ``subprotocols`` that the
    client offers, or none) and the connection opens. ``handler(connection)``
    then runs in a task of its own::

        server = await loop.create_server(
            lambda: ServerProtocol(handler), "127.0.0.1", 8765)

    :func:`serve` builds on it and adds timeouts, a registry of connections
    and graceful shutdown; it checks its settings once and passes them as
    ``options`` and ``policy``, which then replace the other keyword
    arguments. Wrong values raise ``ValueError`` or ``TypeError`` here.
    """

    __slots__ = ("_connect_timer", "_task", "connect_timeout", "handler", "policy", "server",
                 "username")

    def __init__(
        self,
        handler: Handler,
        *,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: SelectSubprotocol | None = None,
        process_request: ProcessRequest | None = None,
        origins: Sequence[Origin] | None = None,
        process_response: ProcessResponse | None = None,
        server_header: str | None = SERVER,
        compression: str | None = "deflate",
        max_message_size: float | None = 2**20,
        max_fragments: float | None = 4096,
        message_queue_size: float | None = 1,
        write_limit: float | None = 2**16,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        connect_timeout: float | None = None,
        disconnect_timeout: float | None = None,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
        server: Server | None = None,
        options: Options | None = None,
        policy: HandshakePolicy | None = None,
    ) -> None:
        if not callable(handler):
            raise TypeError(f"handler must be an async callable, not {type(handler).__name__}")
        if options is None:
            options = Options.build(
                LOW_LEVEL,
                compression=compression,
                max_message_size=max_message_size,
                max_fragments=max_fragments,
                message_queue_size=message_queue_size,
                write_limit=write_limit,
                ping_interval=ping_interval,
                ping_timeout=ping_timeout,
                connect_timeout=connect_timeout,
                disconnect_timeout=disconnect_timeout,
            )
        if policy is None:
            policy = HandshakePolicy.build(
                subprotocols, select_subprotocol, process_request, origins, process_response,
                server_header,
            )
        protocol = Protocol(
            Side.SERVER,
            max_message_size=options.max_message_size,
            max_fragments=options.max_fragments,
            compression=options.compression,
        )
        super().__init__(protocol, options, logger=logger)
        self.handler = handler
        #: The handshake settings, shared with the other connections of a server.
        self.policy = policy
        self.connect_timeout = options.connect_timeout
        #: Set by :func:`basic_auth` once the client authenticated.
        self.username: str | None = None
        self.server = server
        self._task: asyncio.Task[None] | None = None
        self._connect_timer: asyncio.TimerHandle | None = None

    def respond(self, status: int, text: str) -> Response:
        """An HTTP answer with a plain text body, for ``process_request`` to
        return (as websockets' ``connection.respond()``)."""
        return Response(status, body=text)

    @property
    def request(self) -> Request:
        """The opening handshake request (``request.path``,
        ``request.headers``). It is always there in ``process_request`` and
        in the handler, so it is typed without ``None``; before the request
        has arrived, reading it raises ``RuntimeError``."""
        request = self.protocol.request
        if request is None:
            raise RuntimeError("the opening handshake request has not arrived yet")
        return request

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Registered first: whatever happens next, shutdown finds it.
        if self.server is not None:
            self.server._accepted(self)
        super().connection_made(transport)
        if self.connect_timeout != math.inf:
            self._connect_timer = self.loop.call_later(self.connect_timeout, self._connect_expired)

    def _connect_expired(self) -> None:
        # Slow or silent client: drop it silently; the handler never runs.
        self._connect_timer = None
        self.logger.debug("opening handshake timed out; aborting %s", self.remote_address)
        self._cause = CloseCause.HANDSHAKE_TIMEOUT
        self.abort()

    def _on_request(self, request: Request) -> None:
        # Answered right here, in the read callback, unless process_request
        # is async: the 101 goes out without waiting for a loop iteration.
        try:
            decision = self._decide(request)
        except Exception:
            self.logger.exception("opening handshake failed")
            decision = Response(500, body="Internal server error.\n"), None
        if isinstance(decision, tuple):
            self._answer(request, *decision)
        else:
            self._read_flow.pause_reading()
            self._start(self._decide_later(request, decision))

    def _start(self, coroutine: Coroutine[Any, Any, None]) -> None:
        self._task = self.loop.create_task(coroutine)
        if self.server is not None:
            self.server._started(self._task)

    async def _decide_later(self, request: Request, answer: Awaitable[Response | None]) -> None:
        try:
            response = await answer
            if response is None and self.server is not None and self.server.closing:
                response = Response(503, body="The server is shutting down.\n")
            decision = (response, None) if response is not None else self._negotiate(request)
        except Exception:
            self.logger.exception("opening handshake failed")
            decision = Response(500, body="Internal server error.\n"), None
        if self.state is State.CONNECTING:  # else it dropped, or connect_timeout expired
            self._answer(request, *decision)
            self._process()

    def _decide(
        self, request: Request
    ) -> tuple[Response | None, str | None] | Awaitable[Response | None]:
        """Return the HTTP answer refusing the request, or ``None`` and the
        subprotocol to accept it with; or what an async process_request
        returned, to await before deciding."""
        server = self.server
        if server is not None:
            if server.closing:
                return Response(503, body="The server is shutting down.\n"), None
            if server.max_connections is not None and len(server._open) >= server.max_connections:
                return Response(503, body="Too many connections; try again later.\n"), None
        process_request = self.policy.process_request
        if process_request is not None:
            answer = process_request(self, request)
            if inspect.isawaitable(answer):
                return answer
            if answer is not None:
                return answer, None
        return self._negotiate(request)

    def _negotiate(self, request: Request) -> tuple[Response | None, str | None]:
        if self.protocol.upgrade_error is not None:
            return self.protocol.upgrade_error, None
        if not self.policy.origin_allowed(request.headers.get("Origin")):
            return Response(403, body="Origin not allowed.\n"), None
        offered = offered_subprotocols(request)
        select_subprotocol = self.policy.select_subprotocol
        if select_subprotocol is not None:
            chosen = select_subprotocol(self, offered)
            if isinstance(chosen, Response):
                return chosen, None
            if chosen is not None and chosen not in offered:
                raise ValueError(f"select_subprotocol chose {chosen!r}, which was not offered")
            return None, chosen
        # The first of ours that the client offers; None when it offers none
        # of them (as aiohttp and Node's ws do): a handler that needs one closes.
        return None, next((s for s in self.policy.subprotocols if s in offered), None)

    def _answer(self, request: Request, response: Response | None, subprotocol: str | None) -> None:
        """Write the answer: a refusal, or the 101 (the connection's state
        change then starts the handler, in :meth:`_opened`), after
        ``process_response`` when there is one."""
        policy = self.policy
        try:
            if response is None:
                headers = () if policy.server_header is None else (
                    ("Server", policy.server_header),
                )
                response = self.protocol.prepare_accept(subprotocol, headers)
                if policy.process_response is not None:
                    answer = policy.process_response(self, request, response)
                    if inspect.isawaitable(answer):
                        self._read_flow.pause_reading()
                        self._start(self._answer_later(request, response, answer))
                        return
                    response = answer if answer is not None else response
        except Exception:
            self.logger.exception("opening handshake failed")
            response = Response(500, body="Internal server error.\n")
        self._send_answer(request, response)

    async def _answer_later(
        self, request: Request, response: Response, answer: Awaitable[Response | None]
    ) -> None:
        try:
            response = await answer or response
        except Exception:
            self.logger.exception("opening handshake failed")
            response = Response(500, body="Internal server error.\n")
        if self.state is State.CONNECTING:  # else it dropped, or connect_timeout expired
            self._send_answer(request, response)
            self._process()

    def _send_answer(self, request: Request, response: Response) -> None:
        server_header = self.policy.server_header
        try:
            if response.status == 101:
                data = self.protocol.send_accept(response)
            else:
                if server_header is not None and "Server" not in response.headers:
                    headers = Headers(response.headers)
                    headers.add("Server", server_header)
                    response = Response(response.status, headers, response.body, response.reason)
                data = self.protocol.reject(response)
        except ValueError:  # headers that cannot be sent, a status out of range
            self.logger.exception("opening handshake failed: the answer cannot be sent")
            response = Response(500, body="Internal server error.\n")
            data = self.protocol.reject(response)
        if response.status != 101 and self.logger.isEnabledFor(logging.INFO):
            status = response.status
            self.logger.info("answered %s %s with HTTP %d", self.peer, request.path, status)
        self._write(data)

    def _opened(self) -> None:
        super()._opened()
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None
        if self.server is not None:
            self.server._opened(self)
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info("connection open: %s %s", self.peer, self.request.path)
        self._start(self._run_handler())

    async def _run_handler(self) -> None:
        try:
            await self.handler(self)
        except ConnectionClosed:
            if self.protocol.state is State.OPEN and not self._lost:
                # Not this connection's own end: another one's, escaping from
                # the handler (a broadcast loop, say). A handler failure.
                self.logger.error("connection handler failed", exc_info=True)
                await self.close(CloseCode.INTERNAL_ERROR, "internal error")
            else:
                await self.wait_closed()
        except Exception:
            self.logger.error("connection handler failed", exc_info=True)
            await self.close(CloseCode.INTERNAL_ERROR, "internal error")
        else:
            await self.close()

    def _handshake_failed(self) -> None:
        super()._handshake_failed()
        response = self.protocol.response
        if self.server is not None and response is not None:
            self.server._refused(response.status)

    def _connection_ended(self) -> None:
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None
        if self.protocol.opened:
            cause = self.close_cause
            # Normal ends at DEBUG, the others at INFO, as websockets' levels go.
            level = logging.DEBUG if cause in _NORMAL_ENDS else logging.INFO
            if self.logger.isEnabledFor(level):
                assert cause is not None
                self.logger.log(
                    level, "connection closed: %s %s (%s)", self.peer, self._closed_exc(),
                    cause.value,
                )
        if self.server is not None:
            self.server._ended(self)


@dataclasses.dataclass(frozen=True, slots=True)
class ServerStats:
    """A snapshot of a server's counters (see :attr:`Server.stats`).

    Counts are totals since the server started; buffers are what open
    connections hold now, their peaks sampled every second and at each
    snapshot. Nothing is counted per message beyond each connection's own
    counters, which the snapshot adds up: the cost is in the snapshot.
    """

    #: Open connections.
    connections: int
    #: Opening handshakes answered with 101.
    handshakes_accepted: int
    #: Opening handshakes refused, by HTTP status.
    handshakes_rejected: dict[int, int]
    messages_in: int
    messages_out: int
    bytes_in: int
    bytes_out: int
    #: Messages that ``broadcast()`` delivered, and connections it skipped as slow.
    broadcasts_delivered: int
    broadcasts_skipped: int
    #: Connections ended, by :class:`~websockets_lite.CloseCause` value.
    closes: dict[str, int]
    #: Bytes held for reading (queued and unparsed) across open connections.
    read_buffer_bytes: int
    read_buffer_peak: int
    #: Bytes waiting to be written across open connections.
    write_buffer_bytes: int
    write_buffer_peak: int
    #: Open connections whose reading is paused because the application is behind.
    paused_connections: int


class Server:
    """A running WebSocket server, as returned by :func:`serve`.

    ``connections`` is the registry of open connections. :meth:`close`
    stops accepting, answers handshakes in progress with 503, closes every
    open connection (1001 unless told otherwise) and waits for the handlers:
    all of it within one deadline, ``disconnect_timeout`` from the call, after
    which handlers still running are cancelled and connections aborted.
    """

    def __init__(
        self,
        handler: Handler,
        options: Options,
        policy: HandshakePolicy,
        max_connections: int | None,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None,
        create_connection: type[ServerProtocol] | None = None,
    ) -> None:
        self.handler = handler
        #: The class of the connections (a subclass of ServerProtocol).
        self.create_connection = create_connection or ServerProtocol
        #: The limits, timeouts and keepalive of every connection.
        self.options = options
        #: How opening handshakes are answered.
        self.policy = policy
        #: Open connections beyond which handshakes are answered with 503.
        self.max_connections = max_connections
        self.logger = logger
        self.server: asyncio.Server | None = None
        self.closing = False
        self._open: set[ServerProtocol] = set()
        self._alive: set[ServerProtocol] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._close_task: asyncio.Task[None] | None = None
        self._closed = asyncio.get_running_loop().create_future()
        # Counters of connections gone, and of handshakes; see stats.
        self._gone = [0, 0, 0, 0, 0, 0]  # messages and bytes in/out, broadcasts sent/skipped
        self._accepted_count = 0
        self._rejected: dict[int, int] = {}
        self._closes: dict[str, int] = {}
        self._peaks = [0, 0]
        self._sampler: asyncio.TimerHandle | None = None

    @property
    def disconnect_timeout(self) -> float:
        """How long :meth:`close` lets connections and handlers end."""
        return self.options.disconnect_timeout

    def _factory(self) -> ServerProtocol:
        return self.create_connection(
            self.handler, server=self, options=self.options, policy=self.policy,
            logger=self.logger,
        )

    def _accepted(self, connection: ServerProtocol) -> None:
        self._alive.add(connection)

    def _started(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _opened(self, connection: ServerProtocol) -> None:
        self._open.add(connection)
        self._accepted_count += 1
        if self._sampler is None:
            self._sampler = connection.loop.call_later(1.0, self._sample)

    def _refused(self, status: int) -> None:
        self._rejected[status] = self._rejected.get(status, 0) + 1

    def _ended(self, connection: ServerProtocol) -> None:
        self._open.discard(connection)
        self._alive.discard(connection)
        cause = connection.close_cause
        if connection.protocol.opened or cause is CloseCause.HANDSHAKE_TIMEOUT:
            assert cause is not None
            self._closes[cause.value] = self._closes.get(cause.value, 0) + 1
        gone = self._gone
        gone[0] += connection.messages_in
        gone[1] += connection.messages_out
        gone[2] += connection.bytes_in
        gone[3] += connection.bytes_out
        gone[4] += connection.broadcasts_sent
        gone[5] += connection.broadcasts_skipped

    def _held(self) -> tuple[int, int, int]:
        read = write = paused = 0
        for ws in self._open:
            read += ws._read_held()
            write += ws._write_held()
            paused += ws._stalled
        self._peaks[0] = max(self._peaks[0], read)
        self._peaks[1] = max(self._peaks[1], write)
        return read, write, paused

    def _sample(self) -> None:
        # Peaks of the buffers, once a second while connections are open.
        self._sampler = None
        if self._open and not self.closing:
            self._held()
            self._sampler = asyncio.get_running_loop().call_later(1.0, self._sample)

    @property
    def stats(self) -> ServerStats:
        """Server-wide counters: connections, handshakes, messages, bytes,
        broadcasts, closes by cause, buffers (see :class:`ServerStats`)."""
        open_ = list(self._open)
        totals = list(self._gone)
        for ws in open_:
            totals[0] += ws.messages_in
            totals[1] += ws.messages_out
            totals[2] += ws.bytes_in
            totals[3] += ws.bytes_out
            totals[4] += ws.broadcasts_sent
            totals[5] += ws.broadcasts_skipped
        read, write, paused = self._held()
        return ServerStats(
            connections=len(open_),
            handshakes_accepted=self._accepted_count,
            handshakes_rejected=dict(self._rejected),
            messages_in=totals[0],
            messages_out=totals[1],
            bytes_in=totals[2],
            bytes_out=totals[3],
            broadcasts_delivered=totals[4],
            broadcasts_skipped=totals[5],
            closes=dict(self._closes),
            read_buffer_bytes=read,
            read_buffer_peak=self._peaks[0],
            write_buffer_bytes=write,
            write_buffer_peak=self._peaks[1],
            paused_connections=paused,
        )

    @property
    def connections(self) -> set[ServerProtocol]:
        """The open connections (a new set each time: safe to iterate while
        connections come and go)."""
        return set(self._open)

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets."""
        return tuple(self.server.sockets) if self.server is not None else ()

    def close(
        self,
        close_connections: bool = True,
        code: int = CloseCode.GOING_AWAY,
        reason: str = "",
    ) -> None:
        """Start shutting down; :meth:`wait_closed` waits until it is done.

        With ``close_connections=False`` open connections are left to end
        on their own (``wait_closed`` then waits for them, without a
        deadline). Raises ``ValueError`` for a close code that may not be
        sent or a reason over 123 bytes.
        """
        check_close(code, reason)
        if self._close_task is None:
            self._close_task = asyncio.get_running_loop().create_task(
                self._shutdown(close_connections, code, reason)
            )

    async def _shutdown(self, close_connections: bool, code: int, reason: str) -> None:
        self.closing = True
        if self._sampler is not None:
            self._sampler.cancel()
            self._sampler = None
        assert self.server is not None
        self.server.close()
        if close_connections:
            # One deadline for everything: each closing handshake is bounded
            # by the same disconnect_timeout, starting now, and so are handlers.
            timeout = None if self.disconnect_timeout == math.inf else self.disconnect_timeout
            for ws in list(self._open):
                ws.close_nowait(code, reason, cause=CloseCause.SHUTDOWN)
        else:
            timeout = None  # connections end on their own, handlers with them
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                # Cancelled handlers unwind in a loop iteration or two; one that
                # swallows the cancellation does not hold shutdown back.
                await asyncio.wait(pending, timeout=0.01)
        for ws in list(self._alive):
            if close_connections or ws.state is State.CONNECTING:
                ws.abort()
        await self.server.wait_closed()
        if not self._closed.done():
            self._closed.set_result(None)

    async def wait_closed(self) -> None:
        """Wait until the server is closed and every connection has ended."""
        await asyncio.shield(self._closed)

    async def start_serving(self) -> None:
        """Start accepting connections (for ``serve(..., start_serving=False)``)."""
        assert self.server is not None
        await self.server.start_serving()

    def is_serving(self) -> bool:
        """Whether the server accepts connections."""
        return self.server is not None and self.server.is_serving()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the server runs on."""
        assert self.server is not None
        return self.server.get_loop()

    async def serve_forever(self) -> None:
        """Accept connections (starting to, after ``start_serving=False``)
        until the server is closed; cancelling it closes the server."""
        if self.server is not None and not self.closing and not self.server.is_serving():
            await self.server.start_serving()
        try:
            await asyncio.shield(self._closed)
        except asyncio.CancelledError:
            self.close()
            await self.wait_closed()
            raise

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        await self.wait_closed()


class serve:
    """Start a WebSocket server; await it, or use it with ``async with``.

    ::

        async def handler(ws):
            async for message in ws:
                await ws.send(message)

        async with serve(handler, "127.0.0.1", 8765) as server:
            await server.serve_forever()

    ``process_response(connection, request, response)`` may change or
    replace the 101 answer; ``server_header`` names the server in every
    answer (``None`` omits it). ``start_serving=False`` (an argument of
    ``loop.create_server``) opens the socket without accepting until
    :meth:`Server.start_serving` or :meth:`Server.serve_forever`.
    ``connect_timeout`` bounds the time from TCP accept to the handler being
    called (slow or silent clients are dropped and the handler never runs);
    ``disconnect_timeout`` bounds the closing handshake after the handler
    returns, and the whole shutdown; ``None`` (or ``math.inf``) disables any
    timeout or limit. ``subprotocols``, ``select_subprotocol``,
    ``process_request`` and ``origins`` decide the handshake as
    :class:`ServerProtocol` describes; ``max_connections`` caps open
    connections (503 beyond). Every setting is checked here: a wrong value
    raises ``ValueError`` or ``TypeError`` naming it. Other keyword arguments
    (``ssl``, ``sock``, ``reuse_port``, ``backlog``...) go to
    ``loop.create_server``.
    """

    def __init__(
        self,
        handler: Handler,
        host: str | None = None,
        port: int | None = None,
        *,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: SelectSubprotocol | None = None,
        process_request: ProcessRequest | None = None,
        origins: Sequence[Origin] | None = None,
        process_response: ProcessResponse | None = None,
        server_header: str | None = SERVER,
        max_connections: int | None = None,
        compression: str | None = "deflate",
        message_queue_size: float | None = 1,
        max_message_size: float | None = 2**20,
        max_fragments: float | None = 4096,
        connect_timeout: float | None = 10,
        disconnect_timeout: float | None = 10,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        write_limit: float | None = 2**16,
        create_connection: type[ServerProtocol] | None = None,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if create_connection is not None and not (
            isinstance(create_connection, type) and issubclass(create_connection, ServerProtocol)
        ):
            raise TypeError("create_connection must be a subclass of ServerProtocol")
        self.create_connection = create_connection
        if not callable(handler):
            raise TypeError(f"handler must be an async callable, not {type(handler).__name__}")
        if max_connections is not None and (
            isinstance(max_connections, bool)
            or not isinstance(max_connections, int)
            or max_connections < 1
        ):
            raise ValueError(
                f"max_connections must be an int >= 1 or None, not {max_connections!r}"
            )
        self.handler = handler
        self.host = host
        self.port = port
        self.path: str | None = None  # set by unix_serve()
        self.max_connections = max_connections
        self.logger = logger
        self.kwargs = kwargs
        self.options = Options.build(
            compression=compression,
            message_queue_size=message_queue_size,
            max_message_size=max_message_size,
            max_fragments=max_fragments,
            connect_timeout=connect_timeout,
            disconnect_timeout=disconnect_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            write_limit=write_limit,
        )
        self.policy = HandshakePolicy.build(
            subprotocols, select_subprotocol, process_request, origins, process_response,
            server_header,
        )
        self.server: Server | None = None

    async def _create(self) -> Server:
        server = Server(
            self.handler, self.options, self.policy, self.max_connections, self.logger,
            self.create_connection,
        )
        loop = asyncio.get_running_loop()
        if self.path is not None:
            server.server = await loop.create_unix_server(
                server._factory, self.path, **self.kwargs
            )
        else:
            server.server = await loop.create_server(
                server._factory, self.host, self.port, **self.kwargs
            )
        return server

    def __await__(self) -> Generator[Any, None, Server]:
        return self._create().__await__()

    async def __aenter__(self) -> Server:
        self.server = await self._create()
        return self.server

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.server is not None
        await self.server.__aexit__(exc_type, exc, tb)


def unix_serve(handler: Handler, path: str | None = None, **kwargs: Any) -> serve:
    """Like :func:`serve`, listening on the Unix socket ``path`` (or on the
    socket given with ``sock=``)."""
    server = serve(handler, **kwargs)
    server.path = path
    return server


def basic_auth(
    realm: str = "",
    credentials: tuple[str, str] | Iterable[tuple[str, str]] | None = None,
    check_credentials: Callable[[str, str], bool | Awaitable[bool]] | None = None,
) -> ProcessRequest:
    """Return a ``process_request`` that requires HTTP Basic authentication.

    Give either ``credentials`` (one ``(username, password)`` pair or several)
    or ``check_credentials(username, password)``, sync or async. A request
    without valid credentials is answered with 401 and a ``WWW-Authenticate``
    challenge; on success the handler finds the name in ``ws.username``.
    Compose it with other checks by calling it from your own
    ``process_request``.
    """
    if (credentials is None) == (check_credentials is None):
        raise TypeError("give either credentials or check_credentials")
    if credentials is not None:
        pairs = cast(
            "list[tuple[str, str]]", [credentials] if _is_pair(credentials) else list(credentials)
        )
        if not pairs or not all(_is_pair(pair) for pair in pairs):
            raise TypeError(f"credentials must be a (username, password) pair or pairs of str, "
                            f"not {credentials!r}")
        table = {user.encode(): password.encode() for user, password in pairs}

        def check(username: str, password: str) -> bool:
            expected = table.get(username.encode())
            return expected is not None and hmac.compare_digest(expected, password.encode())

        check_credentials = check
    assert check_credentials is not None
    challenge = Response(
        401,
        [("WWW-Authenticate", f'Basic realm="{realm}", charset="UTF-8"')],
        "Missing or invalid credentials.\n",
    )

    async def process_request(ws: ServerProtocol, request: Request) -> Response | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(token, validate=True).decode()
                username, sep, password = decoded.partition(":")
            except (binascii.Error, UnicodeDecodeError):
                sep = ""
            if sep:
                valid = check_credentials(username, password)
                if inspect.isawaitable(valid):
                    valid = await valid
                if valid:
                    ws.username = username
                    return None
        return challenge

    return process_request


def _is_pair(value: object) -> bool:
    return (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(item, str) for item in value)
    )
