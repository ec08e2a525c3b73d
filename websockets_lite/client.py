"""The client: :func:`connect` (high level, with timeouts) and
:class:`ClientProtocol` (low level, for ``loop.create_connection``)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import socket
import ssl as ssl_module
import sys
import urllib.parse
from collections.abc import Generator, Sequence
from types import TracebackType
from typing import Any

from .connection import Connection
from .exceptions import ConnectTimeout, InvalidURI
from .http import Headers, HeadersLike
from .protocol import Protocol, Side

__all__ = ["USER_AGENT", "ClientProtocol", "WebSocketURI", "connect", "parse_uri"]

#: The default ``User-Agent`` header.
USER_AGENT = f"Python/{sys.version_info.major}.{sys.version_info.minor} websockets_lite"


@dataclasses.dataclass(frozen=True, slots=True)
class WebSocketURI:
    """A parsed ws:// or wss:// URI."""

    secure: bool
    host: str
    port: int
    path: str
    username: str | None = None
    password: str | None = None

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.secure else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse_uri(uri: str) -> WebSocketURI:
    """Parse a ws:// or wss:// URI; raise :exc:`~websockets_lite.InvalidURI`."""
    try:
        parts = urllib.parse.urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise InvalidURI(uri, str(exc)) from None
    if parts.scheme not in ("ws", "wss"):
        raise InvalidURI(uri, "the scheme is not ws or wss")
    if not parts.hostname:
        raise InvalidURI(uri, "the host is missing")
    if parts.fragment:
        raise InvalidURI(uri, "a WebSocket URI cannot have a fragment")
    secure = parts.scheme == "wss"
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return WebSocketURI(
        secure=secure,
        host=parts.hostname,
        port=port or (443 if secure else 80),
        path=urllib.parse.quote(path, safe="/%?=&:@!$'()*+,;~"),
        username=urllib.parse.unquote(parts.username) if parts.username else None,
        password=urllib.parse.unquote(parts.password) if parts.password else None,
    )


class ClientProtocol(Connection):
    """A client connection for ``loop.create_connection``, without timeouts.

    It sends the opening handshake request as soon as the TCP (or TLS)
    connection is made; await :meth:`handshake` before using it::

        loop = asyncio.get_running_loop()
        _, ws = await loop.create_connection(
            lambda: ClientProtocol("ws://127.0.0.1:8765/"), "127.0.0.1", 8765)
        async with asyncio.timeout(10):
            await ws.handshake()
        await ws.send("hello")

    Nothing here times out: compose ``asyncio.timeout()`` around any call
    (cancelling :meth:`~Connection.close` aborts the TCP connection).
    """

    __slots__ = ("_request_args",)

    def __init__(
        self,
        uri: str | WebSocketURI,
        *,
        subprotocols: Sequence[str] | None = None,
        additional_headers: HeadersLike | None = None,
        origin: str | None = None,
        user_agent_header: str | None = USER_AGENT,
        compression: str | None = "deflate",
        max_message_size: float = 2**20,
        max_fragments: float = 4096,
        message_queue_size: float = 1,
        write_limit: int = 2**16,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        disconnect_timeout: float = math.inf,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    ) -> None:
        wsuri = uri if isinstance(uri, WebSocketURI) else parse_uri(uri)
        protocol = Protocol(
            Side.CLIENT,
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
        headers = Headers()
        if origin is not None:
            headers["Origin"] = origin
        if user_agent_header is not None:
            headers["User-Agent"] = user_agent_header
        for name, value in Headers(additional_headers).raw_items():
            headers[name] = value
        self._request_args = (wsuri.host_header, wsuri.path, list(subprotocols or ()), headers)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._handshake_waiter = self.loop.create_future()
        host, path, subprotocols, headers = self._request_args
        self._write(
            self.protocol.send_request(host, path, subprotocols=subprotocols, headers=headers)
        )

    async def handshake(self) -> None:
        """Wait for the opening handshake to complete.

        Raises :exc:`~websockets_lite.InvalidStatus` when the server answers
        other than 101, :exc:`~websockets_lite.InvalidHandshake` when its
        answer is malformed or the connection drops. Cancelling it is safe.
        """
        assert self._handshake_waiter is not None, "the connection is not made yet"
        await asyncio.shield(self._handshake_waiter)


class connect:
    """Connect to a WebSocket server; await it, or use it with ``async with``.

    ::

        async with connect("ws://127.0.0.1:8765/") as ws:
            await ws.send("hello")
            print(await ws.recv())

        ws = await connect("ws://127.0.0.1:8765/")  # remember to close it

    ``connect_timeout`` bounds TCP, TLS and the opening handshake and raises
    :exc:`~websockets_lite.ConnectTimeout`; ``disconnect_timeout`` bounds the
    closing handshake, after which the TCP connection is aborted; both accept
    ``math.inf``. ``ssl`` is an ``SSLContext`` (wss:// without one uses a
    default, verifying context); ``sock`` an already connected socket. Other
    keyword arguments go to ``loop.create_connection``.
    """

    def __init__(
        self,
        uri: str,
        *,
        subprotocols: Sequence[str] | None = None,
        additional_headers: HeadersLike | None = None,
        origin: str | None = None,
        user_agent_header: str | None = USER_AGENT,
        ssl: ssl_module.SSLContext | None = None,
        server_hostname: str | None = None,
        sock: socket.socket | None = None,
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
        self.uri = uri
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.sock = sock
        self.connect_timeout = connect_timeout
        self.kwargs = kwargs
        self.options: dict[str, Any] = dict(
            subprotocols=subprotocols,
            additional_headers=additional_headers,
            origin=origin,
            user_agent_header=user_agent_header,
            compression=compression,
            message_queue_size=message_queue_size,
            max_message_size=max_message_size,
            max_fragments=max_fragments,
            write_limit=write_limit,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            disconnect_timeout=disconnect_timeout,
            logger=logger,
        )
        self.connection: ClientProtocol | None = None

    async def _connect(self) -> ClientProtocol:
        wsuri = parse_uri(self.uri)
        loop = asyncio.get_running_loop()
        kwargs = dict(self.kwargs)
        if wsuri.secure:
            kwargs["ssl"] = self.ssl or ssl_module.create_default_context()
            if self.server_hostname is not None:
                kwargs["server_hostname"] = self.server_hostname
        elif self.ssl is not None:
            raise ValueError("ssl= was given for a ws:// URI; use wss://")
        if self.sock is not None:
            kwargs["sock"] = self.sock
        else:
            kwargs["host"], kwargs["port"] = wsuri.host, wsuri.port
        connection: ClientProtocol | None = None

        def factory() -> ClientProtocol:
            nonlocal connection
            connection = ClientProtocol(wsuri, **self.options)
            return connection

        timeout = None if self.connect_timeout == math.inf else self.connect_timeout
        try:
            async with asyncio.timeout(timeout) as deadline:
                await loop.create_connection(factory, **kwargs)
                assert connection is not None
                await connection.handshake()
        except TimeoutError as exc:
            if connection is not None:
                connection.abort()
            if deadline.expired():
                raise ConnectTimeout(
                    f"timed out after {self.connect_timeout} s while opening the connection"
                ) from exc
            raise
        except BaseException:
            if connection is not None:
                connection.abort()
            raise
        return connection

    def __await__(self) -> Generator[Any, None, ClientProtocol]:
        return self._connect().__await__()

    async def __aenter__(self) -> ClientProtocol:
        self.connection = await self._connect()
        return self.connection

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.connection is not None
        await self.connection.close()
