"""The in-process backend: publishing is a local delivery."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..typing import Data

if TYPE_CHECKING:
    from .hub import Listener

__all__ = ["MemoryBackend"]


class MemoryBackend:
    """Delivers in this process only: the default backend of a Hub."""

    def __init__(self) -> None:
        self._listener: Listener | None = None

    async def start(self, listener: Listener) -> None:
        self._listener = listener

    async def subscribe(self, topic: str) -> None:
        pass

    async def unsubscribe(self, topic: str) -> None:
        pass

    async def publish(self, topic: str, message: Data) -> None:
        assert self._listener is not None, "start() first"
        self._listener.deliver(topic, message)

    async def stop(self) -> None:
        pass
