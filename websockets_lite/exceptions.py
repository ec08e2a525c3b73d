"""Exceptions raised by websockets_lite.

The tree::

    WebSocketError
    ├── ConnectionClosed            .code, .reason, .rcvd, .sent
    │   ├── ConnectionClosedOK      both sides closed with 1000, 1001 or 1005
    │   └── ConnectionClosedError   anything else, 1006 included
    ├── HandshakeError              the connection could not be opened
    │   ├── InvalidURI              the URI is not a ws:// or wss:// URI
    │   ├── InvalidProxy            the proxy URL is not one we can use
    │   └── InvalidHandshake        the opening handshake failed or was refused
    │       ├── InvalidStatus       the server answered other than 101 (.response)
    │       ├── InvalidMessage      malformed HTTP, or closed during the handshake
    │       ├── InvalidHeader       a header is missing or wrong (.name, .value)
    │       │   ├── InvalidUpgrade  Upgrade or Connection is not what WebSocket needs
    │       │   └── InvalidOrigin   the Origin is not allowed
    │       ├── NegotiationError    a subprotocol or extension not offered
    │       ├── SecurityError       a limit: redirects, header size, wss:// to ws://
    │       └── ProxyError          the proxy failed
    │           ├── InvalidProxyMessage  its answer is not HTTP
    │           └── InvalidProxyStatus   it refused (.response)
    ├── ProtocolError               the peer broke the protocol (why a 1002 or 1007 close)
    │   └── PayloadTooBig           a message over max_message_size (why a 1009 close)
    ├── ConnectTimeout              the opening handshake took too long (also TimeoutError)
    └── ConcurrencyError            two coroutines receive at once (also RuntimeError)

The names are those websockets uses where the meaning is the same, so that
code which catches them by name keeps working; ``WebSocketError`` is
websockets' ``WebSocketException``. ``ProtocolError`` and ``PayloadTooBig``
are not raised on their own: they are the ``__cause__`` of the
:exc:`ConnectionClosedError` that follows such a close.
"""

from __future__ import annotations

from .close import OK_CLOSE_CODES, Close, CloseCause, CloseCode
from .http import Headers, Response

__all__ = [
    "ConcurrencyError",
    "ConnectTimeout",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "HandshakeError",
    "InvalidHandshake",
    "InvalidHeader",
    "InvalidMessage",
    "InvalidOrigin",
    "InvalidProxy",
    "InvalidProxyMessage",
    "InvalidProxyStatus",
    "InvalidStatus",
    "InvalidURI",
    "InvalidUpgrade",
    "NegotiationError",
    "PayloadTooBig",
    "ProtocolError",
    "ProxyError",
    "SecurityError",
    "WebSocketError",
    "closed_exception",
]


class WebSocketError(Exception):
    """Base class of every exception raised by websockets_lite."""


class ConnectionClosed(WebSocketError):
    """The connection is closed: raised by any operation on it afterwards.

    ``rcvd`` is the close frame received from the peer (``None`` if none
    arrived), ``sent`` the one we sent. ``code`` and ``reason`` are those of
    ``rcvd``, or 1006 and ``""`` when no close frame was received, which is
    how RFC 6455 section 7.1.5 defines the connection's close code.
    """

    def __init__(
        self,
        rcvd: Close | None,
        sent: Close | None,
        rcvd_then_sent: bool | None = None,
        hint: str = "",
    ) -> None:
        self.rcvd = rcvd
        self.sent = sent
        self.rcvd_then_sent = rcvd_then_sent
        self.hint = hint
        #: Why the connection ended (a :class:`~websockets_lite.CloseCause`),
        #: when the connection knows.
        self.cause: CloseCause | None = None
        super().__init__(str(self))

    @property
    def code(self) -> int:
        return CloseCode.ABNORMAL_CLOSURE if self.rcvd is None else self.rcvd.code

    @property
    def reason(self) -> str:
        return "" if self.rcvd is None else self.rcvd.reason

    def __str__(self) -> str:
        if self.rcvd is None:
            text = "no close frame received or sent" if self.sent is None else (
                f"sent {self.sent}; no close frame received"
            )
        elif self.sent is None:
            text = f"received {self.rcvd}; no close frame sent"
        elif self.rcvd_then_sent:
            text = f"received {self.rcvd}; then sent {self.sent}"
        else:
            text = f"sent {self.sent}; then received {self.rcvd}"
        return f"{text} ({self.hint})" if self.hint else text


