"""The client: :func:`connect` (high level, with timeouts) and
:class:`ClientProtocol` (low level, for ``loop.create_connection``)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import math
import random
import socket
import ssl as ssl_module
import sys
import urllib.parse
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Sequence
from types import TracebackType
from typing import Any
from typing import Protocol as TypingProtocol

from .connection import Connection, default_logger
from .exceptions import (
    ConnectTimeout,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidURI,
    SecurityError,
)
from .http import Headers, HeadersLike
from .options import LOW_LEVEL, Options, check_strings
from .protocol import Protocol, Side, State
from .proxy import ProxyURI, http_tunnel, parse_proxy, proxy_for, socks_socket

__all__ = [
    "USER_AGENT",
    "Backoff",
    "BackoffLike",
    "ClientProtocol",
    "WebSocketURI",
    "connect",
    "parse_uri",
    "process_exception",
    "retryable",
    "unix_connect",
]

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
    ``options``, when given (as :func:`connect` does), replaces the limits
    and timeouts given one by one. Wrong values raise ``ValueError`` or
    ``TypeError`` here.
    """

    __slots__ = ("_request",)

    def __init__(
        self,
        uri: str | WebSocketURI,
        *,
        subprotocols: Sequence[str] | None = None,
        additional_headers: HeadersLike | None = None,
        origin: str | None = None,
        user_agent_header: str | None = USER_AGENT,
        compression: str | None = "deflate",
        max_message_size: float | None = 2**20,
        max_fragments: float | None = 4096,
        message_queue_size: float | None = 1,
        write_limit: float | None = 2**16,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        disconnect_timeout: float | None = None,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
        options: Options | None = None,
    ) -> None:
        wsuri = uri if isinstance(uri, WebSocketURI) else parse_uri(uri)
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
                disconnect_timeout=disconnect_timeout,
            )
        _check_handshake_arguments(subprotocols, origin, user_agent_header)
        protocol = Protocol(
            Side.CLIENT,
            max_message_size=options.max_message_size,
            max_fragments=options.max_fragments,
            compression=options.compression,
        )
        super().__init__(protocol, options, logger=logger)
        headers = Headers()
        if origin is not None:
            headers["Origin"] = origin
        if user_agent_header is not None:
            headers["User-Agent"] = user_agent_header
        additional = Headers(additional_headers)
        for name in additional:
            del headers[name]
        for name, value in additional.raw_items():
            headers.add(name, value)
        # Written now, so that a header that cannot be sent raises ValueError
        # here, from connect(), before any byte goes out.
        self._request = protocol.send_request(
            wsuri.host_header, wsuri.path, subprotocols=list(subprotocols or ()), headers=headers
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        request, self._request = self._request, b""
        self._write(request)

    async def handshake(self) -> None:
        """Wait for the opening handshake to complete.

        Raises :exc:`~websockets_lite.InvalidStatus` when the server answers
        other than 101, :exc:`~websockets_lite.InvalidHandshake` when its
        answer is malformed or the connection drops. Cancelling it is safe.
        """
        protocol = self.protocol
        while not protocol.opened:
            if protocol.state is State.CLOSED or self._lost:
                if protocol.handshake_exc is not None:
                    raise protocol.handshake_exc
                raise InvalidMessage("connection lost during the opening handshake") from (
                    self._lost_exc
                )
            if self._handshake_waiters is None:
                self._handshake_waiters = []
            await self._wait(self._handshake_waiters)


def _check_handshake_arguments(
    subprotocols: Sequence[str] | None, origin: str | None, user_agent_header: str | None
) -> None:
    check_strings("subprotocols", subprotocols)
    for name, value in (("origin", origin), ("user_agent_header", user_agent_header)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a str or None, not {type(value).__name__}")


@dataclasses.dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between reconnection attempts of ``async for ws in connect(...)``.

    Exponential with full jitter: the n-th delay in a row (from 0) is drawn
    uniformly between 0 and ``min(maximum, initial * factor ** n)``; with the
    defaults, at most 1, 2, 4, 8... up to 60 seconds. After a connection that
    worked, the sequence starts over.
    """

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 60.0

    def __post_init__(self) -> None:
        for name in ("initial", "factor", "maximum"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"Backoff {name} must be a number, not {type(value).__name__}")
            if not value > 0 or value == math.inf:
                raise ValueError(f"Backoff {name} must be a positive finite number, not {value!r}")
        if self.factor < 1:
            raise ValueError(f"Backoff factor must be >= 1, not {self.factor!r}")

    def delays(self) -> Iterator[float]:
        bound = self.initial
        while True:
            yield random.uniform(0, bound)
            bound = min(self.maximum, bound * self.factor)


class BackoffLike(TypingProtocol):
    """What ``connect(backoff=...)`` takes: an object whose ``delays()``
    returns a fresh iterator of delays in seconds, called when the loop
    starts and again after each connection that worked."""

    def delays(self) -> Iterator[float]: ...


#: Statuses that answer a handshake and are worth retrying later.
RETRY_STATUSES = frozenset({500, 502, 503, 504})
#: Statuses that redirect a handshake, and how many redirects are followed.
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10
#: Headers not carried over when a redirect goes to another origin.
CREDENTIAL_HEADERS = ("Authorization", "Cookie", "Proxy-Authorization")


def retryable(exc: BaseException) -> bool:
    """Whether ``async for ws in connect(...)`` retries after ``exc``: network
    errors, timeouts, a connection closed during the handshake, and HTTP 500,
    502, 503 and 504; not 4xx answers, invalid URIs or malformed handshakes."""
    if isinstance(exc, InvalidStatus):
        return exc.status in RETRY_STATUSES
    if isinstance(exc, InvalidHandshake):
        return isinstance(exc.__cause__, EOFError)
    return isinstance(exc, (OSError, TimeoutError))


def process_exception(exc: Exception) -> Exception | None:
    """The default reconnection policy of ``async for ws in connect(...)``:
    ``None`` (retry) for what :func:`retryable` accepts, else the exception
    to raise. A function of this shape can be given as ``process_exception``
    (websockets' hook, same contract)."""
    return None if retryable(exc) else exc


def _redirect(uri: WebSocketURI, location: str) -> WebSocketURI:
    current = f"{'wss' if uri.secure else 'ws'}://{uri.host_header}{uri.path}"
    target = urllib.parse.urljoin(current, location)
    scheme, sep, rest = target.partition("://")
    scheme = {"http": "ws", "https": "wss"}.get(scheme, scheme)
    new = parse_uri(f"{scheme}{sep}{rest}")
    if uri.secure and not new.secure:
        raise SecurityError(f"refused to follow a redirect from wss:// to {location}")
    return new


class connect:
    """Connect to a WebSocket server: await it, use it with ``async with``, or
    iterate over it to reconnect whenever the connection is lost.

    ::

        async with connect("ws://127.0.0.1:8765/") as ws:
            await ws.send("hello")
            print(await ws.recv())

        ws = await connect("ws://127.0.0.1:8765/")  # remember to close it

        async for ws in connect("ws://127.0.0.1:8765/"):
            try:
                async for message in ws:
                    ...
            except ConnectionClosed:
                continue  # reconnect

    ``connect_timeout`` bounds TCP, TLS, the opening handshake and redirects
    and raises :exc:`~websockets_lite.ConnectTimeout`; ``disconnect_timeout``
    bounds the closing handshake, after which the TCP connection is aborted;
    ``None`` (or ``math.inf``) disables any timeout or limit. Every setting
    is checked here, when ``connect()`` is called: a wrong value raises
    ``ValueError`` or ``TypeError`` naming it, and an invalid URI
    :exc:`~websockets_lite.InvalidURI`. ``ssl`` is an ``SSLContext`` (wss:// without one
    uses a default, verifying context); ``sock`` an already connected socket.
    Credentials in the URI (``ws://user:password@host/``) become a Basic
    ``Authorization`` header. A header in ``additional_headers`` whose name
    is not a token or whose value holds CR, LF or NUL raises ``ValueError``
    before connecting. Redirects (301, 302, 303, 307, 308) are followed
    up to 10 times, never from wss:// to ws://, and credentials are dropped
    when the origin changes. Iterating reconnects after the errors that
    :func:`retryable` accepts, waiting as ``backoff`` says, and raises the
    others; ``process_exception(exc)`` changes that policy (return ``None``
    to retry, or the exception to raise). ``create_connection`` is the class
    of the connection (a subclass of :class:`ClientProtocol`). ``host`` and
    ``port`` override where the TCP connection goes; other keyword arguments
    go to ``loop.create_connection``.

    ``proxy=True`` (the default) connects through the proxy that the
    environment names for the destination (``https_proxy``, ``http_proxy``,
    ``all_proxy``, minus ``no_proxy``), if any; ``proxy="http://..."``,
    ``"https://..."``, ``"socks5h://..."`` (``socks5``, ``socks4a``,
    ``socks4``) names one; ``None`` (or ``False``) connects directly.
    HTTP proxies are reached with CONNECT (credentials in the proxy URL
    become Basic authentication; ``proxy_ssl`` is the TLS context for an
    ``https://`` proxy); SOCKS needs the ``socks`` extra (python-socks).
    ``connect_timeout`` covers the proxy too.
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
        proxy: str | bool | None = True,
        proxy_ssl: ssl_module.SSLContext | None = None,
        compression: str | None = "deflate",
        message_queue_size: float | None = 1,
        max_message_size: float | None = 2**20,
        max_fragments: float | None = 4096,
        connect_timeout: float | None = 10,
        disconnect_timeout: float | None = 10,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        write_limit: float | None = 2**16,
        backoff: BackoffLike = Backoff(),  # frozen: safe to share
        process_exception: Callable[[Exception], Exception | None] = process_exception,
        create_connection: type[ClientProtocol] | None = None,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        parse_uri(uri)  # InvalidURI now rather than when awaited
        if isinstance(proxy, str):
            parse_proxy(proxy)  # InvalidProxy now too
        elif proxy is not None and not isinstance(proxy, bool):
            raise TypeError(f"proxy must be a URL, True or None, not {type(proxy).__name__}")
        self.proxy = proxy
        self.proxy_ssl = proxy_ssl
        _check_handshake_arguments(subprotocols, origin, user_agent_header)
        if not callable(getattr(backoff, "delays", None)):
            raise TypeError(f"backoff must be a Backoff, not {type(backoff).__name__}")
        if not callable(process_exception):
            raise TypeError("process_exception must be callable")
        if create_connection is not None and not (
            isinstance(create_connection, type) and issubclass(create_connection, ClientProtocol)
        ):
            raise TypeError("create_connection must be a subclass of ClientProtocol")
        self.process_exception = process_exception
        self.create_connection = create_connection or ClientProtocol
        self.uri = uri
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.sock = sock
        self.path: str | None = None  # set by unix_connect()
        self.additional_headers = Headers(additional_headers)
        self.subprotocols = subprotocols
        self.origin = origin
        self.user_agent_header = user_agent_header
        self.backoff = backoff
        self.logger = logger or default_logger
        self.kwargs = kwargs
        #: The limits, timeouts and keepalive, checked once here.
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
        self._logger = logger
        self.connection: ClientProtocol | None = None

    async def _connect(self) -> ClientProtocol:
        wsuri = parse_uri(self.uri)
        headers = Headers(self.additional_headers)
        connect_timeout = self.options.connect_timeout
        timeout = None if connect_timeout == math.inf else connect_timeout
        try:
            async with asyncio.timeout(timeout) as deadline:
                for _ in range(MAX_REDIRECTS + 1):
                    try:
                        return await self._connect_once(wsuri, headers)
                    except InvalidStatus as exc:
                        location = exc.headers.get("Location")
                        if exc.status not in REDIRECT_STATUSES or location is None:
                            raise
                        if self.sock is not None:
                            raise  # a given socket cannot be reused
                        new = _redirect(wsuri, location)
                        origin = (wsuri.secure, wsuri.host, wsuri.port)
                        if (new.secure, new.host, new.port) != origin:
                            for name in CREDENTIAL_HEADERS:
                                del headers[name]
                        self.logger.info("redirected to %s", location)
                        wsuri = new
                raise SecurityError(f"more than {MAX_REDIRECTS} redirects")
        except TimeoutError as exc:
            if deadline.expired():
                raise ConnectTimeout(
                    f"timed out after {connect_timeout} s while opening the connection"
                ) from exc
            raise

    async def _connect_once(self, wsuri: WebSocketURI, headers: Headers) -> ClientProtocol:
        loop = asyncio.get_running_loop()
        kwargs = dict(self.kwargs)
        if wsuri.secure:
            kwargs["ssl"] = self.ssl or ssl_module.create_default_context()
            kwargs["server_hostname"] = self.server_hostname or wsuri.host
        elif self.ssl is not None:
            raise ValueError("ssl= was given for a ws:// URI; use wss://")
        if wsuri.username is not None and "Authorization" not in headers:
            token = base64.b64encode(f"{wsuri.username}:{wsuri.password or ''}".encode())
            headers = Headers(headers)
            headers["Authorization"] = "Basic " + token.decode()
        # Built before the socket: a header that cannot be sent raises here.
        connection = self.create_connection(
            wsuri,
            subprotocols=self.subprotocols,
            additional_headers=headers,
            origin=self.origin,
            user_agent_header=self.user_agent_header,
            logger=self._logger,
            options=self.options,
        )

        def factory() -> ClientProtocol:
            return connection

        proxy = self._proxy(wsuri)
        try:
            if self.path is not None:
                await loop.create_unix_connection(factory, self.path, **kwargs)
            elif proxy is not None:
                await self._through(proxy, wsuri, connection, kwargs)
            elif self.sock is not None:
                if wsuri.secure and self.server_hostname is None:
                    kwargs["server_hostname"] = wsuri.host
                await loop.create_connection(factory, sock=self.sock, **kwargs)
            else:
                host = kwargs.pop("host", wsuri.host)
                port = kwargs.pop("port", wsuri.port)
                await loop.create_connection(factory, host, port, **kwargs)
            await connection.handshake()
        except BaseException:
            connection.abort()
            raise
        return connection

    def _proxy(self, wsuri: WebSocketURI) -> ProxyURI | None:
        if self.path is not None or self.sock is not None or not self.proxy:
            return None
        if self.proxy is True:
            url = proxy_for(wsuri.host, wsuri.port, wsuri.secure)
            return None if url is None else parse_proxy(url)
        assert isinstance(self.proxy, str)
        return parse_proxy(self.proxy)

    async def _through(
        self,
        proxy: ProxyURI,
        wsuri: WebSocketURI,
        connection: ClientProtocol,
        kwargs: dict[str, Any],
    ) -> None:
        """Open the tunnel, then TLS (for wss://) and the connection in it."""
        loop = asyncio.get_running_loop()
        host = kwargs.pop("host", wsuri.host)
        port = kwargs.pop("port", wsuri.port)
        if proxy.is_socks:
            sock = await socks_socket(proxy, host, port)
            await loop.create_connection(lambda: connection, sock=sock, **kwargs)
            return
        transport = await http_tunnel(
            proxy, host, port, user_agent=self.user_agent_header, ssl=self.proxy_ssl
        )
        try:
            if "ssl" in kwargs:
                started = await loop.start_tls(
                    transport, connection, kwargs["ssl"],
                    server_hostname=kwargs.get("server_hostname"),
                )
                assert started is not None
                transport = started
            else:
                transport.set_protocol(connection)
        except BaseException:
            transport.abort()
            raise
        connection.connection_made(transport)

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
        await self.connection.__aexit__(exc_type, exc, tb)

    async def __aiter__(self) -> AsyncIterator[ClientProtocol]:
        if self.sock is not None:
            raise ValueError("cannot reconnect with a given socket; give a host instead")
        delays = self.backoff.delays()
        while True:
            try:
                connection = await self._connect()
            except Exception as exc:
                error = self.process_exception(exc)
                if error is exc:
                    raise
                if error is not None:
                    raise error from exc
                delay = next(delays)
                self.logger.info(
                    "connect to %s failed: %s; retrying in %.1f s", self.uri, exc, delay
                )
                await asyncio.sleep(delay)
                continue
            try:
                yield connection
            finally:
                await connection.close()
            delays = self.backoff.delays()  # it worked: start the delays over
            await asyncio.sleep(next(delays))


def unix_connect(path: str, uri: str = "ws://localhost/", **kwargs: Any) -> connect:
    """Like :func:`connect`, over the Unix socket ``path``; ``uri`` gives the
    Host header and the request path."""
    client = connect(uri, **kwargs)
    client.path = path
    return client
