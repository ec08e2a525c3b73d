"""The Redis backend: publish/subscribe across processes and machines.

Publishing runs one Lua script: it assigns the topic's next offset (and a
new epoch when the topic's keys are gone), appends the message to the
topic's Redis Stream trimmed to ``history_size`` (when history is on),
refreshes the TTL, and publishes the message with its position on the
topic's channel, in that order and atomically, so that concurrent publishers
in many processes get distinct consecutive offsets and no subscriber sees
offset n+1 before n is stored.

One pub/sub connection, read by one listener task, receives the messages of
every topic with local subscribers. If Redis goes away, the hub is told; the
listener reconnects with backoff and subscribes again to every topic. Presence
lives in a sorted set (member -> expiry) and a hash (member -> info) per
topic, refreshed by each process every ``presence_ttl / 3`` seconds.

Keys are ``prefix + "{" + topic + "}:" + kind``: one hash tag per topic, so
that a topic's keys stay on one Redis Cluster slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..client import Backoff
from ..connection import default_logger
from ..typing import Data
from .hub import BackendError, Listener
from .position import Entry, Position

__all__ = ["RedisBackend"]

_TEXT, _BINARY = b"t", b"b"
#: A channel only this library uses: subscribing to it keeps the pub/sub
#: connection in subscribed mode even when no topic has subscribers.
_CONTROL = "__websockets_lite__"
#: Delays between reconnection attempts to Redis.
RECONNECT_BACKOFF = Backoff(initial=0.5, maximum=10.0)

# KEYS: meta, stream. ARGV: channel, kind, data, new epoch, history size, ttl (ms).
_PUBLISH = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[4]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
end
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
local size = tonumber(ARGV[5])
if size > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', size, offset .. '-0', 'k', ARGV[2], 'd', ARGV[3])
end
local ttl = tonumber(ARGV[6])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  if size > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
end
redis.call('PUBLISH', ARGV[1], ARGV[2] .. offset .. ',' .. epoch .. ',' .. ARGV[3])
return {epoch, offset}
"""

# KEYS: meta, stream. ARGV: since epoch ('' for none), since offset, limit (-1: all).
_READ = """
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'offset')
if not meta[1] then return {} end
local limit = tonumber(ARGV[3])
local entries = {}
if limit ~= 0 then
  if ARGV[1] ~= '' then
    if ARGV[1] == meta[1] then
      if limit > 0 then
        entries = redis.call('XRANGE', KEYS[2], '(' .. ARGV[2] .. '-0', '+', 'COUNT', limit)
      else
        entries = redis.call('XRANGE', KEYS[2], '(' .. ARGV[2] .. '-0', '+')
      end
    end
  elseif limit > 0 then
    entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', limit)
  else
    entries = redis.call('XREVRANGE', KEYS[2], '+', '-')
  end
end
return {meta[1], meta[2], entries}
"""

# KEYS: presence (zset), members (hash). ARGV: now (ms). Removes and returns
# the members whose process stopped refreshing them.
_REAP = """
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
if #gone == 0 then return {} end
local infos = redis.call('HMGET', KEYS[2], unpack(gone))
redis.call('ZREM', KEYS[1], unpack(gone))
redis.call('HDEL', KEYS[2], unpack(gone))
return {gone, infos}
"""

# KEYS: presence (zset), members (hash). ARGV: now (ms).
_PRESENCE = """
local alive = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')
if #alive == 0 then return {} end
return {alive, redis.call('HMGET', KEYS[2], unpack(alive))}
"""