class ConnectionClosedOK(ConnectionClosed):
    """The connection closed normally: 1000, 1001 or 1005 in both directions."""


class ConnectionClosedError(ConnectionClosed):
    """The connection closed with an error code, or without a closing handshake."""


def closed_exception(
    rcvd: Close | None, sent: Close | None, rcvd_then_sent: bool | None, hint: str = ""
) -> ConnectionClosed:
    """Build the right :class:`ConnectionClosed` subclass for a finished connection."""
    ok = (
        rcvd is not None
        and sent is not None
        and rcvd.code in OK_CLOSE_CODES
        and sent.code in OK_CLOSE_CODES
    )
    cls = ConnectionClosedOK if ok else ConnectionClosedError
    return cls(rcvd, sent, rcvd_then_sent, hint)


class HandshakeError(WebSocketError):
    """The connection could not be opened."""


class InvalidURI(HandshakeError):
    """The URI is not a valid ws:// or wss:// URI."""

    def __init__(self, uri: str, why: str) -> None:
        self.uri = uri
        self.why = why
        super().__init__(f"{uri!r} is not a valid WebSocket URI: {why}")


class InvalidProxy(HandshakeError):
    """The proxy URL is not one we can use (unknown scheme, no host...)."""

    def __init__(self, proxy: str, why: str) -> None:
        self.proxy = proxy
        self.why = why
        super().__init__(f"{proxy!r} is not a valid proxy: {why}")


class InvalidHandshake(HandshakeError):
    """The opening handshake failed: the peer's answer is malformed or was
    cut short, or it refused. The base of every handshake failure a client
    can see (status, headers, upgrade, subprotocol, proxy)."""


class InvalidStatus(InvalidHandshake):
    """The server answered the opening handshake with a status other than 101.

    ``response`` is the :class:`~websockets_lite.Response`; ``status``,
    ``headers`` and ``body`` are its parts (``body`` holds at most the first
    64 KiB).
    """

    def __init__(self, status: int, headers: Headers, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.response = Response(status, headers, body)
        super().__init__(f"server rejected WebSocket connection: HTTP {status}")


class InvalidMessage(InvalidHandshake):
    """The handshake's HTTP message is malformed, or the connection closed
    before it was complete (then ``__cause__`` is an ``EOFError``)."""


class InvalidHeader(InvalidHandshake):
    """A header of the handshake is missing or has a wrong value."""

    def __init__(self, name: str, value: str | None = None, why: str = "") -> None:
        self.name = name
        self.value = value
        if value is None:
            text = f"missing {name} header"
        else:
            text = f"invalid {name} header: {value}"
        super().__init__(f"{text} ({why})" if why else text)


class InvalidUpgrade(InvalidHeader):
    """``Upgrade`` or ``Connection`` does not ask for WebSocket."""


class InvalidOrigin(InvalidHeader):
    """The ``Origin`` of the request is not allowed."""

    def __init__(self, origin: str | None) -> None:
        super().__init__("Origin", origin, "not allowed")


class NegotiationError(InvalidHandshake):
    """The server chose a subprotocol or an extension that was not offered,
    or extension parameters that cannot be used."""


class SecurityError(InvalidHandshake):
    """A security limit: too many redirects, a redirect from wss:// to ws://,
    headers over the size limit."""


class ProxyError(InvalidHandshake):
    """Connecting through the proxy failed."""


class InvalidProxyMessage(ProxyError):
    """The proxy's answer to CONNECT is not valid HTTP."""


class InvalidProxyStatus(ProxyError):
    """The proxy refused to connect (407, 403...): ``response`` is its answer."""

    def __init__(self, status: int, headers: Headers) -> None:
        self.status = status
        self.headers = headers
        self.response = Response(status, headers)
        super().__init__(f"proxy rejected connection: HTTP {status}")


class ProtocolError(WebSocketError):
    """The peer broke the WebSocket protocol: the cause of the close (1002,
    1007) that followed."""


class PayloadTooBig(ProtocolError):
    """A message over ``max_message_size``: the cause of the 1009 close."""


class ConnectTimeout(WebSocketError, TimeoutError):
    """Connecting and the opening handshake took longer than ``connect_timeout``."""


class ConcurrencyError(WebSocketError, RuntimeError):
    """Two coroutines called ``recv()`` (or iterated) at the same time."""
