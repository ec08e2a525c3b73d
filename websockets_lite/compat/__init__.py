"""A stand-in for the ``websockets`` package's asyncio API, on websockets_lite.

A program written for websockets runs on websockets_lite once its imports
are rewritten::

    import websockets                     ->  import websockets_lite.compat as websockets
    from websockets.asyncio.server import  ->  from websockets_lite.compat.asyncio.server import
    from websockets.exceptions import      ->  from websockets_lite.compat.exceptions import

The modules mirror websockets 17's layout: ``asyncio.client``,
``asyncio.server``, ``asyncio.connection``, ``asyncio.router``,
``exceptions``, ``datastructures``, ``http11``, ``frames``, ``protocol``,
``typing`` and ``client``. Each name maps onto the core: connections are the
core's, with websockets' ``ping()``; keyword arguments take websockets' names
and values. What differs, and why, is in the "Coming from websockets" guide.
"""

from __future__ import annotations

from ..version import __version__
from .asyncio.client import ClientConnection, connect, unix_connect
from .asyncio.router import route, unix_route
from .asyncio.server import (
    Server,
    ServerConnection,
    basic_auth,
    broadcast,
    serve,
    unix_serve,
)
from .datastructures import Headers, HeadersLike, MultipleValuesError
from .exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    DuplicateParameter,
    HeaderLineTooLong,
    InvalidHandshake,
    InvalidHeader,
    InvalidHeaderFormat,
    InvalidHeaderValue,
    InvalidMessage,
    InvalidMethod,
    InvalidOrigin,
    InvalidParameterName,
    InvalidParameterValue,
    InvalidProtocol,
    InvalidProxy,
    InvalidProxyMessage,
    InvalidProxyStatus,
    InvalidState,
    InvalidStatus,
    InvalidUpgrade,
    InvalidURI,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
    ProxyError,
    RequestLineTooLong,
    SecurityError,
    StatusLineTooLong,
    TooManyFragments,
    TooManyHeaders,
    WebSocketException,
)
from .frames import Close, CloseCode
from .http11 import Request, Response
from .protocol import State
from .typing import Data, LoggerLike, Origin, StatusLike, Subprotocol

__all__ = [
    # .asyncio.client
    "connect",
    "unix_connect",
    "ClientConnection",
    # .asyncio.router
    "route",
    "unix_route",
    # .asyncio.server
    "basic_auth",
    "broadcast",
    "serve",
    "unix_serve",
    "ServerConnection",
    "Server",
    # .datastructures
    "Headers",
    "HeadersLike",
    "MultipleValuesError",
    # .exceptions
    "ConcurrencyError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "DuplicateParameter",
    "HeaderLineTooLong",
    "InvalidHandshake",
    "InvalidHeader",
    "InvalidHeaderFormat",
    "InvalidHeaderValue",
    "InvalidMessage",
    "InvalidMethod",
    "InvalidOrigin",
    "InvalidParameterName",
    "InvalidParameterValue",
    "InvalidProtocol",
    "InvalidProxy",
    "InvalidProxyMessage",
    "InvalidProxyStatus",
    "InvalidState",
    "InvalidStatus",
    "InvalidUpgrade",
    "InvalidURI",
    "NegotiationError",
    "PayloadTooBig",
    "ProtocolError",
    "ProxyError",
    "RequestLineTooLong",
    "SecurityError",
    "StatusLineTooLong",
    "TooManyFragments",
    "TooManyHeaders",
    "WebSocketException",
    # .frames
    "Close",
    "CloseCode",
    # .http11
    "Request",
    "Response",
    # .protocol
    "State",
    # .typing
    "Data",
    "LoggerLike",
    "Origin",
    "StatusLike",
    "Subprotocol",
    "__version__",
]
