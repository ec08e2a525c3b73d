"""The server: :func:`serve` and :class:`Server` (high level, with timeouts)
and :class:`ServerProtocol` (low level, for ``loop.create_server``)."""

from __future__ import annotations

import asyncio
import logging
import math
import socket
from collections.abc import Awaitable, Callable, Generator, Sequence
from types import TracebackType
from typing import Any

from .close import CloseCode
from .connection import Connection
from .exceptions import ConnectionClosed
from .http import Request, Response
from .protocol import Protocol, Side, State

__all__ = ["Handler", "Server", "ServerProtocol", "serve"]

#: A connection handler: called with each open connection; when it returns,
#: the connection is closed with 1000; when it raises, with 1011.
Handler = Callable[["ServerProtocol"], Awaitable[None]]


class ServerProtocol(Connection):
    """A server connection for ``loop.create_server``, without timeouts.

    When the opening handshake request arrives it is answered (101, or an
    HTTP error for an invalid request) and ``handler(connection)`` runs in a
    task of its own::

        server = await loop.create_server(
            lambda: ServerProtocol(handler), "127.0.0.1", 8765)

    :func:`serve` builds on it and adds timeouts, a registry of connections
    and graceful shutdown.
    """

    __slots__ = ("_connect_timer", "_task", "connect_timeout", "handler", "server",
                 "subprotocols")

    def __init__(
        self,
        handler: Handler,
        *,
        subprotocols: Sequence[str] | None = None,
        compression: str | None = "deflate",
        max_message_size: float = 2**20,
        max_fragments: float = 4096,
        message_queue_size: float = 1,
        write_limit: int = 2**16,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        connect_timeout: float = math.inf,
        disconnect_timeout: float = math.inf,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
        server: Server | None = None,
    ) -> None:
        protocol = Protocol(
            Side.SERVER,
            max_message_size=max_message_size,
            max_fragments=max_fragments,
            compression=compression,
        )
        super().__init__(
            protocol,
            message_queue_size=message_queue_size,
            write_limit=write_limit,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            disconnect_timeout=disconnect_timeout,
            logger=logger,
        )
        self.handler = handler
        self.subprotocols = list(subprotocols or ())
        self.connect_timeout = connect_timeout
        self.server = server
        self._task: asyncio.Task[None] | None = None
        self._connect_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self.connect_timeout != math.inf:
            self._connect_timer = self.loop.call_later(self.connect_timeout, self._connect_expired)
        if self.server is not None:
            self.server._accepted(self)

    def _connect_expired(self) -> None:
        # Slow or silent client: drop it silently; the handler never runs.
        self._connect_timer = None
        self.logger.debug("opening handshake timed out; aborting %s", self.remote_address)
        self.abort()

    def _on_request(self, request: Request) -> None:
        self._read_flow.pause_reading()
        self._task = self.loop.create_task(self._run(request))
        if self.server is not None:
            self.server._started(self._task)

    async def _run(self, request: Request) -> None:
        try:
            if not self._answer(request):
                return
        except Exception:
            self.logger.exception("opening handshake failed")
            self.abort()
            return
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None
        if self.server is not None:
            self.server._opened(self)
        self.logger.info(
            "connection open: %s %s", _address(self.remote_address), request.path
        )
        try:
            await self.handler(self)
        except ConnectionClosed:
            await self.wait_closed()
        except Exception:
            self.logger.error("connection handler failed", exc_info=True)
            await self.close(CloseCode.INTERNAL_ERROR, "internal error")
        else:
            await self.close()

    def _answer(self, request: Request) -> bool:
        """Answer the handshake request; return whether the connection is open."""
        protocol = self.protocol
        if self.state is not State.CONNECTING:
            return False  # the connection dropped meanwhile
        response: Response | None = None
        if self.server is not None and self.server.closing:
            response = Response(503, body="The server is shutting down.\n")
        elif protocol.upgrade_error is not None:
            response = protocol.upgrade_error
        if response is not None:
            self.logger.info(
                "answered %s with HTTP %d", _address(self.remote_address), response.status
            )
            self._write(protocol.reject(response))
            self._process()
            return False
        self._write(protocol.accept(self._select_subprotocol(request)))
        self._process()
        return True

    def _select_subprotocol(self, request: Request) -> str | None:
        # The first of ours that the client offers; None when it offers none
        # of them (as aiohttp and Node's ws do): a handler that needs one closes.
        offered = [
            item.strip()
            for value in request.headers.get_all("Sec-WebSocket-Protocol")
            for item in value.split(",")
        ]
        for subprotocol in self.subprotocols:
            if subprotocol in offered:
                return subprotocol
        return None

    def _connection_ended(self) -> None:
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None
        if self.protocol.opened:
            self.logger.info(
                "connection closed: %s %s", _address(self.remote_address), self._closed_exc()
            )
        if self.server is not None:
            self.server._ended(self)


