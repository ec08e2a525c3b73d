"""websockets_lite: an asyncio WebSocket library whose memory per connection
is bounded by construction, with the usual patterns ready to use."""

from __future__ import annotations

from .client import (
    Backoff,
    ClientProtocol,
    WebSocketURI,
    connect,
    parse_uri,
    retryable,
    unix_connect,
)
from .close import OK_CLOSE_CODES, Close, CloseCode
from .connection import Connection, Stats
from .exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    ConnectTimeout,
    HandshakeError,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
    WebSocketError,
)
from .flow import memory_bound
from .http import Headers, Request, Response
from .protocol import State
from .server import Server, ServerProtocol, basic_auth, serve, unix_serve
from .typing import BytesLike, Data, DataLike, Fragments

__version__ = "0.1.0"

__all__ = [
    "OK_CLOSE_CODES",
    "Backoff",
    "BytesLike",
    "ClientProtocol",
    "Close",
    "CloseCode",
    "ConcurrencyError",
    "ConnectTimeout",
    "Connection",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "Data",
    "DataLike",
    "Fragments",
    "HandshakeError",
    "Headers",
    "InvalidHandshake",
    "InvalidStatus",
    "InvalidURI",
    "Request",
    "Response",
    "Server",
    "ServerProtocol",
    "State",
    "Stats",
    "WebSocketError",
    "WebSocketURI",
    "__version__",
    "basic_auth",
    "connect",
    "memory_bound",
    "parse_uri",
    "retryable",
    "serve",
    "unix_connect",
    "unix_serve",
]
