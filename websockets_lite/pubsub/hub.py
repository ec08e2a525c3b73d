"""The Hub: topics, local subscribers, live delivery, and the backend interface.

Live delivery to the subscribers of a topic in this process is one
:func:`~websockets_lite.broadcast` per formatter (usually one). What a
subscriber misses (it was too slow, or the backend was away) is caught up
from the topic's history by its :class:`~websockets_lite.pubsub.Subscription`.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import json
import logging
import sys
from types import TracebackType
from typing import Any, Protocol

from ..connection import default_logger
from ..exceptions import WebSocketError
from ..patterns import WebSocketLike, broadcast
from ..typing import Data
from .memory import MemoryBackend
from .position import Entry, Formatter, Position, covers
from .subscription import Subscription

__all__ = ["Backend", "BackendError", "Hub", "HubStats", "Listener", "SubscriptionLost"]

#: The default of ``Hub.subscribe(formatter=...)``: the hub's own formatter.
HUB_FORMATTER: Any = object()


class BackendError(WebSocketError):
    """The backend cannot publish or subscribe now (for example, Redis is down)."""


class SubscriptionLost(BackendError):
    """Messages for this subscription were missed and cannot be recovered:
    the backend lost its connection (and, with history, did not come back
    in time or no longer holds what was missed). Raised out of ``async with
    hub.subscribe(...)`` blocks, and by ``hub.subscribe()`` while the backend
    is down."""


class Listener(Protocol):
    """What a backend reports to (the :class:`Hub` implements it)."""

    def deliver(self, topic: str, position: Position, message: Data) -> None:
        """A message was published on ``topic`` at ``position``."""

    def lost(self, exc: BaseException) -> None:
        """The backend's connection is lost; messages may be missed from now."""

    def restored(self) -> None:
        """The backend is connected again, with every topic subscribed."""

    def presence_expired(self, topic: str, member: str, info: dict[str, Any]) -> None:
        """A member of ``topic`` whose process stopped refreshing it is gone."""


class Backend(Protocol):
    """How a :class:`Hub` publishes, receives, reads history and tracks presence.

    ``subscribe`` and ``unsubscribe`` are called when a topic gets its first
    local subscriber and loses its last one. Messages published on a topic
    with local subscribers are handed to ``listener.deliver()`` in the order
    of their offsets. ``read`` returns the topic's latest position and the
    stored entries after ``since`` (the oldest first, at most ``limit``), or
    the ``limit`` latest ones when ``since`` is ``None``.
    """

    history_size: int
    history_ttl: float | None

    async def start(self, listener: Listener) -> None: ...

    async def subscribe(self, topic: str) -> None: ...

    async def unsubscribe(self, topic: str) -> None: ...

    async def publish(self, topic: str, message: Data) -> Position: ...

    async def read(
        self, topic: str, since: Position | None = None, limit: int | None = None
    ) -> tuple[Position | None, list[Entry]]: ...

    async def join(self, topic: str, member: str, info: dict[str, Any]) -> None: ...

    async def leave(self, topic: str, member: str) -> None: ...

    async def presence(self, topic: str) -> dict[str, dict[str, Any]]: ...

    async def presence_count(self, topic: str) -> int: ...

    async def stop(self) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class HubStats:
    """A snapshot of a hub's counters (see :attr:`Hub.stats`)."""

    #: Messages published through this hub.
    publishes: int
    #: Messages delivered to local subscribers (one per subscriber).
    deliveries: int
    #: Times a slow local subscriber started catching up from the history.
    catch_ups: int
    #: Local subscriptions now, and topics with local subscribers.
    subscriptions: int
    topics: int
    #: Times the backend connection came back after being lost.
    backend_reconnects: int
    #: Times a topic refilled from the history what its live feed missed.
    refills: int


