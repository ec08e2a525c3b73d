"""A subscription: one connection on one topic, live or catching up.

A subscription is *live* while it gets the topic's messages through the
hub's broadcast. It *catches up* when it resumes from a position, or when
broadcast skipped it for being slow: it then takes what it missed from its
cursor (the last position it was sent), from the topic's recent
publications that the hub keeps in memory when they reach back that far,
else from the backend's history, and sends it as fast as its write buffer
takes it (waiting while it is full, so catching up never holds more than
``write_limit`` of pending data, plus one message). Live messages meanwhile are not held
for it: it will read them from the history too. When its cursor reaches the
last position the live feed brought, it is live again (in the same step, so
nothing slips between); when it got ahead of the feed (the history showed a
publication whose live copy has not arrived yet), it is *parked* until the
feed reaches its cursor. If the history no longer holds what it missed, a
slow subscriber is closed with 1013, and a resumed one starts live without
any partial replay (``recovered`` is then false).
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from ..close import CloseCause, CloseCode
from ..exceptions import ConnectionClosed
from ..patterns import WebSocketLike
from .position import Formatter, Position, covers

if TYPE_CHECKING:
    from .hub import Hub, Topic

__all__ = ["Subscription"]


class Subscription:
    """``async with hub.subscribe(ws, topic)``: ``ws`` gets every message
    published on ``topic`` while the block runs (see :meth:`Hub.subscribe`).

    If messages are missed and cannot be recovered (the backend lost its
    connection, without history or for longer than the hub's
    ``outage_timeout``), the block is interrupted (as ``asyncio.timeout()``
    interrupts one) and :exc:`SubscriptionLost` is raised out of it: no
    subscriber waits silently for messages that will not come.
    """

    def __init__(
        self,
        hub: Hub,
        ws: WebSocketLike,
        topic: str,
        since: Position | None,
        formatter: Formatter | None,
        presence: dict[str, Any] | None,
    ) -> None:
        self.hub = hub
        self.ws = ws
        self.topic = topic
        self.since = since
        self.formatter = formatter
        self.presence = presence
        #: With ``since``: whether every message after it was sent (the gap
        #: was still in the history of the same epoch). ``None`` without it.
        self.recovered: bool | None = None
        #: Whether it gets the topic's messages through the live feed now.
        self.live = False
        self._state: Topic | None = None
        self._cursor: Position | None = None
        self._task: asyncio.Task[Any] | None = None
        self._catch_up: asyncio.Task[None] | None = None
        self._lost: BaseException | None = None

    @property
    def member(self) -> str:
        """The presence id of this subscription: its connection's id."""
        return str(self.ws.id)

    async def __aenter__(self) -> Subscription:
        from .hub import SubscriptionLost

        hub = self.hub
        await hub.start()
        if not hub.available:
            raise SubscriptionLost(f"cannot subscribe to {self.topic!r}: the backend is down")
        self._task = asyncio.current_task()
        self._state = await hub._join(self)
        try:
            if self.presence is not None:
                await hub.backend.join(self.topic, self.member, self.presence)
                await hub._announce(self.topic, "join", self.member, self.presence)
            if self.since is None:
                self._go_live()
            else:
                self._cursor = self.since
                self.recovered = await self._replay("resume")
        except BaseException:
            await self._exit()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        from .hub import SubscriptionLost

        await self._exit()
        if self._lost is not None and exc_type is asyncio.CancelledError:
            assert self._task is not None
            if self._task.uncancel() == 0:
                raise SubscriptionLost(
                    f"subscription to {self.topic!r} lost: {self._lost}"
                ) from self._lost

    async def _exit(self) -> None:
        hub = self.hub
        if self._catch_up is not None:
            self._catch_up.cancel()
            self._catch_up = None
        self.live = False
        if hub._leave(self):
            try:
                await hub.backend.unsubscribe(self.topic)
            except Exception as error:  # the backend reconnects without this topic anyway
                hub.logger.debug("unsubscribe %r failed: %s", self.topic, error)
        if self.presence is not None:
            try:
                await hub.backend.leave(self.topic, self.member)
            except Exception as error:  # its entry expires anyway
                hub.logger.debug("presence leave on %r failed: %s", self.topic, error)
            else:
                await hub._announce(self.topic, "leave", self.member, self.presence)

    def interrupt(self, exc: BaseException) -> None:
        """Interrupt the ``async with`` block with :exc:`SubscriptionLost`."""
        if self._lost is None and self._task is not None and not self._task.done():
            self._lost = exc
            self._task.cancel()

    # Live, parked, catching up: called by the hub.

    def _go_live(self) -> None:
        assert self._state is not None
        self.live = True
        self.hub._live(self._state, self)

    def fall_behind(self, cursor: Position) -> None:
        """Broadcast skipped it: catch up from ``cursor`` in the background."""
        self.live = False
        self._cursor = cursor
        if self._catch_up is None or self._catch_up.done():
            self._catch_up = asyncio.ensure_future(self._catching_up())

    def feed_reached(self, position: Position, before: bool) -> None:
        """The live feed brings ``position`` (``before`` broadcasting it, or
        after): a parked subscription joins it when its cursor meets it."""
        cursor = self._cursor
        assert cursor is not None and self._state is not None
        if before:
            if position.epoch != cursor.epoch and position.offset == 1:
                self._go_live()  # a new epoch from its start: nothing missed
            elif position.epoch != cursor.epoch or cursor.offset < position.offset - 1:
                self._state.parked.discard(self)
                self.fall_behind(cursor)  # the feed went past it: read the rest
            elif cursor.offset == position.offset - 1:
                self._go_live()
        elif position == cursor:
            self._go_live()

    async def _catching_up(self) -> None:
        hub = self.hub
        try:
            while True:
                try:
                    covered = await self._replay("slow")
                    break
                except ConnectionClosed:
                    return
                except Exception as exc:
                    from .hub import BackendError

                    if not isinstance(exc, (BackendError, OSError)) and hub.available:
                        raise
                    await asyncio.sleep(0.1)
                    await hub.wait_restored()
            if not covered:
                self.ws.close_nowait(
                    CloseCode.TRY_AGAIN_LATER, "too slow: missed messages left the history",
                    cause=CloseCause.TOO_SLOW,
                )
        except asyncio.CancelledError:
            raise
        except Exception:
            hub.logger.exception("catching up on %r failed", self.topic)
            self.ws.close_nowait(CloseCode.INTERNAL_ERROR, "internal error")

    async def _replay(self, cause: Literal["resume", "slow"]) -> bool:
        """Send the history from the cursor until caught up with the live
        feed; return ``False``, having sent nothing of it, when the history
        does not cover the gap (for a resume, the subscription then starts
        live)."""
        hub = self.hub
        state = self._state
        assert state is not None
        ws = self.ws
        while True:
            cursor = self._cursor
            assert cursor is not None
            entries = hub._recent_after(state, cursor)
            if entries is None:
                latest, entries = await hub.backend.read(self.topic, cursor, hub.catch_up_batch)
                if not covers(cursor, latest, entries):
                    if cause == "resume":
                        self._go_live()
                    return False
                more = bool(entries) and entries[-1][0] != latest
            else:
                more = False
            for position, message in entries:
                if self.formatter is not None:
                    message = self.formatter(self.topic, position, message)
                # As much as the write buffer takes now, in one write per
                # loop iteration; then send() waits until it drains.
                if not ws.send_nowait(message):
                    await ws.send(message)
                self._cursor = position
            if more:
                continue  # more in the history than one batch
            # Caught up with what the history held: join the live feed at
            # once if it is where we are, wait for it if it lags behind.
            cursor = self._cursor
            last = state.last
            if last is None or last == cursor or cursor is None:
                self._go_live()
                return True
            if last.epoch == cursor.epoch and last.offset < cursor.offset:
                self.live = False
                state.parked.add(self)
                return True
            # The live feed moved on while we were sending: read again.
