"""Exceptions raised by websockets_lite.

The tree::

    WebSocketError
    ├── ConnectionClosed            .code, .reason, .rcvd, .sent
    │   ├── ConnectionClosedOK      both sides closed with 1000, 1001 or 1005
    │   └── ConnectionClosedError   anything else, 1006 included
    ├── HandshakeError              the opening handshake failed
    │   ├── InvalidURI              the URI is not a ws:// or wss:// URI
    │   ├── InvalidStatus           the server answered other than 101
    │   └── InvalidHandshake        the peer's handshake is malformed
    ├── ConnectTimeout              the opening handshake took too long (also TimeoutError)
    └── ConcurrencyError            two coroutines receive at once (also RuntimeError)
"""

from __future__ import annotations

from .close import OK_CLOSE_CODES, Close, CloseCode
from .http import Headers

__all__ = [
    "ConcurrencyError",
    "ConnectTimeout",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "HandshakeError",
    "InvalidHandshake",
    "InvalidStatus",
    "InvalidURI",
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
    """The opening handshake failed."""


class InvalidURI(HandshakeError):
    """The URI is not a valid ws:// or wss:// URI."""

    def __init__(self, uri: str, why: str) -> None:
        self.uri = uri
        self.why = why
        super().__init__(f"{uri!r} is not a valid WebSocket URI: {why}")


class InvalidStatus(HandshakeError):
    """The server answered the opening handshake with a status other than 101.

    ``body`` holds at most the first 64 KiB of the response body.
    """

    def __init__(self, status: int, headers: Headers, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        super().__init__(f"server rejected WebSocket connection: HTTP {status}")


class InvalidHandshake(HandshakeError):
    """The peer's opening handshake is malformed or was cut short."""


class ConnectTimeout(WebSocketError, TimeoutError):
    """Connecting and the opening handshake took longer than ``connect_timeout``."""


class ConcurrencyError(WebSocketError, RuntimeError):
    """Two coroutines called ``recv()`` (or iterated) at the same time."""
