"""A WebSocket protocol for uvicorn, built on this library's connection:

    uvicorn app:app --ws websockets_lite.uvicorn:WebSocketProtocol

ASGI apps then get our bounded read queue (``--ws-max-queue`` messages, the
transport paused beyond, reading ahead for control frames only),
``--ws-max-size`` enforced while a message arrives (1009), keepalive from
``--ws-ping-interval`` / ``--ws-ping-timeout``, and permessage-deflate
(``--ws-per-message-deflate``) through our bounded inflater. It speaks the
whole ASGI WebSocket interface (see :mod:`websockets_lite.asgi_server`); on
server exit, open connections are closed with 1012 (service restart), as
uvicorn's own protocols do.

An app that wraps its socket with :func:`websockets_lite.asgi.accept` gets the
native connection underneath, so that ``broadcast()`` frames once and skips
slow clients at the transport.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from uvicorn.config import Config
from uvicorn.protocols.utils import get_local_addr, get_remote_addr
from uvicorn.server import ServerState

from .asgi_server import ASGIServerProtocol
from .close import CloseCause, CloseCode
from .http import Request, Response
from .options import LOW_LEVEL, Options
from .protocol import State

__all__ = ["WebSocketProtocol"]


class WebSocketProtocol(ASGIServerProtocol):
    """The protocol uvicorn builds for each WebSocket upgrade (``--ws``).

    Settings uvicorn has no option for (``max_fragments``, ``write_limit``,
    ``disconnect_timeout``) come from :meth:`configure`.
    """

    __slots__ = ("config", "connections", "tasks")

    #: Keyword arguments of :func:`~websockets_lite.serve` for the limits and
    #: timeouts, applied over what uvicorn's options set.
    settings: ClassVar[Mapping[str, Any]] = MappingProxyType({})

    @classmethod
    def configure(cls, **settings: Any) -> type[WebSocketProtocol]:
        """This protocol with limits or timeouts that uvicorn has no option
        for (``max_fragments=65536``, ``write_limit=2**20``, ...), checked
        now as :func:`~websockets_lite.serve` checks them. Name the result
        in ``--ws``: ``Protocol = WebSocketProtocol.configure(...)`` in
        ``myproject/ws.py``, then ``--ws myproject.ws:Protocol``."""
        Options.build(LOW_LEVEL, **settings)
        merged = MappingProxyType({**cls.settings, **settings})
        return type(cls.__name__, (cls,), {"__slots__": (), "settings": merged})

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        options = Options.build(
            LOW_LEVEL,
            compression="deflate" if config.ws_per_message_deflate else None,
            max_message_size=config.ws_max_size,
            message_queue_size=config.ws_max_queue,
            # uvicorn takes 0 (as well as None) to mean no keepalive.
            ping_interval=config.ws_ping_interval or None,
            ping_timeout=config.ws_ping_timeout or None,
            disconnect_timeout=10,
            **self.settings,
        )
        super().__init__(
            config.loaded_app,
            options=options,
            root_path=config.root_path,
            app_state=app_state,
            default_headers=server_state.default_headers,
            asgi_version=config.asgi_version,
            logger=logging.getLogger("uvicorn.error"),
        )
        self.config = config
        # uvicorn's types name its own protocols only.
        self.connections: set[Any] = server_state.connections
        self.tasks = server_state.tasks

    def _start(self, coroutine: Coroutine[Any, Any, None]) -> None:
        # uvicorn waits for these tasks at shutdown.
        super()._start(coroutine)
        task = self._task
        assert task is not None
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.connections.add(self)
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        """uvicorn hands over the upgrade request this way, before the
        transport reads into our buffer."""
        self.bytes_in += len(data)
        self.protocol.receive_data(data)
        self._process()

    def _connection_ended(self) -> None:
        self.connections.discard(self)
        super()._connection_ended()

    def _scope(self, request: Request) -> dict[str, Any]:
        # uvicorn's own way to name the addresses (Unix sockets included).
        scope = super()._scope(request)
        transport: Any = self.transport
        scope["server"] = get_local_addr(transport)
        scope["client"] = get_remote_addr(transport)
        return scope

    def shutdown(self) -> None:
        """uvicorn is exiting: close open connections with 1012 (service
        restart); refuse a handshake still waiting for the app."""
        state = self.protocol.state
        if state is State.OPEN:
            self.close_nowait(CloseCode.SERVICE_RESTART, cause=CloseCause.SHUTDOWN)
        elif state is State.CONNECTING and self.protocol.request is not None:
            self._reject(Response(503, body="The server is shutting down.\n"))
        elif state is State.CONNECTING:
            self.abort()
