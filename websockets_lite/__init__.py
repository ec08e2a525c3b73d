"""websockets_lite: an asyncio WebSocket library whose memory per connection
is bounded by construction, with the usual patterns ready to use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import pubsub
from .client import (
    Backoff,
    BackoffLike,
    ClientProtocol,
    WebSocketURI,
    connect,
    parse_uri,
    retryable,
    unix_connect,
)
from .close import OK_CLOSE_CODES, Close, CloseCause, CloseCode
from .connection import Connection, Stats
from .exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    ConnectTimeout,
    HandshakeError,
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
from .flow import memory_bound
from .http import Headers, Request, Response
from .options import Options
from .patterns import (
    WebSocketLike,
    broadcast,
    consume,
    consume_and_produce,
    produce,
    registered,
)
from .protocol import State
from .pubsub import BackendError, Hub, MemoryBackend, Position, Subscription, SubscriptionLost
from .router import Router, route, unix_route
from .server import Server, ServerProtocol, ServerStats, basic_auth, serve, unix_serve
from .typing import BytesLike, Data, DataLike, Fragments
from .version import __version__

if TYPE_CHECKING:
    from .pubsub.redis import RedisBackend


__all__ = [
    "OK_CLOSE_CODES",
    "Options",
    "Position",
    "BackendError",
    "Backoff",
    "BackoffLike",
    "BytesLike",
    "ClientProtocol",
    "Close",
    "CloseCause",
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
    "Hub",
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
    "MemoryBackend",
    "RedisBackend",
    "Request",
    "Response",
    "Router",
    "Server",
    "ServerProtocol",
    "ServerStats",
    "State",
    "Stats",
    "Subscription",
    "SubscriptionLost",
    "WebSocketError",
    "WebSocketLike",
    "WebSocketURI",
    "__version__",
    "basic_auth",
    "broadcast",
    "connect",
    "consume",
    "consume_and_produce",
    "memory_bound",
    "parse_uri",
    "produce",
    "registered",
    "retryable",
    "route",
    "serve",
    "unix_connect",
    "unix_route",
    "unix_serve",
]


def __getattr__(name: str) -> Any:
    # RedisBackend needs redis-py, an optional dependency: pubsub imports it
    # only when asked for.
    if name == "RedisBackend":
        return pubsub.RedisBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
