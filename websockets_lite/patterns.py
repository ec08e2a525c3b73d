"""The patterns every WebSocket application writes, ready and correct:
consume, produce, both at once, a registry of connections, and broadcast.

Everything here uses the public :class:`~websockets_lite.Connection` API;
:func:`broadcast` uses its one fast path, ``Connection.send_nowait()``, which
writes an already-framed message without waiting. They take any
:class:`WebSocketLike`: a native connection, or an ASGI WebSocket wrapped by
:func:`websockets_lite.asgi.accept`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Iterator, MutableSet
from typing import Literal, Protocol, TypeVar

from .close import CloseCause, CloseCode
from .exceptions import ConnectionClosed
from .protocol import State, encode_frame
from .typing import Data, DataLike

__all__ = [
    "WebSocketLike",
    "Consumer",
    "Producer",
    "broadcast",
    "consume",
    "consume_and_produce",
    "produce",
    "registered",
]

#: Awaited with each message received.
Consumer = Callable[[Data], Awaitable[object]]
#: Gives the messages to send: an async callable returning the next message
#: (``None`` ends production), or an async iterable of messages.
Producer = Callable[[], Awaitable[DataLike | None]] | AsyncIterable[DataLike]



class WebSocketLike(Protocol):
    """What the patterns and the Hub need of a connection: a
    :class:`~websockets_lite.Connection`, or an
    :class:`~websockets_lite.asgi.ASGIConnection`."""

    broadcasts_sent: int
    broadcasts_skipped: int

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def state(self) -> State: ...

    @property
    def shares_frames(self) -> bool: ...

    @property
    def sending_fragments(self) -> bool: ...

    async def recv(self) -> Data: ...

    async def send(self, message: DataLike) -> None: ...

    def send_nowait(self, message: DataLike, frame: bytes | None = None) -> bool: ...

    async def close(self, code: int = ..., reason: str = ...) -> None: ...

    def close_nowait(
        self, code: int = ..., reason: str = ..., *, cause: CloseCause = ...
    ) -> None: ...

    async def wait_closed(self) -> None: ...


C = TypeVar("C", bound=WebSocketLike)
_TOO_SLOW = CloseCause.TOO_SLOW


async def _consume(ws: WebSocketLike, consumer: Consumer) -> None:
    while True:
        try:
            message = await ws.recv()
        except ConnectionClosed:
            return  # the connection ended: so does consuming
        await consumer(message)


async def _send(ws: WebSocketLike, message: DataLike) -> bool:
    try:
        await ws.send(message)
    except ConnectionClosed:
        return False
    return True


async def _produce(ws: WebSocketLike, producer: Producer) -> None:
    if isinstance(producer, AsyncIterable):
        # aclosing(): an async generator left early still runs its finally.
        iterator = aiter(producer)
        closing = getattr(iterator, "aclose", None)
        async with contextlib.AsyncExitStack() as stack:
            if closing is not None:
                stack.push_async_callback(closing)
            async for message in iterator:
                if not await _send(ws, message):
                    return
    else:
        while True:
            next_message = await producer()
            if next_message is None or not await _send(ws, next_message):
                return


async def consume(ws: WebSocketLike, consumer: Consumer) -> None:
    """Await ``consumer(message)`` for each message until the connection ends.

    Returns when the connection closes, whoever closed it (``ws.close_code``
    tells how). If ``consumer`` raises, the connection is closed with 1011
    and the exception propagates. One message is handled at a time, so a
    slow consumer slows the peer down (read backpressure).
    """
    try:
        await _consume(ws, consumer)
    except Exception:
        await ws.close(CloseCode.INTERNAL_ERROR, "internal error")
        raise


async def produce(ws: WebSocketLike, producer: Producer) -> None:
    """Send what ``producer`` gives until it ends, then close with 1000.

    Returns early, quietly, if the connection closes. If ``producer`` raises,
    the connection is closed with 1011 and the exception propagates. Each
    ``send()`` waits while the write buffer is full, so a fast producer
    cannot outrun the peer (write backpressure).
    """
    try:
        await _produce(ws, producer)
    except Exception:
        await ws.close(CloseCode.INTERNAL_ERROR, "internal error")
        raise
    await ws.close()


async def consume_and_produce(ws: WebSocketLike, consumer: Consumer, producer: Producer) -> None:
    """Consume and produce at once; when either ends or fails, stop the other.

    The connection is then closed: with 1000 when one side ended normally
    (the producer is exhausted, or the peer closed the connection), with 1011
    when ``consumer`` or ``producer`` raised, in which case the exception
    propagates. Cancelling it cancels both sides.
    """
    consuming = asyncio.ensure_future(_consume(ws, consumer))
    producing = asyncio.ensure_future(_produce(ws, producer))
    try:
        await asyncio.wait((consuming, producing), return_when=asyncio.FIRST_COMPLETED)
    finally:
        consuming.cancel()
        producing.cancel()
        results = await asyncio.gather(consuming, producing, return_exceptions=True)
    errors = [result for result in results if isinstance(result, Exception)]
    if errors:
        await ws.close(CloseCode.INTERNAL_ERROR, "internal error")
        raise errors[0]
    await ws.close()


@contextlib.contextmanager
def registered(registry: MutableSet[C], ws: C) -> Iterator[C]:
    """Add ``ws`` to ``registry`` for the duration of the block; it is removed
    on the way out, whatever happens (the "connected set" pattern)::

        CONNECTIONS: set[ServerProtocol] = set()

        async def handler(ws):
            with registered(CONNECTIONS, ws):
                await ws.wait_closed()
    """
    registry.add(ws)
    try:
        yield ws
    finally:
        registry.discard(ws)


def broadcast(
    connections: Iterable[WebSocketLike],
    message: DataLike,
    *,
    on_slow: Literal["skip", "close"] | Callable[[WebSocketLike], object] = "skip",
) -> int:
    """Send ``message`` to every connection that can take it now; return how
    many got it. It never waits, so one slow client cannot hold the others
    back or make the server buffer without bound.

    The message is framed once for all server connections without
    compression (those with compression each deflate it with their own
    context). A connection is skipped when it is not open, is in the middle
    of a fragmented message (it is not corrupted), or when its write buffer
    would go above ``write_limit``; that last case counts in its
    ``stats.broadcasts_skipped``, and then ``on_slow`` decides: ``"skip"``
    does nothing more, ``"close"`` closes the connection with 1013 (try again
    later), and a callable is called with the connection, once ``broadcast``
    is done with the others (so it may change ``connections``). The
    :class:`~websockets_lite.Hub` uses that to catch slow subscribers up.
    """
    if not (on_slow == "skip" or on_slow == "close" or callable(on_slow)):
        raise ValueError(f"on_slow must be 'skip', 'close' or a callable, not {on_slow!r}")
    if not isinstance(message, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"cannot broadcast {type(message).__name__}")
    shared: bytes | None = None
    sent = 0
    slow: list[WebSocketLike] = []
    for ws in connections:
        if ws.shares_frames:
            if shared is None:
                shared = encode_frame(message)
            delivered = ws.send_nowait(message, shared)
        else:
            delivered = ws.send_nowait(message)
        if delivered:
            sent += 1
            ws.broadcasts_sent += 1
        elif ws.state is State.OPEN and not ws.sending_fragments:
            ws.broadcasts_skipped += 1
            if on_slow != "skip":
                slow.append(ws)
    for ws in slow:
        if on_slow == "close":
            ws.close_nowait(CloseCode.TRY_AGAIN_LATER, "too slow to keep up", cause=_TOO_SLOW)
        else:
            on_slow(ws)  # type: ignore[operator]
    return sent