def _address(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address or "unix socket")


class Server:
    """A running WebSocket server, as returned by :func:`serve`.

    ``connections`` is the registry of open connections. :meth:`close`
    stops accepting, answers handshakes in progress with 503, closes every
    open connection (1001 unless told otherwise) and waits for the handlers,
    all bounded by ``disconnect_timeout``.
    """

    def __init__(
        self, handler: Handler, disconnect_timeout: float, options: dict[str, Any]
    ) -> None:
        self.handler = handler
        self.disconnect_timeout = disconnect_timeout
        self.options = options
        self.server: asyncio.Server | None = None
        self.closing = False
        self._open: set[ServerProtocol] = set()
        self._alive: set[ServerProtocol] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._close_task: asyncio.Task[None] | None = None
        self._closed = asyncio.get_running_loop().create_future()

    def _factory(self) -> ServerProtocol:
        return ServerProtocol(self.handler, server=self, **self.options)

    def _accepted(self, connection: ServerProtocol) -> None:
        self._alive.add(connection)

    def _started(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _opened(self, connection: ServerProtocol) -> None:
        self._open.add(connection)

    def _ended(self, connection: ServerProtocol) -> None:
        self._open.discard(connection)
        self._alive.discard(connection)

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
        on their own (``wait_closed`` then waits for them).
        """
        if self._close_task is None:
            self._close_task = asyncio.get_running_loop().create_task(
                self._shutdown(close_connections, code, reason)
            )

    async def _shutdown(self, close_connections: bool, code: int, reason: str) -> None:
        self.closing = True
        assert self.server is not None
        self.server.close()
        timeout = None if self.disconnect_timeout == math.inf else self.disconnect_timeout
        if close_connections:
            await asyncio.gather(
                *(ws.close(code, reason) for ws in self._open), return_exceptions=True
            )
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for ws in list(self._alive):
            if close_connections or ws.state is State.CONNECTING:
                ws.abort()
        await self.server.wait_closed()
        if not self._closed.done():
            self._closed.set_result(None)

    async def wait_closed(self) -> None:
        """Wait until the server is closed and every connection has ended."""
        await asyncio.shield(self._closed)

    async def serve_forever(self) -> None:
        """Wait until the server is closed; cancelling it closes the server."""
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

    ``connect_timeout`` bounds the time from TCP accept to the handler being
    called (slow or silent clients are dropped and the handler never runs);
    ``disconnect_timeout`` bounds the closing handshake after the handler
    returns; ``math.inf`` disables either. Other keyword arguments (``ssl``,
    ``sock``, ``reuse_port``, ``backlog``...) go to ``loop.create_server``.
    """

    def __init__(
        self,
        handler: Handler,
        host: str | None = None,
        port: int | None = None,
        *,
        subprotocols: Sequence[str] | None = None,
        compression: str | None = "deflate",
        message_queue_size: float = 1,
        max_message_size: float = 2**20,
        max_fragments: float = 4096,
        connect_timeout: float = 10,
        disconnect_timeout: float = 10,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        write_limit: int = 2**16,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.disconnect_timeout = disconnect_timeout
        self.kwargs = kwargs
        self.options: dict[str, Any] = dict(
            subprotocols=subprotocols,
            compression=compression,
            message_queue_size=message_queue_size,
            max_message_size=max_message_size,
            max_fragments=max_fragments,
            connect_timeout=connect_timeout,
            disconnect_timeout=disconnect_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            write_limit=write_limit,
            logger=logger,
        )
        self.server: Server | None = None

    async def _create(self) -> Server:
        server = Server(self.handler, self.disconnect_timeout, self.options)
        loop = asyncio.get_running_loop()
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
