"""Publish/subscribe: a :class:`Hub` maps topics to local connections and
publishes through a backend, in-process (:class:`MemoryBackend`, the
default) or across processes and machines (:class:`RedisBackend`).

Each delivery to the local subscribers of a topic is one
:func:`~websockets_lite.broadcast`, so a slow client never holds a publisher
back. Delivery is at most once: a message published while a subscriber's
process is disconnected from the backend is lost for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .hub import Backend, BackendError, Hub, Listener, Subscription, SubscriptionLost
from .memory import MemoryBackend

if TYPE_CHECKING:
    from .redis import RedisBackend

__all__ = [
    "Backend",
    "BackendError",
    "Hub",
    "Listener",
    "MemoryBackend",
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
