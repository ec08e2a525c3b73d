"""A WebSocket protocol for uvicorn, built on this library's connection:

    uvicorn app:app --ws websockets_lite.uvicorn:WebSocketProtocol

ASGI apps then get our bounded read queue (``--ws-max-queue`` messages, the
transport paused beyond, reading ahead for control frames only),
``--ws-max-size`` enforced while a message arrives (1009), keepalive from
``--ws-ping-interval`` / ``--ws-ping-timeout``, and permessage-deflate
(``--ws-per-message-deflate``) through our bounded inflater. It speaks the
whole ASGI WebSocket interface: ``websocket.connect``, ``accept`` with a
subprotocol and headers, ``receive``, ``send``, ``close`` with a reason,
``disconnect``, and the ``websocket.http.response`` denial extension; on
server exit, open connections are closed with 1012 (service restart), as
uvicorn's own protocols do.

An app that wraps its socket with :func:`websockets_lite.asgi.accept` gets the
native connection underneath (through the scope extension
``"websockets_lite"``), so that ``broadcast()`` frames once and skips slow
clients at the transport.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import MutableMapping
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.utils import ClientDisconnected, get_local_addr, get_remote_addr, is_ssl
from uvicorn.server import ServerState

from .close import CloseCause, CloseCode
from .connection import Connection
from .exceptions import ConnectionClosed
from .http import Headers, Request, Response
from .options import LOW_LEVEL, Options
from .protocol import State
from .server import ServerProtocol

__all__ = ["WebSocketProtocol"]

Message = MutableMapping[str, Any]


async def _no_handler(ws: ServerProtocol) -> None:  # the ASGI app is the handler
    raise AssertionError("unreachable")


class WebSocketProtocol(ServerProtocol):
    """The protocol uvicorn builds for each WebSocket upgrade (``--ws``)."""

    __slots__ = (
        "_app_task", "_connect_sent", "_denial", "_disconnect", "app", "app_state",
        "asgi_version", "config", "connections", "default_headers", "root_path", "scope",
        "tasks",
    )

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
        )
        super().__init__(_no_handler, options=options, logger=logging.getLogger("uvicorn.error"))
        self.config = config
        self.app = config.loaded_app
        self.app_state = app_state
        self.asgi_version = config.asgi_version
        self.root_path = config.root_path
        # uvicorn's types name its own protocols only.
        self.connections: set[Any] = server_state.connections
        self.tasks = server_state.tasks
        self.default_headers = server_state.default_headers
        self.scope: dict[str, Any] = {}
        self._app_task: asyncio.Task[None] | None = None
        self._connect_sent = False
        self._disconnect: Message | None = None
        self._denial: tuple[int, Headers, bytearray] | None = None

    # Transport callbacks.

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

    # The handshake: the ASGI app decides it.

    def _on_request(self, request: Request) -> None:
        if self.protocol.upgrade_error is not None:
            self._answer(request, self.protocol.upgrade_error, None)
            return
        self._read_flow.pause_reading()  # until the app accepts
        self.scope = self._scope(request)
        self._app_task = task = self.loop.create_task(self._run_app())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _scope(self, request: Request) -> dict[str, Any]:
        raw_path, _, query = request.path.partition("?")
        offered = [
            item.strip()
            for value in request.headers.get_all("Sec-WebSocket-Protocol")
            for item in value.split(",")
            if item.strip()
        ]
        transport: Any = self.transport
        return {
            "type": "websocket",
            "asgi": {"version": self.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "wss" if is_ssl(transport) else "ws",
            "server": get_local_addr(transport),
            "client": get_remote_addr(transport),
            "root_path": self.root_path,
            "path": self.root_path + urllib.parse.unquote(raw_path),
            "raw_path": (self.root_path + raw_path).encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "headers": [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in request.headers.raw_items()
            ],
            "subprotocols": offered,
            "state": self.app_state.copy(),
            "extensions": {"websocket.http.response": {}, "websockets_lite": {"connection": self}},
        }

    def _opened(self) -> None:
        # The app runs already: no handler task, unlike serve().
        Connection._opened(self)
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info('%s - "WebSocket %s" [accepted]', self.peer, self.request.path)

    def _reject(self, response: Response) -> None:
        if self.protocol.state is State.CONNECTING:
            self._answer(self.request, response, None)
            self._process()

    async def _run_app(self) -> None:
        try:
            result = await self.app(self.scope, self.asgi_receive, self.asgi_send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            if self.protocol.state is State.CONNECTING:
                self._reject(Response(500, body="Internal server error.\n"))
            elif self.protocol.state is State.OPEN:
                self.close_nowait(CloseCode.INTERNAL_ERROR, "internal error")
        else:
            if self.protocol.state is State.CONNECTING:
                self.logger.error("ASGI callable returned without completing handshake.")
                self._reject(Response(500, body="Internal server error.\n"))
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
            if self.protocol.state is State.OPEN:
                self.close_nowait()  # the app is done: a normal close

    # ASGI receive and send.

    async def asgi_receive(self) -> Message:
        """The next ASGI event: ``websocket.connect`` first, then messages
        from our bounded queue, then ``websocket.disconnect`` (again on
        every later call: nothing hangs)."""
        if not self._connect_sent:
            self._connect_sent = True
            return {"type": "websocket.connect"}
        if self._disconnect is not None:
            return self._disconnect
        if self.protocol.state is State.CONNECTING:
            if self._handshake_waiters is None:
                self._handshake_waiters = []
            while self.protocol.state is State.CONNECTING and not self._lost:
                await self._wait(self._handshake_waiters)
        try:
            message = await self.recv()
        except ConnectionClosed as exc:
            self._disconnect = {"type": "websocket.disconnect", "code": exc.code,
                                "reason": exc.reason}
            return self._disconnect
        if isinstance(message, str):
            return {"type": "websocket.receive", "text": message}
        return {"type": "websocket.receive", "bytes": message}

    async def asgi_send(self, message: Message) -> None:
        """Carry out an ASGI ``send`` event; ``websocket.send`` waits while
        the write buffer is above its limit (write backpressure), and raises
        uvicorn's ``ClientDisconnected`` once the client is gone."""
        kind = message["type"]
        state = self.protocol.state
        if state is State.CONNECTING and not self._lost:
            if self._denial is not None:
                if kind != "websocket.http.response.body":
                    raise RuntimeError(f"Expected 'websocket.http.response.body', got {kind!r}.")
                self._denial[2].extend(message.get("body", b""))
                if not message.get("more_body", False):
                    status, headers, body = self._denial
                    self._reject(Response(status, headers, bytes(body)))
            elif kind == "websocket.accept":
                headers = Headers(
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in [*self.default_headers, *message.get("headers", [])]
                )
                try:
                    data = self.protocol.accept(message.get("subprotocol"), headers)
                except ValueError:
                    self.logger.exception("cannot accept: the answer cannot be sent")
                    self._reject(Response(500, body="Internal server error.\n"))
                    raise
                self._write(data)
                self._process()
            elif kind == "websocket.close":
                self.logger.info('%s - "WebSocket %s" 403', self.peer, self.request.path)
                self._reject(Response(403))
            elif kind == "websocket.http.response.start":
                status = message["status"]
                if not 100 <= status < 600:
                    raise RuntimeError(f"Invalid HTTP status code '{status}' in response.")
                headers = Headers(
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in message.get("headers", [])
                )
                self._denial = (status, headers, bytearray())
            else:
                raise RuntimeError(
                    "Expected ASGI message 'websocket.accept', 'websocket.close' or "
                    f"'websocket.http.response.start' but got {kind!r}."
                )
        elif kind == "websocket.send":
            if state is not State.OPEN:
                raise ClientDisconnected()
            payload: str | bytes | None = message.get("bytes")
            if payload is None:
                payload = message.get("text")
            if payload is None:
                raise RuntimeError("a 'websocket.send' event needs 'bytes' or 'text'")
            try:
                await self.send(payload)
            except ConnectionClosed:
                raise ClientDisconnected() from None
        elif kind == "websocket.close":
            if state is State.OPEN:
                self.close_nowait(message.get("code", 1000), message.get("reason") or "")
        elif kind in ("websocket.accept", "websocket.http.response.start"):
            raise RuntimeError(f"Unexpected ASGI message {kind!r}: the handshake is over.")
        else:
            raise RuntimeError(
                f"Expected ASGI message 'websocket.send' or 'websocket.close', but got {kind!r}."
            )
