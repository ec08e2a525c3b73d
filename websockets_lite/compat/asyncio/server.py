"""websockets' server (``websockets.asyncio.server``) on the core's
:func:`~websockets_lite.serve`."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeAlias, cast

from ... import server as _server
from ...http import Headers as _CoreHeaders
from ...http import Request
from ...http import Response as _CoreResponse
from ...protocol.handshake import reason_phrase
from ...server import SERVER, Origin, Server
from ..datastructures import Headers
from ..http11 import Response
from ..typing import LoggerLike, StatusLike
from .connection import Connection, broadcast, core_settings

__all__ = [
    "Server",
    "ServerConnection",
    "basic_auth",
    "broadcast",
    "serve",
    "unix_serve",
]


class ServerConnection(Connection, _server.ServerProtocol):
    """A server connection: the core's
    :class:`~websockets_lite.ServerProtocol` with websockets' API
    (``ping()`` returns a future, ``respond()`` a websockets
    :class:`~websockets_lite.compat.http11.Response`). ``request``,
    ``response``, ``username`` (after :func:`basic_auth`), ``server`` and
    attributes set by the application work as in websockets."""

    __slots__ = ()

    def respond(self, status: StatusLike, text: str) -> Response:
        """A plain text HTTP response for ``process_request`` or
        ``process_response`` to return."""
        code = int(status)
        headers = Headers([("Content-Type", "text/plain; charset=utf-8")])
        return Response(code, reason_phrase(code), headers, text.encode())


Handler: TypeAlias = Callable[[ServerConnection], Awaitable[None]]
#: websockets' ``process_request(connection, request)``, sync or async.
ProcessRequest: TypeAlias = Callable[
    [ServerConnection, Request], "Awaitable[_CoreResponse | None] | _CoreResponse | None"
]
#: websockets' ``process_response(connection, request, response)``, sync or async.
ProcessResponse: TypeAlias = Callable[
    [ServerConnection, Request, _CoreResponse],
    "Awaitable[_CoreResponse | None] | _CoreResponse | None",
]
#: websockets' ``select_subprotocol(connection, subprotocols)``.
SelectSubprotocol: TypeAlias = Callable[[ServerConnection, Sequence[str]], "str | None"]


def _compat_request(request: Request) -> Request:
    # The hooks see websockets' Headers; the core keeps its own request.
    return Request(request.path, Headers(request.headers.raw_items()), request.method)


def _core_response(
    response: _CoreResponse | None, server_header: str | None
) -> _CoreResponse | None:
    # What the core sends: its own Response and Headers. The Server header
    # is added here, as websockets adds it to every response.
    if response is None:
        return response
    headers = _CoreHeaders(response.headers)
    if server_header is not None and "Server" not in headers:
        headers.add("Server", server_header)
    return _CoreResponse(response.status, headers, response.body, response.reason)


def _map_process_request(
    hook: ProcessRequest, server_header: str | None
) -> _server.ProcessRequest:
    async def later(answer: Awaitable[_CoreResponse | None]) -> _CoreResponse | None:
        return _core_response(await answer, server_header)

    def process_request(
        ws: _server.ServerProtocol, request: Request
    ) -> Awaitable[_CoreResponse | None] | _CoreResponse | None:
        answer = hook(cast(ServerConnection, ws), _compat_request(request))
        if inspect.isawaitable(answer):
            return later(answer)  # stays sync when the hook is: no loop iteration
        return _core_response(answer, server_header)

    return process_request


def _map_process_response(
    hook: ProcessResponse, server_header: str | None
) -> _server.ProcessResponse:
    def settle(response: _CoreResponse, answer: _CoreResponse | None) -> _CoreResponse | None:
        if answer is None:  # changed in place, with websockets' Headers: copy back
            response.headers = _CoreHeaders(response.headers)
            return None
        return _core_response(answer, server_header)

    async def later(
        response: _CoreResponse, answer: Awaitable[_CoreResponse | None]
    ) -> _CoreResponse | None:
        return settle(response, await answer)

    def process_response(
        ws: _server.ServerProtocol, request: Request, response: _CoreResponse
    ) -> Awaitable[_CoreResponse | None] | _CoreResponse | None:
        response.headers = Headers(response.headers.raw_items())
        answer = hook(cast(ServerConnection, ws), _compat_request(request), response)
        if inspect.isawaitable(answer):
            return later(response, answer)
        return settle(response, answer)

    return process_response


def core_arguments(
    *,
    origins: Sequence[Origin] | None = None,
    extensions: Sequence[Any] | None = None,
    subprotocols: Sequence[str] | None = None,
    select_subprotocol: SelectSubprotocol | None = None,
    compression: str | None = "deflate",
    process_request: ProcessRequest | None = None,
    process_response: ProcessResponse | None = None,
    server_header: str | None = SERVER,
    open_timeout: float | None = 10,
    ping_interval: float | None = 20,
    ping_timeout: float | None = 20,
    close_timeout: float | None = 10,
    max_size: int | tuple[int | None, int | None] | None = 2**20,
    max_queue: int | tuple[int | None, int | None] | None = 16,
    write_limit: int | tuple[int, int | None] = 2**15,
    logger: LoggerLike | None = None,
    create_connection: type[ServerConnection] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """:func:`serve`'s arguments, with websockets' names and defaults, as
    the core's ``serve()`` takes them (also used by the router)."""
    if extensions:
        raise NotImplementedError(
            "custom extensions are not supported; compression='deflate' "
            "negotiates permessage-deflate"
        )
    if kwargs.get("ssl") is not None:
        # As websockets: the TLS handshake and shutdown get the same timeouts.
        kwargs.setdefault("ssl_handshake_timeout", open_timeout)
        kwargs.setdefault("ssl_shutdown_timeout", close_timeout)
    return {
        "origins": origins,
        "subprotocols": subprotocols,
        "select_subprotocol": select_subprotocol,
        "compression": compression,
        "process_request": None if process_request is None else _map_process_request(
            process_request, server_header
        ),
        "process_response": None if process_response is None else _map_process_response(
            process_response, server_header
        ),
        "server_header": server_header,
        "ping_interval": ping_interval,
        "ping_timeout": ping_timeout,
        "logger": logging.getLogger("websockets.server") if logger is None else logger,
        "create_connection": ServerConnection if create_connection is None else create_connection,
        **core_settings(
            open_timeout=open_timeout,
            close_timeout=close_timeout,
            max_size=max_size,
            max_queue=max_queue,
            write_limit=write_limit,
        ),
        **kwargs,
    }


