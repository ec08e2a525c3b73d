"""Backpressure in both directions, with no wsproto and no event loop.

Read side: :class:`ReadFlow` holds the complete messages waiting for
``recv()``. ``data_received`` cannot await, so a full queue cannot block the
parser; instead the connection stops pulling events from the parser (which
leaves the unparsed bytes where they are) and pauses the transport. The queue
therefore holds at most ``size`` messages plus the one that made it overflow.

Write side: :class:`WriteFlow` records whether the transport's write buffer
is above its high-water mark and wakes every coroutine waiting for it to
drain, or fails them all when the connection is lost.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

#: Queues up to this size are plain lists: an empty deque costs 600 bytes,
#: too much per idle connection, and pop(0) on a short list is cheap.
_SHORT_QUEUE = 64

__all__ = ["READ_CHUNK", "ReadFlow", "Waiter", "WriteFlow", "memory_bound"]

#: The most bytes one socket read hands to the parser; the connection reads
#: into a buffer of this size shared by every connection of a thread.
READ_CHUNK = 256 * 1024


def memory_bound(message_queue_size: float, max_message_size: float, write_limit: int) -> float:
    """The most bytes one connection buffers, as the docs state it.

    Read side: ``message_queue_size`` complete messages, plus one more that
    overflowed the queue or is being assembled, plus the transient copy made
    when a fragmented message completes: ``size + 2`` messages of at most
    ``max_message_size`` bytes; and one read chunk not yet parsed. Write side:
    ``write_limit``; beyond it only the message whose ``send()`` crossed the
    limit, which the application holds anyway. Python object headers (tens of
    bytes per message) are not counted.
    """
    return (message_queue_size + 2) * max_message_size + READ_CHUNK + write_limit


class ReadFlow:
    """Complete messages waiting for ``recv()``, and whether reading is paused.

    ``size`` is ``message_queue_size``: 0 means hand-off (one message waits,
    reading is paused), ``math.inf`` means unbounded. ``pause`` and ``resume``
    are called at most once per change, so they may be transport methods.
    ``clock`` measures how long reading stayed paused.
    """

    __slots__ = ("_clock", "_pause", "_resume", "messages", "paused", "paused_since",
                 "paused_total", "size")

    def __init__(
        self,
        size: float,
        pause: Callable[[], None],
        resume: Callable[[], None],
        clock: Callable[[], float],
    ) -> None:
        if not size >= 0:
            raise ValueError("message_queue_size must be >= 0")
        self.messages: list[Any] | deque[Any] = [] if size <= _SHORT_QUEUE else deque()
        self.size = size
        self.paused = False
        self.paused_since = 0.0
        self.paused_total = 0.0
        self._pause = pause
        self._resume = resume
        self._clock = clock

    def take(self) -> Any:
        """Remove and return the oldest message."""
        messages = self.messages
        return messages.pop(0) if type(messages) is list else messages.popleft()  # type: ignore[union-attr]

    @property
    def full(self) -> bool:
        """More messages wait than ``size`` allows: the parser must stall."""
        return len(self.messages) > self.size

    def pause_reading(self) -> None:
        if not self.paused:
            self.paused = True
            self.paused_since = self._clock()
            self._pause()

    def resume_reading(self) -> None:
        if self.paused:
            self.paused = False
            self.paused_total += self._clock() - self.paused_since
            self._resume()

    def paused_seconds(self) -> float:
        """Total time spent with reading paused, the current pause included."""
        current = self._clock() - self.paused_since if self.paused else 0.0
        return self.paused_total + current


class Waiter(Protocol):
    """What :class:`WriteFlow` needs of a waiter: an ``asyncio.Future`` fits."""

    def done(self) -> bool: ...
    def set_result(self, result: None, /) -> None: ...
    def set_exception(self, exception: BaseException, /) -> None: ...


class WriteFlow:
    """The write buffer's state: above its limit (``paused``) or not.

    The transport calls :meth:`pause` and :meth:`resume` (through the
    protocol's ``pause_writing`` / ``resume_writing``); senders register a
    waiter while paused; :meth:`lost` fails every waiter, so a sender blocked
    on a peer that vanished never hangs.
    """

    __slots__ = ("paused", "waiters")

    def __init__(self) -> None:
        self.paused = False
        self.waiters: list[Waiter] = []

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def lost(self, exc: BaseException) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(exc)
