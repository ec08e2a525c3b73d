"""websockets' router (``websockets.asyncio.router``) on the core's
:func:`~websockets_lite.router.route`; it needs werkzeug."""

from __future__ import annotations

import ssl as ssl_module
from typing import TYPE_CHECKING, Any, Literal

from ... import router as _router
from ... import server as _server
from .server import core_arguments

if TYPE_CHECKING:
    from werkzeug.routing import Map

__all__ = ["route", "unix_route"]


def route(
    url_map: Map,
    *args: Any,
    server_name: str | None = None,
    ssl: ssl_module.SSLContext | Literal[True] | None = None,
    create_router: Any = None,
    **kwargs: Any,
) -> _server.serve:
    """Start a server that dispatches each connection to the handler that
    ``url_map`` (a ``werkzeug.routing.Map``) matches, with the path
    parameters as keyword arguments, as websockets' ``route()``. The other
    arguments are :func:`~websockets_lite.compat.asyncio.server.serve`'s
    (``host`` and ``port`` may be positional). A custom ``create_router``
    is not supported (``NotImplementedError``). Redirects are answered
    with werkzeug's status (308) where websockets answers 302."""
    if create_router is not None:
        raise NotImplementedError("create_router is not supported")
    if len(args) > 2:
        raise TypeError(f"route() takes at most 2 positional arguments after url_map ({args!r})")
    host, port = (*args, None, None)[:2]
    return _router.route(
        url_map, host, port, server_name=server_name, ssl=ssl, **_arguments(ssl, kwargs)
    )


def unix_route(url_map: Map, path: str | None = None, **kwargs: Any) -> _server.serve:
    """Like :func:`route`, listening on the Unix socket ``path``."""
    server_name = kwargs.pop("server_name", None)
    ssl = kwargs.pop("ssl", None)
    if kwargs.pop("create_router", None) is not None:
        raise NotImplementedError("create_router is not supported")
    return _router.unix_route(
        url_map, path, server_name=server_name, ssl=ssl, **_arguments(ssl, kwargs)
    )


def _arguments(ssl: object, kwargs: dict[str, Any]) -> dict[str, Any]:
    # The core's route() takes ssl itself; the TLS timeouts are serve()'s.
    if isinstance(ssl, ssl_module.SSLContext):
        arguments = core_arguments(ssl=ssl, **kwargs)
        del arguments["ssl"]
        return arguments
    return core_arguments(**kwargs)
