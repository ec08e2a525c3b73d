"""The Hub: topics, local subscribers, and the backend interface."""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Any, Protocol

from ..connection import Connection, default_logger
from ..exceptions import WebSocketError
from ..patterns import broadcast
from ..typing import Data
from .memory import MemoryBackend

__all__ = ["Backend", "BackendError", "Hub", "Listener", "Subscription", "SubscriptionLost"]


class BackendError(WebSocketError):
    """The backend cannot publish or subscribe now (for example, Redis is down)."""


class SubscriptionLost(BackendError):
    """The backend lost its connection: messages for this subscription may
    be missing. Raised out of ``async with hub.subscribe(...)`` blocks, and
    by ``hub.subscribe()`` while the backend is down."""


class Listener(Protocol):
    """What a backend reports to (the :class:`Hub` implements it)."""

    def deliver(self, topic: str, message: Data) -> None:
        """A message was published on ``topic``."""

    def lost(self, exc: BaseException) -> None:
        """The backend's connection is lost; messages may be missed from now."""

    def restored(self) -> None:
        """The backend is connected again, with every topic subscribed."""


class Backend(Protocol):
    """How a :class:`Hub` publishes and receives messages.

    ``subscribe`` and ``unsubscribe`` are called when a topic gets its first
    local subscriber and loses its last one. Messages published on a topic
    with local subscribers are handed to ``listener.deliver()``.
    """

    async def start(self, listener: Listener) -> None: ...

    async def subscribe(self, topic: str) -> None: ...

    async def unsubscribe(self, topic: str) -> None: ...

    async def publish(self, topic: str, message: Data) -> None: ...

    async def stop(self) -> None: ...


class Subscription:
    """``async with hub.subscribe(ws, topic)``: ``ws`` gets every message
    published on ``topic`` while the block runs.

    If the backend loses its connection, the block is interrupted (as
    ``asyncio.timeout()`` interrupts one) and :exc:`SubscriptionLost` is
    raised out of it: no subscriber waits silently for messages that will
    not come.
    """

    def __init__(self, hub: Hub, ws: Connection, topic: str) -> None:
        self.hub = hub
        self.ws = ws
        self.topic = topic
        self._task: asyncio.Task[object] | None = None
        self._lost: BaseException | None = None

    async def __aenter__(self) -> Subscription:
        hub = self.hub
        await hub.start()
        if not hub.available:
            raise SubscriptionLost(f"cannot subscribe to {self.topic!r}: the backend is down")
        self._task = asyncio.current_task()
        subscribers = hub._topics.setdefault(self.topic, set())
        first = not subscribers
        subscribers.add(self.ws)
        hub._subscriptions.add(self)
        if first:
            try:
                await hub.backend.subscribe(self.topic)
            except BaseException:
                self._leave()
                raise
        return self

    def _leave(self) -> bool:
        """Unregister; return whether the topic has no local subscriber left."""
        hub = self.hub
        hub._subscriptions.discard(self)
        subscribers = hub._topics.get(self.topic)
        if subscribers is None:
            return False
        subscribers.discard(self.ws)
        if subscribers:
            return False
        del hub._topics[self.topic]
        return True

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._leave():
            try:
                await self.hub.backend.unsubscribe(self.topic)
            except Exception as error:  # the backend reconnects without this topic anyway
                self.hub.logger.debug("unsubscribe %r failed: %s", self.topic, error)
        if self._lost is not None and exc_type is asyncio.CancelledError:
            assert self._task is not None
            if self._task.uncancel() == 0:
                raise SubscriptionLost(
                    f"subscription to {self.topic!r} lost: {self._lost}"
                ) from self._lost

    def _interrupt(self, exc: BaseException) -> None:
        if self._lost is None and self._task is not None and not self._task.done():
            self._lost = exc
            self._task.cancel()


class Hub:
    """Topics mapped to local connections, published through a backend.

    ::

        hub = Hub()                                # in this process
        hub = Hub(RedisBackend("redis://localhost:6379/0"))  # across processes

        async def handler(ws):
            async with hub.subscribe(ws, "room:1"):
                async for message in ws:
                    await hub.publish("room:1", message)

    A connection may subscribe to many topics, and a topic have many
    subscribers. The backend starts on first use (or in ``async with
    hub``); :meth:`close` stops it.
    """

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    ) -> None:
        self.backend: Backend = backend if backend is not None else MemoryBackend()
        self.logger = logger or default_logger
        #: Whether the backend is connected (always true in memory).
        self.available = True
        self._topics: dict[str, set[Connection]] = {}
        self._subscriptions: set[Subscription] = set()
        self._started: asyncio.Future[None] | None = None

    @property
    def topics(self) -> dict[str, int]:
        """Topics with local subscribers, and how many each has."""
        return {topic: len(subscribers) for topic, subscribers in self._topics.items()}

    async def start(self) -> None:
        """Start the backend; called on first use. Cancelling it is safe."""
        if self._started is None:
            self._started = asyncio.get_running_loop().create_future()
            try:
                await self.backend.start(self)
            except BaseException as exc:
                self._started.set_exception(exc)
                self._started.exception()  # retrieved: raised below
                self._started = None
                raise
            self._started.set_result(None)
        await asyncio.shield(self._started)

    async def close(self) -> None:
        """Stop the backend. Local subscriptions stay registered."""
        if self._started is not None:
            self._started = None
            await self.backend.stop()

    async def __aenter__(self) -> Hub:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def subscribe(self, ws: Connection, topic: str) -> Subscription:
        """Subscribe ``ws`` to ``topic`` for the duration of an ``async with`` block."""
        return Subscription(self, ws, topic)

    async def publish(self, topic: str, message: Data) -> None:
        """Publish ``message`` to every subscriber of ``topic``, in every
        process; at most once. Raises :exc:`BackendError` if the backend
        cannot take it now."""
        if not isinstance(message, (str, bytes)):
            raise TypeError(f"cannot publish {type(message).__name__}: expected str or bytes")
        await self.start()
        await self.backend.publish(topic, message)

    # Listener: called by the backend.

    def deliver(self, topic: str, message: Data) -> None:
        subscribers = self._topics.get(topic)
        if subscribers:
            broadcast(subscribers, message)

    def lost(self, exc: BaseException) -> None:
        self.available = False
        self.logger.warning(
            "pub/sub backend lost (%s); interrupting %d subscriptions",
            exc, len(self._subscriptions),
        )
        for subscription in list(self._subscriptions):
            subscription._interrupt(exc)

    def restored(self) -> None:
        self.available = True
        self.logger.info("pub/sub backend connected again")