class Topic:
    """A topic with local subscribers: who gets live messages (by formatter),
    who is catching up, and the latest position seen on the live feed."""

    __slots__ = (
        "groups", "last", "name", "parked", "recent", "recent_bytes", "refill", "seen",
        "subscriptions",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        #: The latest publications the feed brought, consecutive, of one
        #: epoch: slow subscribers catch up from here without reading the
        #: backend (bounded by the hub's ``catch_up_cache``).
        self.recent: collections.deque[Entry] = collections.deque()
        self.recent_bytes = 0
        self.groups: dict[Formatter | None, set[WebSocketLike]] = {}
        self.subscriptions: dict[WebSocketLike, Subscription] = {}
        self.parked: set[Subscription] = set()
        #: The latest position the live feed brought to this process.
        self.last: Position | None = None
        #: While the feed missed publications: the task that reads them from
        #: the history, and the latest position the feed brought meanwhile.
        self.refill: asyncio.Task[None] | None = None
        self.seen: Position | None = None


class Hub:
    """Topics mapped to local connections, published through a backend.

    ::

        hub = Hub()                                # in this process
        hub = Hub(RedisBackend("redis://localhost:6379/0"))  # across processes

        async def handler(ws):
            async with hub.subscribe(ws, "room:1"):
                async for message in ws:
                    await hub.publish("room:1", message)

    Every publication gets a :class:`Position`. With history on
    (``history_size`` messages, kept ``history_ttl`` seconds; on the Hub for
    the default :class:`MemoryBackend`, or on the backend), nothing is lost
    without a signal: a subscriber that ``broadcast()`` skipped for being
    slow is caught up from the history once its buffer drains (or closed
    with 1013 when the history no longer holds what it missed), a Hub whose
    backend dropped and came back within ``outage_timeout`` seconds refills
    what its topics missed, and ``subscribe(..., since=position)`` resumes
    where a client left off. ``formatter(topic, position, message)`` (here
    or per subscription) lets each delivered message carry its position.
    Catching up reads ``catch_up_batch`` entries of history at a time, and
    first looks in the topic's latest publications that the hub keeps in
    memory (``catch_up_cache`` bytes per topic; 0: always the backend).

    The backend starts on first use (or in ``async with hub``); :meth:`close`
    stops it.
    """

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        history_size: int | None = None,
        history_ttl: float | None = None,
        formatter: Formatter | None = None,
        outage_timeout: float = 30.0,
        catch_up_batch: int = 100,
        catch_up_cache: int = 2**20,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    ) -> None:
        if history_size is not None and (
            isinstance(history_size, bool) or not isinstance(history_size, int)
            or history_size < 0
        ):
            raise ValueError(f"history_size must be an int >= 0, not {history_size!r}")
        if history_ttl is not None and not history_ttl > 0:
            raise ValueError(f"history_ttl must be > 0 or None, not {history_ttl!r}")
        if not outage_timeout >= 0:
            raise ValueError(f"outage_timeout must be >= 0, not {outage_timeout!r}")
        if isinstance(catch_up_batch, bool) or not isinstance(catch_up_batch, int) or (
            catch_up_batch < 1
        ):
            raise ValueError(f"catch_up_batch must be an int >= 1, not {catch_up_batch!r}")
        if isinstance(catch_up_cache, bool) or not isinstance(catch_up_cache, int) or (
            catch_up_cache < 0
        ):
            raise ValueError(f"catch_up_cache must be an int >= 0, not {catch_up_cache!r}")
        if formatter is not None and not callable(formatter):
            raise TypeError(f"formatter must be callable, not {type(formatter).__name__}")
        if backend is None:
            backend = MemoryBackend(history_size=history_size or 0, history_ttl=history_ttl)
        else:
            if history_size is not None:
                backend.history_size = history_size
            if history_ttl is not None:
                backend.history_ttl = history_ttl
        self.backend: Backend = backend
        self.formatter = formatter
        self.outage_timeout = outage_timeout
        self.catch_up_batch = catch_up_batch
        self.catch_up_cache = catch_up_cache
        self.logger = logger or default_logger
        #: Whether the backend is connected (always true in memory).
        self.available = True
        self._topics: dict[str, Topic] = {}
        self._subscriptions: set[Subscription] = set()
        self._started: asyncio.Future[None] | None = None
        self._restored = asyncio.Event()
        self._outage: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        # Counters: publishes, deliveries, catch-ups, reconnects, refills.
        self._counts = [0, 0, 0, 0, 0]

    @property
    def keeps_history(self) -> bool:
        """Whether the backend keeps a history (``history_size`` > 0)."""
        return self.backend.history_size > 0

    @property
    def stats(self) -> HubStats:
        """Counters for monitoring (see :class:`HubStats`)."""
        publishes, deliveries, catch_ups, reconnects, refills = self._counts
        return HubStats(
            publishes=publishes,
            deliveries=deliveries,
            catch_ups=catch_ups,
            subscriptions=len(self._subscriptions),
            topics=len(self._topics),
            backend_reconnects=reconnects,
            refills=refills,
        )

    @property
    def topics(self) -> dict[str, int]:
        """Topics with local subscribers, and how many each has."""
        return {name: len(topic.subscriptions) for name, topic in self._topics.items()}

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
        """Stop the backend. Local subscriptions stay registered; using the
        hub again starts the backend again."""
        if self._started is not None:
            self._started = None
            if self._outage is not None:
                self._outage.cancel()
                self._outage = None
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

    def subscribe(
        self,
        ws: WebSocketLike,
        topic: str,
        *,
        since: Position | None = None,
        formatter: Formatter | None = HUB_FORMATTER,
        presence: dict[str, Any] | None = None,
    ) -> Subscription:
        """Subscribe ``ws`` to ``topic`` for the duration of an ``async with`` block.

        With ``since``, the messages published after that position are sent
        first, in order, then the live ones, with no duplicate and no gap;
        ``subscription.recovered`` tells whether the whole gap was still in
        the history (when it was not, nothing of it is sent). ``formatter``
        overrides the hub's (``None``: plain messages). ``presence`` (small,
        JSON-serialisable) makes ``ws`` appear in :meth:`presence` in every
        process, announced on :meth:`presence_topic`.
        """
        if since is not None and not isinstance(since, Position):
            raise TypeError(f"since must be a Position, not {type(since).__name__}")
        if presence is not None:
            json.dumps(presence)  # TypeError now rather than in another process
        if formatter is HUB_FORMATTER:
            formatter = self.formatter
        elif formatter is not None and not callable(formatter):
            raise TypeError(f"formatter must be callable, not {type(formatter).__name__}")
        return Subscription(self, ws, topic, since, formatter, presence)

    async def publish(self, topic: str, message: Data) -> Position:
        """Publish ``message`` to every subscriber of ``topic``, in every
        process, and return its position. Raises :exc:`BackendError` at once
        if the backend cannot take it now."""
        if not isinstance(message, (str, bytes)):
            raise TypeError(f"cannot publish {type(message).__name__}: expected str or bytes")
        await self.start()
        if not self.available:
            raise BackendError(f"cannot publish to {topic!r}: the backend is down")
        position = await self.backend.publish(topic, message)
        self._counts[0] += 1
        return position

    async def history(
        self, topic: str, since: Position | None = None, limit: int | None = None
    ) -> list[Entry]:
        """The stored publications of ``topic`` as ``(position, message)``
        pairs, oldest first: those after ``since`` (the first ``limit`` of
        them), or without ``since`` the ``limit`` latest. Empty with history
        off, or when ``since`` is from another epoch."""
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit!r}")
        await self.start()
        _, entries = await self.backend.read(topic, since, limit)
        return entries

    async def position(self, topic: str) -> Position | None:
        """The position of the latest publication on ``topic``, if any."""
        await self.start()
        latest, _ = await self.backend.read(topic, None, 0)
        return latest

    # Presence.

    @staticmethod
    def presence_topic(topic: str) -> str:
        """The companion topic where joins and leaves of ``topic`` are
        announced, as JSON text: ``{"type": "join" | "leave", "id": ...,
        "info": {...}}``."""
        return f"{topic}/presence"

    async def presence(self, topic: str) -> dict[str, dict[str, Any]]:
        """Who is subscribed to ``topic`` with presence info, in every
        process: connection id -> info."""
        await self.start()
        return await self.backend.presence(topic)

    async def presence_count(self, topic: str) -> int:
        """How many are subscribed to ``topic`` with presence info."""
        await self.start()
        return await self.backend.presence_count(topic)

    async def _announce(self, topic: str, kind: str, member: str, info: dict[str, Any]) -> None:
        event = json.dumps({"type": kind, "id": member, "info": info})
        try:
            await self.publish(self.presence_topic(topic), event)
        except BackendError as exc:
            self.logger.debug("presence %s on %r not announced: %s", kind, topic, exc)

    # Topics, used by Subscription.

    async def _join(self, subscription: Subscription) -> Topic:
        """Register a subscription; subscribe the backend to a new topic."""
        name = subscription.topic
        topic = self._topics.get(name)
        if topic is None:
            topic = self._topics[name] = Topic(name)
            new = True
        else:
            new = False
        if subscription.ws in topic.subscriptions:
            raise ValueError(f"this connection is already subscribed to {name!r}")
        topic.subscriptions[subscription.ws] = subscription
        self._subscriptions.add(subscription)
        if new:
            try:
                await self.backend.subscribe(name)
                if self.keeps_history and topic.last is None:
                    # Where the live feed starts: what an outage is measured from.
                    latest, _ = await self.backend.read(name, None, 0)
                    if topic.last is None:
                        topic.last = latest
            except BaseException:
                self._leave(subscription)
                raise
        return topic

    def _leave(self, subscription: Subscription) -> bool:
        """Unregister; return whether the topic has no local subscriber left."""
        self._subscriptions.discard(subscription)
        topic = self._topics.get(subscription.topic)
        if topic is None or topic.subscriptions.get(subscription.ws) is not subscription:
            return False
        del topic.subscriptions[subscription.ws]
        self._unlive(topic, subscription)
        topic.parked.discard(subscription)
        if topic.subscriptions:
            return False
        del self._topics[subscription.topic]
        if topic.refill is not None:
            topic.refill.cancel()
        return True

    @staticmethod
    def _live(topic: Topic, subscription: Subscription) -> None:
        topic.parked.discard(subscription)
        topic.groups.setdefault(subscription.formatter, set()).add(subscription.ws)

    @staticmethod
    def _unlive(topic: Topic, subscription: Subscription) -> None:
        group = topic.groups.get(subscription.formatter)
        if group is not None:
            group.discard(subscription.ws)
            if not group:
                del topic.groups[subscription.formatter]

    # Listener: called by the backend.

    def deliver(self, topic: str, position: Position, message: Data) -> None:
        state = self._topics.get(topic)
        if state is None:
            return
        if state.refill is not None:
            state.seen = position  # the refill reads it from the history
            return
        last = state.last
        if self.keeps_history:
            if last is not None and position.epoch == last.epoch and (
                position.offset <= last.offset
            ):
                return  # already fed from the history
            if not _follows(last, position):
                # The live feed skipped publications: fill the gap from the
                # history, in order, before anything newer.
                state.seen = position
                self._start_refill(state)
                return
        self._feed(state, position, message)

    def _feed(self, state: Topic, position: Position, message: Data) -> None:
        """Deliver to the live subscribers: one broadcast per formatter. With
        history, those too slow to take it fall behind and catch up."""
        if self.keeps_history and self.catch_up_cache:
            self._remember(state, position, message)
        if state.parked:
            for subscription in list(state.parked):
                subscription.feed_reached(position, before=True)
        for formatter, group in list(state.groups.items()):
            try:
                data = message if formatter is None else formatter(state.name, position, message)
            except Exception:
                self.logger.exception("formatter failed on %r; message not delivered", state.name)
                continue
            if self.keeps_history:
                slow: list[WebSocketLike] = []
                self._counts[1] += broadcast(group, data, on_slow=slow.append)
                self._counts[2] += len(slow)
                for ws in slow:
                    subscription = state.subscriptions[ws]
                    self._unlive(state, subscription)
                    subscription.fall_behind(Position(position.epoch, position.offset - 1))
            else:
                self._counts[1] += broadcast(group, data)
        state.last = position
        if state.parked:
            for subscription in list(state.parked):
                subscription.feed_reached(position, before=False)

    def _remember(self, state: Topic, position: Position, message: Data) -> None:
        """Keep the publication in the topic's recent ones, dropping the
        oldest beyond ``catch_up_cache`` bytes or ``history_size`` entries.
        Sizes are what the message objects take in memory (a ``str`` of
        non-ASCII text takes up to 4 bytes a character)."""
        recent = state.recent
        if recent:
            last = recent[-1][0]
            if last.epoch != position.epoch or last.offset + 1 != position.offset:
                recent.clear()  # keep them consecutive, of one epoch
                state.recent_bytes = 0
        recent.append((position, message))
        state.recent_bytes += sys.getsizeof(message)
        limit = self.backend.history_size
        while recent and (state.recent_bytes > self.catch_up_cache or len(recent) > limit):
            state.recent_bytes -= sys.getsizeof(recent.popleft()[1])

    @staticmethod
    def _recent_after(state: Topic, cursor: Position) -> list[Entry] | None:
        """The recent publications after ``cursor`` up to the feed's latest,
        or ``None`` when they do not start right after it."""
        recent = state.recent
        if not recent:
            return None
        first = recent[0][0]
        last = recent[-1][0]
        if (
            first.epoch != cursor.epoch
            or last != state.last
            or not first.offset - 1 <= cursor.offset <= last.offset
        ):
            return None
        return list(itertools.islice(recent, cursor.offset - first.offset + 1, None))

    def _start_refill(self, state: Topic) -> None:
        if state.refill is None or state.refill.done():
            self._counts[4] += 1
            state.refill = asyncio.ensure_future(self._refill(state))

    async def _refill(self, state: Topic) -> None:
        """Read what the live feed missed from the history and feed it, until
        the feed's latest; if the history cannot cover the gap, interrupt the
        topic's subscriptions."""
        try:
            while True:
                cursor = state.last
                try:
                    if cursor is None:
                        # Nothing seen yet: everything of the current epoch is new.
                        latest, _ = await self.backend.read(state.name, None, 0)
                        if latest is None:
                            state.refill = state.seen = None
                            return
                        cursor = Position(latest.epoch, 0)
                    latest, entries = await self.backend.read(
                        state.name, cursor, self.catch_up_batch
                    )
                except (BackendError, OSError):
                    await asyncio.sleep(0.1)
                    await self.wait_restored()
                    continue
                if not covers(cursor, latest, entries):
                    state.refill = state.seen = None
                    self.logger.warning(
                        "publications on %r were missed and are not in the history "
                        "(from %s, latest %s); interrupting its subscriptions",
                        state.name, cursor, latest,
                    )
                    error = SubscriptionLost(
                        f"publications on {state.name!r} were missed and left the history"
                    )
                    for subscription in list(state.subscriptions.values()):
                        subscription.interrupt(error)
                    return
                for position, message in entries:
                    self._feed(state, position, message)
                assert latest is not None
                seen = state.seen
                if state.last == latest and (
                    seen is None or (seen.epoch == latest.epoch and seen.offset <= latest.offset)
                ):
                    state.refill = None  # the live feed takes over from here
                    state.seen = None
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            state.refill = None
            self.logger.exception("refilling %r from its history failed", state.name)

    def lost(self, exc: BaseException) -> None:
        self.available = False
        self._restored.clear()
        if not self.keeps_history or not self.outage_timeout:
            self._interrupt_all(exc)
            return
        self.logger.warning(
            "pub/sub backend lost (%s); %d subscriptions wait up to %.0f s for it",
            exc, len(self._subscriptions), self.outage_timeout,
        )
        if self._outage is None:
            loop = asyncio.get_running_loop()
            self._outage = loop.call_later(self.outage_timeout, self._interrupt_all, exc)

    def _interrupt_all(self, exc: BaseException) -> None:
        self._outage = None
        self.logger.warning(
            "pub/sub backend lost (%s); interrupting %d subscriptions",
            exc, len(self._subscriptions),
        )
        for subscription in list(self._subscriptions):
            subscription.interrupt(exc)

    def restored(self) -> None:
        self._counts[3] += 1
        self.available = True
        self._restored.set()
        if self._outage is not None:
            self._outage.cancel()
            self._outage = None
        self.logger.info("pub/sub backend connected again")
        if not self.keeps_history:
            return
        # Whatever the topics missed meanwhile comes from the history.
        for topic in self._topics.values():
            self._start_refill(topic)

    async def wait_restored(self) -> None:
        """Wait until the backend is connected (at once when it is)."""
        if not self.available:
            await self._restored.wait()

    def presence_expired(self, topic: str, member: str, info: dict[str, Any]) -> None:
        task = asyncio.ensure_future(self._announce(topic, "leave", member, info))
        # Keep a reference until done: asyncio holds only weak ones.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _follows(last: Position | None, position: Position) -> bool:
    """Whether ``position`` comes right after ``last`` on the feed (a new
    epoch that starts at 1 follows anything: the old stream ended)."""
    if last is None:
        return position.offset == 1
    if position.epoch == last.epoch:
        return position.offset == last.offset + 1
    return position.offset == 1
