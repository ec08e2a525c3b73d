"""Routing: one server, several handlers, chosen by the request's path.

:func:`route` and :func:`unix_route` take a :class:`werkzeug.routing.Map`
whose rules have connection handlers as endpoints, as websockets' functions
of the same names do. Matching happens in ``process_request``, before the
connection opens, so a path that matches no rule is answered with HTTP 404
and a redirect with 308 without opening a WebSocket connection. The matched
handler then runs with the connection and the rule's path parameters as
keyword arguments.

werkzeug is an optional dependency (the ``router`` extra): it is imported
when a router is created, never by ``import websockets_lite``.
"""

from __future__ import annotations

import inspect
import ssl as ssl_module
import urllib.parse
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from .http import Request, Response
from .server import ProcessRequest, ServerProtocol, serve, unix_serve

if TYPE_CHECKING:
    from werkzeug.exceptions import HTTPException
    from werkzeug.routing import Map, MapAdapter

__all__ = ["Endpoint", "Router", "route", "unix_route"]

#: The endpoint of a rule: ``handler(ws, **arguments)``, called with the
#: connection and the values the rule's path parameters took (converted:
#: ``<int:id>`` gives an ``int``).
Endpoint = Callable[..., Awaitable[None]]

_MISSING_WERKZEUG = (
    "routing needs werkzeug, which is the router extra: pip install 'websockets_lite[router]'"
)


def _require_werkzeug() -> None:
    """Import werkzeug's routing now, or say how to install it."""
    try:
        import werkzeug.exceptions
        import werkzeug.routing  # noqa: F401
    except ImportError as exc:
        raise ImportError(_MISSING_WERKZEUG) from exc