def serve(
    handler: Handler,
    host: str | None = None,
    port: int | None = None,
    *,
    origins: Sequence[Origin] | None = None,
    extensions: Sequence[Any] | None = None,
    subprotocols: Sequence[str] | None = None,
    select_subprotocol: SelectSubprotocol | None = None,
    compression: str | None = "deflate",
    process_request: ProcessRequest | None = None,
    process_response: ProcessResponse | None = None,
    server_header: str | None = SERVER,
    open_timeout: float | None = 10,
    ping_interval: float | None = 20,
    ping_timeout: float | None = 20,
    close_timeout: float | None = 10,
    max_size: int | tuple[int | None, int | None] | None = 2**20,
    max_queue: int | tuple[int | None, int | None] | None = 16,
    write_limit: int | tuple[int, int | None] = 2**15,
    logger: LoggerLike | None = None,
    create_connection: type[ServerConnection] | None = None,
    **kwargs: Any,
) -> _server.serve:
    """Start a WebSocket server, with websockets' arguments; await it or use
    it with ``async with``, as websockets' ``serve()``. It is the core's
    :func:`~websockets_lite.serve` with:

    - ``open_timeout`` as ``connect_timeout``, ``close_timeout`` as
      ``disconnect_timeout`` (``None`` disables either);
    - ``max_size`` (bytes, ``None``, or ``(message, fragment)``: the
      message size is used), ``max_queue`` (``None`` or ``(high, low)``:
      ``high`` is used; it counts *messages* here, frames in websockets) and
      ``write_limit`` (an int or ``(high, low)``) as the core's limits, with
      websockets' defaults (1 MiB, 16, 32 KiB);
    - ``process_request`` and ``process_response`` called with a
      :class:`ServerConnection` and a request whose headers are websockets'
      :class:`~websockets_lite.compat.datastructures.Headers`; they may
      return a websockets :class:`~websockets_lite.compat.http11.Response`;
    - ``logger`` defaulting to the ``websockets.server`` logger;
    - ``create_connection`` a subclass of :class:`ServerConnection`.

    ``extensions`` other than permessage-deflate (``compression``) raise
    ``NotImplementedError``. Other keyword arguments are the core's
    (``max_connections``, ``max_fragments``...) or
    ``loop.create_server``'s (``ssl``, ``sock``, ``start_serving``...).
    """
    arguments = core_arguments(
        origins=origins, extensions=extensions, subprotocols=subprotocols,
        select_subprotocol=select_subprotocol, compression=compression,
        process_request=process_request, process_response=process_response,
        server_header=server_header, open_timeout=open_timeout, ping_interval=ping_interval,
        ping_timeout=ping_timeout, close_timeout=close_timeout, max_size=max_size,
        max_queue=max_queue, write_limit=write_limit, logger=logger,
        create_connection=create_connection, **kwargs,
    )
    return _server.serve(cast(_server.Handler, handler), host, port, **arguments)


def unix_serve(handler: Handler, path: str | None = None, **kwargs: Any) -> _server.serve:
    """Like :func:`serve`, listening on the Unix socket ``path``."""
    return _server.unix_serve(cast(_server.Handler, handler), path, **core_arguments(**kwargs))


def basic_auth(
    realm: str = "",
    credentials: tuple[str, str] | Iterable[tuple[str, str]] | None = None,
    check_credentials: Callable[[str, str], Awaitable[bool] | bool] | None = None,
) -> ProcessRequest:
    """A ``process_request`` requiring HTTP Basic authentication, as
    websockets' ``basic_auth()``: give ``credentials`` (a pair or pairs) or
    ``check_credentials(username, password)`` (sync or async), not both
    (``ValueError``). On success ``connection.username`` is set; otherwise
    the answer is 401 with a ``WWW-Authenticate`` challenge."""
    if (credentials is None) == (check_credentials is None):
        raise ValueError("provide either credentials or check_credentials")
    return cast(ProcessRequest, _server.basic_auth(realm, credentials, check_credentials))
