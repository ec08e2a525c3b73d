"""websockets' reconnection policy (``websockets.client``): the default
``process_exception`` (the core's, with websockets' contract) and the
default ``reconnect_delays``, :func:`backoff`.

websockets' ``ClientProtocol`` (its Sans-I/O client) has no counterpart
here: the core's :class:`~websockets_lite.ClientProtocol` is an asyncio
connection, not a Sans-I/O object.
"""

from __future__ import annotations

import os
import random
from collections.abc import Generator

from ..client import process_exception

__all__ = ["backoff", "process_exception"]


def _setting(name: str, default: float) -> float:
    # websockets reads its backoff settings from the environment: so do we.
    return float(os.environ.get(f"WEBSOCKETS_BACKOFF_{name}", default))


def backoff(
    initial_delay: float | None = None,
    min_delay: float | None = None,
    max_delay: float | None = None,
    factor: float | None = None,
) -> Generator[float]:
    """Delays between reconnection attempts, as websockets draws them: a
    random delay up to ``initial_delay`` (5 s) first, then ``min_delay``
    (3.1 s) growing by ``factor`` (1.618) up to ``max_delay`` (90 s).
    The defaults come from the ``WEBSOCKETS_BACKOFF_INITIAL_DELAY``,
    ``..._MIN_DELAY``, ``..._MAX_DELAY`` and ``..._FACTOR`` environment
    variables when they are set, as in websockets."""
    initial = _setting("INITIAL_DELAY", 5) if initial_delay is None else initial_delay
    delay = _setting("MIN_DELAY", 3.1) if min_delay is None else min_delay
    maximum = _setting("MAX_DELAY", 90) if max_delay is None else max_delay
    growth = _setting("FACTOR", 1.618) if factor is None else factor
    yield random.random() * initial
    while delay < maximum:
        yield delay
        delay *= growth
    while True:
        yield maximum
