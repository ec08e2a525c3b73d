"""The in-process backend: publishing is a local delivery, history and
presence live in this process's memory."""

from __future__ import annotations

import time
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any

from ..typing import Data
from .position import Entry, Position

if TYPE_CHECKING:
    from .hub import Listener

__all__ = ["MemoryBackend"]


class _Topic:
    __slots__ = ("entries", "epoch", "offset", "touched")

    def __init__(self, size: int) -> None:
        self.epoch = uuid.uuid4().hex[:16]
        self.offset = 0
        self.entries: deque[tuple[Entry, float]] = deque(maxlen=size or 1)
        self.touched = 0.0


class MemoryBackend:
    """Delivers in this process only: the default backend of a Hub.

    With ``history_size`` (messages, 0 for none), each topic keeps its latest
    publications, dropped after ``history_ttl`` seconds when given; a topic
    unused for ``history_ttl`` starts a new epoch, as in Redis. A new
    MemoryBackend always starts new epochs.
    """

    def __init__(self, *, history_size: int = 0, history_ttl: float | None = None) -> None:
        self.history_size = history_size
        self.history_ttl = history_ttl
        self._listener: Listener | None = None
        self._topics: dict[str, _Topic] = {}
        self._presence: dict[str, dict[str, dict[str, Any]]] = {}

    async def start(self, listener: Listener) -> None:
        self._listener = listener

    async def subscribe(self, topic: str) -> None:
        pass

    async def unsubscribe(self, topic: str) -> None:
        pass

    def _topic(self, name: str, create: bool) -> _Topic | None:
        now = time.monotonic()
        topic = self._topics.get(name)
        ttl = self.history_ttl
        if topic is not None and ttl is not None and now - topic.touched > ttl:
            del self._topics[name]  # expired, as Redis keys do
            topic = None
        if topic is None and create:
            topic = self._topics[name] = _Topic(self.history_size)
        return topic

    async def publish(self, topic: str, message: Data) -> Position:
        assert self._listener is not None, "start() first"
        state = self._topic(topic, create=True)
        assert state is not None
        state.offset += 1
        state.touched = time.monotonic()
        position = Position(state.epoch, state.offset)
        if self.history_size:
            state.entries.append(((position, message), state.touched))
        self._listener.deliver(topic, position, message)
        return position

    async def read(
        self, topic: str, since: Position | None = None, limit: int | None = None
    ) -> tuple[Position | None, list[Entry]]:
        state = self._topic(topic, create=False)
        if state is None or not state.offset:
            return None, []
        latest = Position(state.epoch, state.offset)
        entries = [entry for entry, _ in state.entries]
        if since is not None:
            if since.epoch != state.epoch:
                return latest, []
            entries = [entry for entry in entries if entry[0].offset > since.offset]
            return latest, entries if limit is None else entries[:limit]
        return latest, entries if limit is None else entries[max(0, len(entries) - limit) :]

    async def join(self, topic: str, member: str, info: dict[str, Any]) -> None:
        self._presence.setdefault(topic, {})[member] = info

    async def leave(self, topic: str, member: str) -> None:
        members = self._presence.get(topic)
        if members is not None:
            members.pop(member, None)
            if not members:
                del self._presence[topic]

    async def presence(self, topic: str) -> dict[str, dict[str, Any]]:
        return dict(self._presence.get(topic, {}))

    async def presence_count(self, topic: str) -> int:
        return len(self._presence.get(topic, {}))

    async def stop(self) -> None:
        pass
