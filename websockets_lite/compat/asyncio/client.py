"""websockets' client (``websockets.asyncio.client``) on the core's
:func:`~websockets_lite.connect`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Sequence
from typing import Any, cast

from ... import client as _client
from ..client import backoff, process_exception
from ..datastructures import Headers, HeadersLike
from ..typing import LoggerLike
from .connection import Connection, core_settings

__all__ = ["ClientConnection", "connect", "unix_connect"]


class ClientConnection(Connection, _client.ClientProtocol):
    """A client connection: the core's
    :class:`~websockets_lite.ClientProtocol` with websockets' API
    (``ping()`` returns a future)."""

    __slots__ = ()


class _ReconnectDelays:
    """websockets' ``reconnect_delays`` as the core's ``backoff``.

    The core starts a fresh sequence after a connection that worked and
    waits its first delay before reconnecting; websockets reconnects at
    once then, and draws its first delay only after a failed attempt. A
    leading zero gives websockets' timing (the very first failure, before
    any connection worked, is retried at once too).
    """

    __slots__ = ("reconnect_delays",)

    def __init__(self, reconnect_delays: Callable[[], Generator[float]]) -> None:
        if not callable(reconnect_delays):
            raise TypeError("reconnect_delays must be a callable returning an iterator")
        self.reconnect_delays = reconnect_delays

    def delays(self) -> Iterator[float]:
        yield 0.0
        yield from self.reconnect_delays()


class connect(_client.connect):
    """Connect to a WebSocket server, with websockets' arguments: await it,
    use it with ``async with``, or iterate over it to reconnect, as
    websockets' ``connect()``. It is the core's
    :func:`~websockets_lite.connect` with:

    - ``open_timeout`` as ``connect_timeout`` (it raises
      :exc:`~websockets_lite.ConnectTimeout`, a ``TimeoutError``),
      ``close_timeout`` as ``disconnect_timeout``;
    - ``max_size``, ``max_queue`` and ``write_limit`` as in
      :func:`~websockets_lite.compat.asyncio.server.serve`, with
      websockets' defaults;
    - ``reconnect_delays``, a callable returning an iterator of delays
      (default: :func:`~websockets_lite.compat.client.backoff`), and
      ``process_exception``, websockets' reconnection policy;
    - ``additional_headers`` as websockets takes them (repeated names kept);
    - ``ssl=True`` for the default TLS context; ``logger`` defaulting to
      the ``websockets.client`` logger; ``create_connection`` a subclass of
      :class:`ClientConnection`.

    ``extensions`` other than permessage-deflate (``compression``) raise
    ``NotImplementedError``. Other keyword arguments are the core's
    (``ssl``, ``server_hostname``, ``sock``, ``proxy_ssl``,
    ``max_fragments``...) or ``loop.create_connection``'s.
    """

    def __init__(
        self,
        uri: str,
        *,
        origin: str | None = None,
        extensions: Sequence[Any] | None = None,
        subprotocols: Sequence[str] | None = None,
        compression: str | None = "deflate",
        additional_headers: HeadersLike | None = None,
        user_agent_header: str | None = _client.USER_AGENT,
        proxy: str | bool | None = True,
        process_exception: Callable[[Exception], Exception | None] = process_exception,
        open_timeout: float | None = 10,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        close_timeout: float | None = 10,
        reconnect_delays: Callable[[], Generator[float]] = backoff,
        max_size: int | tuple[int | None, int | None] | None = 2**20,
        max_queue: int | tuple[int | None, int | None] | None = 16,
        write_limit: int | tuple[int, int | None] = 2**15,
        logger: LoggerLike | None = None,
        create_connection: type[ClientConnection] | None = None,
        **kwargs: Any,
    ) -> None:
        if extensions:
            raise NotImplementedError(
                "custom extensions are not supported; compression='deflate' "
                "negotiates permessage-deflate"
            )
        if kwargs.get("ssl") is True and uri.startswith("wss:"):
            kwargs["ssl"] = None  # the core's default context for wss://
        headers = None if additional_headers is None else Headers(additional_headers)
        super().__init__(
            uri,
            origin=origin,
            subprotocols=subprotocols,
            compression=compression,
            additional_headers=headers,
            user_agent_header=user_agent_header,
            proxy=proxy,
            process_exception=process_exception,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            backoff=_ReconnectDelays(reconnect_delays),
            logger=logging.getLogger("websockets.client") if logger is None else logger,
            create_connection=ClientConnection if create_connection is None else create_connection,
            **core_settings(
                open_timeout=open_timeout,
                close_timeout=close_timeout,
                max_size=max_size,
                max_queue=max_queue,
                write_limit=write_limit,
            ),
            **kwargs,
        )

    # The same as the core's, typed with the compat connection.

    def __await__(self) -> Generator[Any, None, ClientConnection]:
        return cast(Generator[Any, None, ClientConnection], super().__await__())

    async def __aenter__(self) -> ClientConnection:
        return cast(ClientConnection, await super().__aenter__())

    def __aiter__(self) -> AsyncIterator[ClientConnection]:
        return cast(AsyncIterator[ClientConnection], super().__aiter__())


def unix_connect(path: str | None = None, uri: str | None = None, **kwargs: Any) -> connect:
    """Like :func:`connect`, over the Unix socket ``path``; ``uri`` (default
    ``ws://localhost/``, or ``wss://localhost/`` with ``ssl``) gives the
    ``Host`` header and the request path."""
    if uri is None:
        uri = "ws://localhost/" if kwargs.get("ssl") is None else "wss://localhost/"
    client = connect(uri, **kwargs)
    client.path = path
    return client
