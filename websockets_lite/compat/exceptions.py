"""websockets' exceptions, by websockets' names (``websockets.exceptions``).

Where websockets_lite has an exception with the same meaning, the name here
*is* that class, so ``except websockets.exceptions.InvalidStatus`` catches
what the core raises. The names websockets has and the core does not are
subclasses of the core class whose meaning they narrow, so an ``except``
of the broader name catches them too. The core never raises those finer
ones itself (it reports the same failures with the broader class, or, on a
server, answers them with an HTTP error): they are here so that code which
names them imports and runs. The tree, as websockets draws it::

    WebSocketException              (websockets_lite.WebSocketError)
    ├── ConnectionClosed
    │   ├── ConnectionClosedOK
    │   └── ConnectionClosedError
    ├── InvalidURI
    ├── InvalidProxy
    ├── InvalidHandshake
    │   ├── SecurityError
    │   │   ├── RequestLineTooLong, StatusLineTooLong
    │   │   └── HeaderLineTooLong, TooManyHeaders
    │   ├── ProxyError
    │   │   ├── InvalidProxyMessage
    │   │   └── InvalidProxyStatus
    │   ├── InvalidMessage
    │   ├── InvalidMethod, InvalidProtocol
    │   ├── InvalidStatus
    │   ├── InvalidHeader
    │   │   ├── InvalidHeaderFormat, InvalidHeaderValue
    │   │   └── InvalidOrigin, InvalidUpgrade
    │   └── NegotiationError
    │       └── DuplicateParameter, InvalidParameterName, InvalidParameterValue
    ├── ProtocolError
    │   └── PayloadTooBig           (a ProtocolError here; not in websockets)
    │       └── TooManyFragments    (its cause is a 1009 close in both)
    ├── InvalidState                (also AssertionError)
    └── ConcurrencyError            (also RuntimeError)

Constructors of the shared classes are the core's: ``InvalidStatus`` and
``InvalidProxyStatus`` take ``(status, headers, body)`` rather than a
response (their ``.response`` attribute is there all the same).
"""

from __future__ import annotations

from ..exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidHeader,
    InvalidMessage,
    InvalidOrigin,
    InvalidProxy,
    InvalidProxyMessage,
    InvalidProxyStatus,
    InvalidStatus,
    InvalidUpgrade,
    InvalidURI,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
    ProxyError,
    SecurityError,
    WebSocketError,
)

__all__ = [
    "WebSocketException",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "InvalidURI",
    "InvalidProxy",
    "InvalidHandshake",
    "SecurityError",
    "RequestLineTooLong",
    "StatusLineTooLong",
    "HeaderLineTooLong",
    "TooManyHeaders",
    "TooManyFragments",
    "ProxyError",
    "InvalidProxyMessage",
    "InvalidProxyStatus",
    "InvalidMessage",
    "InvalidMethod",
    "InvalidProtocol",
    "InvalidStatus",
    "InvalidHeader",
    "InvalidHeaderFormat",
    "InvalidHeaderValue",
    "InvalidOrigin",
    "InvalidUpgrade",
    "NegotiationError",
    "DuplicateParameter",
    "InvalidParameterName",
    "InvalidParameterValue",
    "ProtocolError",
    "PayloadTooBig",
    "InvalidState",
    "ConcurrencyError",
]

#: websockets' base class is the core's :exc:`~websockets_lite.WebSocketError`.
WebSocketException = WebSocketError


class RequestLineTooLong(SecurityError):
    """The request line of a handshake request is too long."""


class StatusLineTooLong(SecurityError):
    """The status line of a handshake response is too long."""


class HeaderLineTooLong(SecurityError):
    """A header line of a handshake request or response is too long."""


class TooManyHeaders(SecurityError):
    """A handshake request or response has too many headers."""


class InvalidMethod(InvalidHandshake):
    """A handshake request does not use GET."""

    def __init__(self, method: str) -> None:
        self.method = method
        super().__init__(f"unsupported HTTP method: {method}")


class InvalidProtocol(InvalidHandshake):
    """A handshake request does not use HTTP/1.1."""

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        super().__init__(f"unsupported HTTP version: {protocol}")


class InvalidHeaderFormat(InvalidHeader):
    """A header cannot be parsed: its format does not match its grammar."""

    def __init__(self, name: str, error: str, header: str, pos: int) -> None:
        super().__init__(name, f"{error} at {pos} in {header}")


class InvalidHeaderValue(InvalidHeader):
    """A header's format is right but its value is not acceptable; also
    raised by :class:`~websockets_lite.compat.datastructures.Headers` for a
    value that cannot be sent (CR, LF, NUL...)."""


class DuplicateParameter(NegotiationError):
    """A parameter name is repeated in an extension header."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"duplicate parameter: {name}")


class InvalidParameterName(NegotiationError):
    """A parameter name in an extension header is invalid."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"invalid parameter name: {name}")


class InvalidParameterValue(NegotiationError):
    """A parameter value in an extension header is invalid."""

    def __init__(self, name: str, value: str | None) -> None:
        self.name = name
        self.value = value
        if value is None:
            text = f"missing value for parameter {name}"
        elif value == "":
            text = f"empty value for parameter {name}"
        else:
            text = f"invalid value for parameter {name}: {value}"
        super().__init__(text)


class TooManyFragments(PayloadTooBig):
    """A message came in more fragments than allowed. The core reports it as
    :exc:`PayloadTooBig`, the cause of the 1009 close that follows, as
    websockets closes with 1009 for it."""

    def __init__(self, max_fragments: int) -> None:
        super().__init__(f"fragmented message exceeds limit of {max_fragments} frames")


class InvalidState(WebSocketError, AssertionError):
    """An operation is not allowed in the connection's state (websockets'
    Sans-I/O layer). The core raises
    :exc:`~websockets_lite.ConnectionClosed` for sending on a closed
    connection instead."""
