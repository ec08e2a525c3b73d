"""Publish/subscribe: a :class:`Hub` maps topics to local connections and
publishes through a backend, in-process (:class:`MemoryBackend`, the
default) or across processes and machines (:class:`RedisBackend`).

Each delivery to the local subscribers of a topic is one
:func:`~websockets_lite.broadcast`, so a slow client never holds a publisher
back. Every publication gets a :class:`Position`; with a history, nothing is
lost without a signal (see :doc:`/topics/delivery`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .hub import Backend, BackendError, Hub, Listener, SubscriptionLost
from .memory import MemoryBackend
from .position import Entry, Formatter, Position
from .subscription import Subscription

if TYPE_CHECKING:
    from .redis import RedisBackend

__all__ = [
    "Backend",
    "BackendError",
    "Entry",
    "Formatter",
    "Hub",
    "Listener",
    "MemoryBackend",
    "Position",
    "RedisBackend",
    "Subscription",
    "SubscriptionLost",
]


def __getattr__(name: str) -> Any:
    # redis-py is an optional dependency: import it only when asked for.
    if name == "RedisBackend":
        from .redis import RedisBackend

        return RedisBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
