"""Running an ASGI app on this library's server connection.

:class:`ASGIServerProtocol` speaks the whole ASGI WebSocket interface
(``websocket.connect``, ``accept`` with a subprotocol and headers,
``receive``, ``send``, ``close`` with a reason, ``disconnect``, and the
``websocket.http.response`` denial extension) on top of our bounded read
queue, our limits and our keepalive. The uvicorn protocol
(:mod:`websockets_lite.uvicorn`) and the in-memory test client
(:mod:`websockets_lite.testing`) run apps on it. The scope carries the
connection in the ``"websockets_lite"`` extension, so that
:func:`websockets_lite.asgi.accept` hands the app the native connection.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import MutableMapping
from typing import Any

from .close import CloseCode
from .connection import Connection
from .exceptions import ConnectionClosed
from .http import Headers, Request, Response
from .options import Options
from .protocol import State
from .server import ServerProtocol, offered_subprotocols

__all__ = ["ASGIServerProtocol", "ClientDisconnected"]

Message = MutableMapping[str, Any]


class ClientDisconnected(OSError):
    """Raised by ``send`` once the client is gone (an ``OSError``, which is
    what ASGI frameworks such as Starlette expect)."""


async def _no_handler(ws: ServerProtocol) -> None:  # the ASGI app is the handler
    raise AssertionError("unreachable")


class ASGIServerProtocol(ServerProtocol):
    """A server connection that runs an ASGI app on our connection: the
    app decides the handshake through ASGI events, and its ``receive`` reads
    from our bounded queue. The uvicorn protocol and the in-memory test
    client are built on it.
    """

    __slots__ = (
        "_connect_sent", "_denial", "_disconnect", "app", "app_state",
        "asgi_version", "default_headers", "root_path", "scope",
    )

    def __init__(
        self,
        app: Any,
        *,
        options: Options | None = None,
        root_path: str = "",
        app_state: dict[str, Any] | None = None,
        default_headers: list[tuple[bytes, bytes]] | None = None,
        asgi_version: str = "3.0",
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    ) -> None:
        super().__init__(_no_handler, options=options, logger=logger)
        self.app = app
        self.app_state = app_state if app_state is not None else {}
        self.asgi_version = asgi_version
        self.root_path = root_path
        self.default_headers = default_headers if default_headers is not None else []
        self.scope: dict[str, Any] = {}
        self._connect_sent = False
        self._disconnect: Message | None = None
        self._denial: tuple[int, Headers, bytearray] | None = None

    # The handshake: the ASGI app decides it.

    def _on_request(self, request: Request) -> None:
        if self.protocol.upgrade_error is not None:
            self._answer(request, self.protocol.upgrade_error, None)
            return
        self._read_flow.pause_reading()  # until the app accepts
        self.scope = self._scope(request)
        self._start(self._run_app())

    def _scope(self, request: Request) -> dict[str, Any]:
        raw_path, _, query = request.path.partition("?")
        offered = offered_subprotocols(request)
        transport: Any = self.transport
        return {
            "type": "websocket",
            "asgi": {"version": self.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "wss" if transport.get_extra_info("sslcontext") else "ws",
            "server": _address(transport.get_extra_info("sockname")),
            "client": _address(transport.get_extra_info("peername")),
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
        :exc:`ClientDisconnected` once the client is gone."""
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


def _address(address: Any) -> tuple[str, int] | None:
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return None
