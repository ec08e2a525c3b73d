"""The Redis backend: publish/subscribe across processes and machines.

One connection publishes; one pub/sub connection, read by one listener task,
receives the messages of every topic that has local subscribers. If Redis
goes away, the hub interrupts its subscriptions (they raise
:exc:`~websockets_lite.pubsub.SubscriptionLost`), and the listener reconnects
with backoff and subscribes again to every topic that still has local
subscribers. Delivery is at most once: Redis pub/sub keeps nothing for a
subscriber that is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..client import Backoff
from ..connection import default_logger
from ..typing import Data
from .hub import BackendError, Listener

__all__ = ["RedisBackend"]

_TEXT, _BINARY = b"t", b"b"
#: A channel only this library uses: subscribing to it keeps the pub/sub
#: connection in subscribed mode even when no topic has subscribers.
_CONTROL = "__websockets_lite__"
#: Delays between reconnection attempts to Redis.
RECONNECT_BACKOFF = Backoff(initial=0.5, maximum=10.0)


class RedisBackend:
    """Publish through Redis (``pip install websockets_lite[redis]``).

    ``url`` is a redis-py URL (``redis://host:6379/0``, ``rediss://`` for
    TLS, ``unix:///path``). Topics become Redis channels named
    ``prefix + topic``. Without traffic, the listener pings Redis every
    ``heartbeat`` seconds and reconnects when two heartbeats go unanswered.
    Reconnection waits as ``backoff`` says.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "websockets_lite:",
        heartbeat: float = 5.0,
        backoff: Backoff = RECONNECT_BACKOFF,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.heartbeat = heartbeat
        self.backoff = backoff
        self.logger = logger or default_logger
        self._topics: set[str] = set()
        self._publisher: aioredis.Redis | None = None
        self._subscriber: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._listener: Listener | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def _client(self, retries: int) -> aioredis.Redis:
        return aioredis.Redis.from_url(
            self.url, retry=Retry(NoBackoff(), retries), socket_connect_timeout=self.heartbeat
        )

    async def start(self, listener: Listener) -> None:
        """Connect, and start the listener task; if Redis cannot be reached
        now, the hub starts unavailable and the listener keeps trying."""
        self._listener = listener
        self._stopping = False  # a stopped backend starts again cleanly
        # Publishing retries once at once: a pooled connection may be stale
        # after Redis restarted. The pub/sub connection never retries inside
        # redis-py: a lost connection must surface, so that subscribers are
        # told and we reconnect on our own terms.
        self._publisher = self._client(retries=1)
        self._subscriber = self._client(retries=0)
        connected = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._listen(connected))
        await asyncio.shield(connected)

    async def _connect(self) -> Any:
        assert self._subscriber is not None
        pubsub = self._subscriber.pubsub(ignore_subscribe_messages=True)
        try:
            channels = [self.prefix + topic for topic in self._topics]
            await pubsub.subscribe(self.prefix + _CONTROL, *channels)
        except BaseException:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise
        return pubsub

    async def _listen(self, connected: asyncio.Future[None]) -> None:
        assert self._listener is not None
        delays = None
        while not self._stopping:
            try:
                self._pubsub = await self._connect()
                if delays is not None:
                    self._listener.restored()
                delays = None
                if not connected.done():
                    connected.set_result(None)
                await self._read(self._pubsub)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, TimeoutError) as exc:
                if self._stopping:
                    return
                if delays is None:
                    self._listener.lost(exc)
                    delays = self.backoff.delays()
                if not connected.done():
                    connected.set_result(None)
                pubsub, self._pubsub = self._pubsub, None
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
                delay = next(delays)
                self.logger.info("Redis unavailable (%s); reconnecting in %.1f s", exc, delay)
                await asyncio.sleep(delay)

    async def _read(self, pubsub: Any) -> None:
        assert self._listener is not None
        loop = asyncio.get_running_loop()
        heard = loop.time()
        while not self._stopping:
            message = await pubsub.get_message(timeout=self.heartbeat)
            now = loop.time()
            if message is None:
                if now - heard > 2 * self.heartbeat:
                    raise TimeoutError(f"no answer from Redis in {2 * self.heartbeat} s")
                await pubsub.ping()
                continue
            heard = now
            if message["type"] != "message":
                continue
            topic = message["channel"].decode()[len(self.prefix):]
            payload: bytes = message["data"]
            data: Data = payload[1:].decode() if payload[:1] == _TEXT else payload[1:]
            self._listener.deliver(topic, data)

    async def subscribe(self, topic: str) -> None:
        self._topics.add(topic)
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):  # the listener will notice
                await self._pubsub.subscribe(self.prefix + topic)

    async def unsubscribe(self, topic: str) -> None:
        self._topics.discard(topic)
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.unsubscribe(self.prefix + topic)

    async def publish(self, topic: str, message: Data) -> None:
        assert self._publisher is not None, "start() first"
        payload = _TEXT + message.encode() if isinstance(message, str) else _BINARY + message
        try:
            await self._publisher.publish(self.prefix + topic, payload)
        except (RedisError, OSError) as exc:
            raise BackendError(f"cannot publish to Redis: {exc}") from exc

    async def stop(self) -> None:
        self._stopping = True
        task = self._task
        if task is not None:
            # redis-py can swallow a cancellation that races with its own read
            # timeout: cancel until it takes (the flag ends the loop anyway).
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.1)
            with contextlib.suppress(asyncio.CancelledError):
                task.result()
            self._task = None
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
            self._pubsub = None
        for client in (self._publisher, self._subscriber):
            if client is not None:
                await client.aclose()
        self._publisher = self._subscriber = None