class Router:
    """Match handshake requests against a werkzeug ``Map`` and run the
    matched handler.

    :meth:`route_request` is a ``process_request``: it answers requests
    that match no rule (404), that werkzeug redirects (308, with a
    ``Location`` header), or that it refuses otherwise (its status: 405 for
    a method a rule does not allow, 400 for an invalid ``Host``), and
    remembers the match of the others. :meth:`handler` is the server's
    handler: it runs the matched endpoint. :func:`route` wires both into
    :func:`~websockets_lite.serve`; use the class directly to build the
    server yourself::

        router = Router(url_map)
        serve(router.handler, host, port, process_request=router.route_request)

    ``server_name`` is the host name (and port) that clients use; redirects
    point to it. Without it, each request's ``Host`` header is used (and
    ``Map(host_matching=True)`` rules match against it). ``url_scheme``,
    ``ws`` or ``wss``, is the scheme of redirects.

    Every rule of the map is marked as a WebSocket rule (``websocket=True``,
    as websockets does), so rules need not say it. Endpoints must be
    callables, except for rules with ``redirect_to``. Wrong arguments raise
    ``TypeError`` or ``ValueError`` here.
    """

    def __init__(
        self,
        url_map: Map,
        server_name: str | None = None,
        url_scheme: str = "ws",
    ) -> None:
        _require_werkzeug()
        from werkzeug.exceptions import BadHost
        from werkzeug.routing import Map

        if not isinstance(url_map, Map):
            raise TypeError(f"url_map must be a werkzeug.routing.Map, not {type(url_map).__name__}")
        if server_name is not None and not isinstance(server_name, str):
            raise TypeError(f"server_name must be a str or None, not {type(server_name).__name__}")
        if url_scheme not in ("ws", "wss"):
            raise ValueError(f"url_scheme must be 'ws' or 'wss', not {url_scheme!r}")
        for rule in url_map.iter_rules():
            if rule.redirect_to is None and not rule.build_only and not callable(rule.endpoint):
                kind = type(rule.endpoint).__name__
                raise TypeError(
                    f"url_map: the endpoint of rule {rule.rule!r} must be an async callable "
                    f"(the connection handler), not {kind}"
                )
        self.url_map = url_map
        self.server_name = server_name
        self.url_scheme = url_scheme
        self._mark_websocket_rules()
        # With a fixed server name, one adapter serves every request.
        self._adapter: MapAdapter | None = None
        if server_name is not None:
            try:
                self._adapter = url_map.bind(server_name, url_scheme=url_scheme)
            except BadHost:
                raise ValueError(f"server_name is not a valid host name: {server_name!r}") from None
        # From route_request to handler: connections take weak references,
        # so a handshake that fails after the match leaves nothing behind.
        self._matches: weakref.WeakKeyDictionary[
            ServerProtocol, tuple[Endpoint, Mapping[str, Any]]
        ] = weakref.WeakKeyDictionary()

    def _mark_websocket_rules(self) -> None:
        # werkzeug matches a ws:// or wss:// request only against rules with
        # websocket=True; the others would answer 400 (WebsocketMismatch).
        for rule in self.url_map.iter_rules():
            rule.websocket = True

    def route_request(self, ws: ServerProtocol, request: Request) -> Response | None:
        """Match ``request``: return the HTTP answer refusing it, or ``None``
        after remembering the endpoint and arguments for :meth:`handler`.

        The path is percent-decoded before matching, as WSGI servers do, so
        ``/rooms/caf%C3%A9`` gives ``room="café"``; the query string is kept
        in redirects that werkzeug makes (a missing trailing slash, say).
        """
        from werkzeug.exceptions import HTTPException
        from werkzeug.routing import WebsocketMismatch

        target = urllib.parse.urlsplit(request.path)
        try:
            path = urllib.parse.unquote(target.path, errors="strict")
        except UnicodeDecodeError:
            return Response(400, body="The path is not valid UTF-8.\n")
        try:
            adapter = self._adapter
            if adapter is None:
                host = request.headers.get("Host")
                if host is None:
                    return Response(400, body="Missing Host header.\n")
                adapter = self.url_map.bind(host, url_scheme=self.url_scheme)
            try:
                endpoint, arguments = adapter.match(
                    path, method=request.method, query_args=target.query
                )
            except WebsocketMismatch:
                # A rule added to the map after the router was made.
                self._mark_websocket_rules()
                endpoint, arguments = adapter.match(
                    path, method=request.method, query_args=target.query
                )
        except HTTPException as exc:
            return self._refuse(exc)
        self._matches[ws] = (endpoint, arguments)
        return None

    def _refuse(self, exc: HTTPException) -> Response:
        """The answer to werkzeug's refusal: a redirect, 404, 405..."""
        from werkzeug.exceptions import MethodNotAllowed
        from werkzeug.routing import RequestRedirect

        status = exc.code or 500
        if isinstance(exc, RequestRedirect):
            return Response(
                status, [("Location", exc.new_url)], f"{exc.name}: {exc.new_url}\n"
            )
        headers = []
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            headers.append(("Allow", ", ".join(sorted(exc.valid_methods))))
        return Response(status, headers, f"{exc.name}.\n")

    async def handler(self, ws: ServerProtocol) -> None:
        """Run the endpoint that :meth:`route_request` matched, with the
        rule's path parameters as keyword arguments."""
        try:
            endpoint, arguments = self._matches.pop(ws)
        except KeyError:
            raise RuntimeError(
                "no route for this connection: give Router.route_request as process_request"
            ) from None
        await endpoint(ws, **arguments)


def _setup(
    url_map: Map,
    server_name: str | None,
    ssl: ssl_module.SSLContext | Literal[True] | None,
    process_request: ProcessRequest | None,
    kwargs: dict[str, Any],
) -> tuple[Router, ProcessRequest]:
    """Check route()'s own arguments; return the router and the
    ``process_request`` to serve with (``ssl`` goes into ``kwargs``)."""
    if ssl is None:
        url_scheme = "ws"
    elif ssl is True:
        url_scheme = "wss"  # TLS ends at a proxy: redirects still say wss://
    elif isinstance(ssl, ssl_module.SSLContext):
        url_scheme = "wss"
        kwargs["ssl"] = ssl
    else:
        raise TypeError(
            f"ssl must be an ssl.SSLContext, True (TLS ends at a proxy) or None, "
            f"not {type(ssl).__name__}"
        )
    if process_request is not None and not callable(process_request):
        raise TypeError(f"process_request must be callable, not {type(process_request).__name__}")
    router = Router(url_map, server_name, url_scheme)
    if process_request is None:
        return router, router.route_request
    return router, _then_route(process_request, router)


