"""What websockets' client and server connections share
(``websockets.asyncio.connection``): :class:`Connection` and
:func:`broadcast`, and the translation of websockets' limits and timeouts
into the core's settings."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Iterable
from typing import Any

from ... import connection as _connection
from ...exceptions import ConcurrencyError
from ...patterns import WebSocketLike
from ...patterns import broadcast as _broadcast
from ...protocol import State
from ...typing import DataLike

__all__ = ["Connection", "broadcast"]


class Connection(_connection.Connection):
    """websockets' connection API on the core's
    :class:`~websockets_lite.Connection`: everything the core has (``recv``,
    ``recv_streaming``, ``send``, ``close``, ``wait_closed``, ``pong``,
    ``latency``, ``state``, ``id``, addresses, ``close_code``...), with
    websockets' :meth:`ping`, which returns a future.
    """

    __slots__ = ()

    async def ping(  # type: ignore[override]  # websockets' form: a future
        self, data: DataLike | None = None
    ) -> Awaitable[float]:
        """Send a ping; return a future whose result is the latency, in
        seconds, once the matching pong arrives::

            pong_waiter = await ws.ping()
            latency = await pong_waiter

        The ping is written when the ``await`` returns. Raises
        :exc:`~websockets_lite.ConnectionClosed` once the connection is
        closing, :exc:`~websockets_lite.ConcurrencyError` when a ping with the
        same data awaits its pong. The future fails with ``ConnectionClosed``
        if the connection closes first; nobody needs to await it.
        """
        if data is not None and not isinstance(data, (str, bytes, bytearray, memoryview)):
            raise TypeError("data must be str or bytes-like")  # before the task starts
        if self.state is not State.OPEN:
            await super().ping(data)  # raises ConnectionClosed once closed
        pong_waiter = self.loop.create_task(super().ping(data))
        pong_waiter.add_done_callback(_retrieve)
        # One loop iteration: the task writes the ping (or fails, for a
        # duplicate payload) before this returns, as websockets' ping() does.
        await asyncio.sleep(0)
        if pong_waiter.done() and not pong_waiter.cancelled():
            exc = pong_waiter.exception()
            if exc is not None:
                raise exc
        return pong_waiter

    @property
    def close_timeout(self) -> float | None:
        """websockets' name of ``disconnect_timeout`` (``None``: no timeout)."""
        timeout = self.disconnect_timeout
        return None if timeout == math.inf else timeout

    @close_timeout.setter
    def close_timeout(self, value: float | None) -> None:
        self.disconnect_timeout = math.inf if value is None else value


def _retrieve(task: asyncio.Task[float]) -> None:
    # A pong that never comes (the connection closed) is not an error
    # worth a "Task exception was never retrieved".
    if not task.cancelled():
        task.exception()


def broadcast(
    connections: Iterable[_connection.Connection],
    message: DataLike,
    *,
    text: bool | None = None,
    raise_exceptions: bool = False,
) -> None:
    """Send ``message`` to every open connection that can take it now,
    without waiting, as websockets' ``broadcast()``.

    ``text=True`` sends bytes as a text message (they must be UTF-8:
    ``UnicodeDecodeError`` otherwise), ``text=False`` a ``str`` as a binary
    message. Connections that are not open are skipped silently.

    Unlike websockets, it never buffers a message beyond a connection's
    ``write_limit``: a slow client whose write buffer is full skips the
    message (counted in its ``stats.broadcasts_skipped``) instead of
    buffering it without bound. A connection in the middle of sending a
    fragmented message skips it too, as in websockets. With
    ``raise_exceptions=True``, those two kinds of connections are the ones
    that "could not take the message": the call raises an
    ``ExceptionGroup`` with a :exc:`~websockets_lite.ConcurrencyError` for
    each connection sending fragments and a ``RuntimeError`` for each slow
    one, after the others got the message. Without it, a skip for
    fragments is logged as a warning on the connection's logger (as
    websockets does) and a skip for slowness only counted.
    """
    if isinstance(message, str):
        if text is False:
            message = message.encode()
    elif isinstance(message, (bytes, bytearray, memoryview)):
        if text is True:
            message = bytes(message).decode()
    else:
        raise TypeError("data must be str or bytes")
    targets = list(connections)
    # Checked before sending: broadcast() does not wait, so nothing changes
    # in between. The core skips these connections.
    busy = [ws for ws in targets if ws.state is State.OPEN and ws.sending_fragments]
    slow: list[WebSocketLike] = []
    _broadcast(targets, message, on_slow=slow.append)
    errors: list[Exception] = []
    for ws in busy:
        if raise_exceptions:
            errors.append(ConcurrencyError("sending a fragmented message"))
        else:
            ws.logger.warning("skipped broadcast: sending a fragmented message")
    if raise_exceptions:
        errors.extend(
            RuntimeError("skipped broadcast: the write buffer is over write_limit")
            for _ in slow
        )
        if errors:
            raise ExceptionGroup("skipped broadcast", errors)


def _limit(name: str, value: Any) -> Any:
    """The first of a ``(high, low)`` pair (or a ``(message, fragment)``
    pair), or the value itself."""
    if isinstance(value, tuple):
        if len(value) != 2:
            raise ValueError(f"{name} must be a number, None or a pair, not {value!r}")
        return value[0]
    return value


def core_settings(
    *,
    open_timeout: float | None,
    close_timeout: float | None,
    max_size: int | tuple[int | None, int | None] | None,
    max_queue: int | tuple[int | None, int | None] | None,
    write_limit: int | tuple[int, int | None],
) -> dict[str, Any]:
    """websockets' limits and timeouts as the core's keyword arguments.

    - ``open_timeout`` is ``connect_timeout``, ``close_timeout``
      ``disconnect_timeout``;
    - ``max_size``: ``max_message_size``; of a ``(message, fragment)`` pair
      only the message size is used: the core caps the number of fragments
      of a message (``max_fragments``), not their size;
    - ``max_queue``: ``message_queue_size``, which counts messages, not
      frames; of a ``(high, low)`` pair only ``high`` is used (reading
      resumes as soon as there is room);
    - ``write_limit``: of a ``(high, low)`` pair only ``high`` is used (the
      low-water mark is asyncio's default, a quarter of it).
    """
    queue = _limit("max_queue", max_queue)
    return {
        "connect_timeout": open_timeout,
        "disconnect_timeout": close_timeout,
        "max_message_size": _limit("max_size", max_size),
        "message_queue_size": queue,
        "write_limit": _limit("write_limit", write_limit),
    }