class RedisBackend:
    """Publish through Redis (``pip install websockets_lite[redis]``).

    ``url`` is a redis-py URL (``redis://host:6379/0``, ``rediss://`` for
    TLS, ``unix:///path``). Topics become Redis channels named
    ``prefix + topic``. ``history_size`` (messages, 0 for none) and
    ``history_ttl`` (seconds since the topic's last publication, ``None``:
    kept) bound each topic's history. Presence entries of a process that
    stops refreshing them (it died) vanish within ``presence_ttl``. Without
    traffic, the listener pings Redis every ``heartbeat`` seconds and
    reconnects when two heartbeats go unanswered; reconnection waits as
    ``backoff`` says.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "websockets_lite:",
        history_size: int = 0,
        history_ttl: float | None = None,
        presence_ttl: float = 60.0,
        heartbeat: float = 5.0,
        backoff: Backoff = RECONNECT_BACKOFF,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    ) -> None:
        if isinstance(history_size, bool) or not isinstance(history_size, int) or history_size < 0:
            raise ValueError(f"history_size must be an int >= 0, not {history_size!r}")
        if history_ttl is not None and not history_ttl > 0:
            raise ValueError(f"history_ttl must be > 0 or None, not {history_ttl!r}")
        if not presence_ttl > 0:
            raise ValueError(f"presence_ttl must be > 0, not {presence_ttl!r}")
        if not heartbeat > 0:
            raise ValueError(f"heartbeat must be > 0, not {heartbeat!r}")
        self.url = url
        self.prefix = prefix
        self.history_size = history_size
        self.history_ttl = history_ttl
        self.presence_ttl = presence_ttl
        self.heartbeat = heartbeat
        self.backoff = backoff
        self.logger = logger or default_logger
        self._topics: set[str] = set()
        self._members: dict[str, dict[str, dict[str, Any]]] = {}
        self._publisher: aioredis.Redis | None = None
        self._subscriber: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._listener: Listener | None = None
        self._task: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._scripts: dict[str, Any] = {}
        self._stopping = False

    def _key(self, topic: str, kind: str) -> str:
        return f"{self.prefix}{{{topic}}}:{kind}"

    async def start(self, listener: Listener) -> None:
        """Connect, and start the listener task; if Redis cannot be reached
        now, the hub starts unavailable and the listener keeps trying."""
        self._listener = listener
        self._stopping = False  # a stopped backend starts again cleanly
        # Publishing retries once at once: a pooled connection may be stale
        # after Redis restarted; its reads time out so that a silent Redis
        # cannot hang a publisher. The pub/sub connection never retries
        # inside redis-py, and has no socket timeout (redis-py 8 sets 5 s by
        # default, which would break idle listens): the heartbeat below
        # notices a silent Redis instead.
        self._publisher = aioredis.Redis.from_url(
            self.url, retry=Retry(NoBackoff(), 1), socket_connect_timeout=self.heartbeat,
            socket_timeout=self.heartbeat,
        )
        self._subscriber = aioredis.Redis.from_url(
            self.url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=self.heartbeat,
            socket_timeout=None,
        )
        self._scripts = {
            name: self._publisher.register_script(source)
            for name, source in (
                ("publish", _PUBLISH), ("read", _READ), ("reap", _REAP), ("presence", _PRESENCE)
            )
        }
        connected = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._listen(connected))
        self._refresher = asyncio.create_task(self._refresh())
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
        skip = len(self.prefix)
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
            payload: bytes = message["data"]
            offset, epoch, data = payload[1:].split(b",", 2)
            body: Data = data.decode() if payload[:1] == _TEXT else data
            topic = message["channel"].decode()[skip:]
            self._listener.deliver(topic, Position(epoch.decode(), int(offset)), body)

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

    async def publish(self, topic: str, message: Data) -> Position:
        assert self._publisher is not None, "start() first"
        kind, data = (_TEXT, message.encode()) if isinstance(message, str) else (_BINARY, message)
        ttl = 0 if self.history_ttl is None else max(1, int(self.history_ttl * 1000))
        try:
            epoch, offset = await self._scripts["publish"](
                keys=[self._key(topic, "meta"), self._key(topic, "stream")],
                args=[self.prefix + topic, kind, data, uuid.uuid4().hex[:16],
                      self.history_size, ttl],
            )
        except (RedisError, OSError) as exc:
            raise BackendError(f"cannot publish to Redis: {exc}") from exc
        return Position(epoch.decode(), int(offset))

    async def read(
        self, topic: str, since: Position | None = None, limit: int | None = None
    ) -> tuple[Position | None, list[Entry]]:
        assert self._publisher is not None, "start() first"
        try:
            result = await self._scripts["read"](
                keys=[self._key(topic, "meta"), self._key(topic, "stream")],
                args=[
                    "" if since is None else since.epoch,
                    0 if since is None else since.offset,
                    -1 if limit is None else limit,
                ],
            )
        except (RedisError, OSError) as exc:
            raise BackendError(f"cannot read from Redis: {exc}") from exc
        if not result:
            return None, []
        epoch = result[0].decode()
        raw = result[2] if since is not None else list(reversed(result[2]))
        entries: list[Entry] = []
        for ident, fields in raw:
            pairs = dict(zip(fields[::2], fields[1::2], strict=True))
            data: Data = pairs[b"d"].decode() if pairs[b"k"] == _TEXT else pairs[b"d"]
            entries.append((Position(epoch, int(ident.split(b"-")[0])), data))
        return Position(epoch, int(result[1])), entries

    # Presence.

    async def join(self, topic: str, member: str, info: dict[str, Any]) -> None:
        self._members.setdefault(topic, {})[member] = info
        await self._put(topic, {member: info})

    async def _put(self, topic: str, members: dict[str, dict[str, Any]]) -> None:
        assert self._publisher is not None, "start() first"
        expiry = int((time.time() + self.presence_ttl) * 1000)
        keep = int(self.presence_ttl * 2000)
        zset, hash_ = self._key(topic, "presence"), self._key(topic, "members")
        try:
            async with self._publisher.pipeline(transaction=False) as pipe:
                pipe.zadd(zset, dict.fromkeys(members, expiry))
                pipe.hset(hash_, mapping={m: json.dumps(i) for m, i in members.items()})
                pipe.pexpire(zset, keep)
                pipe.pexpire(hash_, keep)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise BackendError(f"cannot update presence in Redis: {exc}") from exc

    async def leave(self, topic: str, member: str) -> None:
        assert self._publisher is not None, "start() first"
        members = self._members.get(topic)
        if members is not None:
            members.pop(member, None)
            if not members:
                del self._members[topic]
        try:
            async with self._publisher.pipeline(transaction=False) as pipe:
                pipe.zrem(self._key(topic, "presence"), member)
                pipe.hdel(self._key(topic, "members"), member)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise BackendError(f"cannot update presence in Redis: {exc}") from exc

    async def presence(self, topic: str) -> dict[str, dict[str, Any]]:
        try:
            result = await self._scripts["presence"](
                keys=[self._key(topic, "presence"), self._key(topic, "members")],
                args=[int(time.time() * 1000)],
            )
        except (RedisError, OSError) as exc:
            raise BackendError(f"cannot read presence from Redis: {exc}") from exc
        if not result:
            return {}
        return {
            member.decode(): json.loads(info) if info is not None else {}
            for member, info in zip(result[0], result[1], strict=True)
        }

    async def presence_count(self, topic: str) -> int:
        assert self._publisher is not None, "start() first"
        try:
            count = await self._publisher.zcount(
                self._key(topic, "presence"), int(time.time() * 1000), "+inf"
            )
        except (RedisError, OSError) as exc:
            raise BackendError(f"cannot read presence from Redis: {exc}") from exc
        return int(count)

    async def _refresh(self) -> None:
        """Every ``presence_ttl / 3``: refresh this process's members, and
        remove (and report) those of processes that stopped refreshing."""
        while not self._stopping:
            await asyncio.sleep(self.presence_ttl / 3)
            try:
                for topic, members in list(self._members.items()):
                    await self._put(topic, dict(members))
                for topic in self._topics | set(self._members):
                    await self._reap(topic)
            except BackendError as exc:
                self.logger.debug("presence refresh failed: %s", exc)

    async def _reap(self, topic: str) -> None:
        assert self._listener is not None
        try:
            result = await self._scripts["reap"](
                keys=[self._key(topic, "presence"), self._key(topic, "members")],
                args=[int(time.time() * 1000)],
            )
        except (RedisError, OSError) as exc:
            raise BackendError(f"cannot update presence in Redis: {exc}") from exc
        if result:
            for member, info in zip(result[0], result[1], strict=True):
                self._listener.presence_expired(
                    topic, member.decode(), json.loads(info) if info is not None else {}
                )

    async def stop(self) -> None:
        self._stopping = True
        for task in (self._task, self._refresher):
            if task is not None:
                # redis-py can swallow a cancellation that races with its own
                # read timeout: cancel until it takes (the flag ends the loop).
                while not task.done():
                    task.cancel()
                    await asyncio.wait({task}, timeout=0.1)
                with contextlib.suppress(asyncio.CancelledError):
                    task.result()
        self._task = self._refresher = None
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
            self._pubsub = None
        for client in (self._publisher, self._subscriber):
            if client is not None:
                await client.aclose()
        self._publisher = self._subscriber = None