def _then_route(first: ProcessRequest, router: Router) -> ProcessRequest:
    """A ``process_request`` that runs ``first``, then routes if ``first``
    let the request through. It stays synchronous when ``first`` is, so the
    handshake is answered without waiting for a loop iteration."""

    async def route_later(
        ws: ServerProtocol, request: Request, answer: Awaitable[Response | None]
    ) -> Response | None:
        response = await answer
        if response is not None:
            return response
        return router.route_request(ws, request)

    def process_request(
        ws: ServerProtocol, request: Request
    ) -> Awaitable[Response | None] | Response | None:
        answer = first(ws, request)
        if inspect.isawaitable(answer):
            return route_later(ws, request, answer)
        if answer is not None:
            return answer
        return router.route_request(ws, request)

    return process_request


def route(
    url_map: Map,
    host: str | None = None,
    port: int | None = None,
    *,
    server_name: str | None = None,
    ssl: ssl_module.SSLContext | Literal[True] | None = None,
    process_request: ProcessRequest | None = None,
    **kwargs: Any,
) -> serve:
    """Start a server that dispatches each connection to the handler that
    ``url_map`` matches with the request's path; await it, or use it with
    ``async with``, as :func:`~websockets_lite.serve`::

        from werkzeug.routing import Map, Rule

        async def lobby(ws: ServerProtocol) -> None: ...
        async def room(ws: ServerProtocol, name: str) -> None: ...

        url_map = Map([Rule("/", endpoint=lobby), Rule("/rooms/<name>", endpoint=room)])

        async with route(url_map, "127.0.0.1", 8765) as server:
            await server.serve_forever()

    Path parameters reach the handler as keyword arguments. A request that
    matches no rule is answered with 404, a redirect (``Rule(...,
    redirect_to=...)``, or a rule ending with a slash requested without it)
    with werkzeug's status (308) and a ``Location`` header, which clients
    follow; other refusals with their status (405 for a method a rule does
    not allow). ``process_request``, when given, runs first: a response it
    returns wins, and routing happens only if it returns ``None``.

    ``server_name`` is the host name (and port) that clients use, for
    redirects; without it, the request's ``Host`` header. ``ssl`` is an
    ``ssl.SSLContext`` to serve TLS, or ``True`` when a proxy in front
    terminates TLS (nothing changes but the ``wss://`` of redirects). Every
    other argument is :func:`~websockets_lite.serve`'s. werkzeug is needed:
    ``pip install 'websockets_lite[router]'``; without it, ``ImportError``.
    """
    router, chained = _setup(url_map, server_name, ssl, process_request, kwargs)
    return serve(router.handler, host, port, process_request=chained, **kwargs)


def unix_route(
    url_map: Map,
    path: str | None = None,
    *,
    server_name: str | None = None,
    ssl: ssl_module.SSLContext | Literal[True] | None = None,
    process_request: ProcessRequest | None = None,
    **kwargs: Any,
) -> serve:
    """Like :func:`route`, listening on the Unix socket ``path`` (or on the
    socket given with ``sock=``), as :func:`~websockets_lite.unix_serve`
    does. ``server_name`` defaults to the ``Host`` header, which a client
    gives in its URI (``unix_connect(path, "ws://localhost/rooms/1")``)."""
    router, chained = _setup(url_map, server_name, ssl, process_request, kwargs)
    return unix_serve(router.handler, path, process_request=chained, **kwargs)
