"""The settings of a connection, checked once where they are given.

:class:`Options` holds the limits, timeouts and keepalive of a connection.
:func:`~websockets_lite.connect` and :func:`~websockets_lite.serve` build one
when they are called, so that a wrong value raises ``ValueError`` or
``TypeError`` naming the parameter right there, not later inside a callback;
a server shares its one object with every connection. ``None`` disables a
limit or a timeout, the same as ``math.inf``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

__all__ = ["DEFAULTS", "LOW_LEVEL", "Options", "check_strings"]

#: Compression methods that may be negotiated.
COMPRESSIONS = (None, "deflate")


def _number(name: str, value: Any, *, zero: bool = False, integral: bool = False) -> float:
    """``value`` as a float, ``math.inf`` for ``None``; ``TypeError`` when it
    is not a number, ``ValueError`` when it is negative, NaN, or zero where
    zero means nothing (``zero=False``)."""
    if value is None:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number or None, not {type(value).__name__}")
    if math.isnan(value) or value < 0 or (value == 0 and not zero):
        bound = ">= 0" if zero else "> 0"
        raise ValueError(f"{name} must be {bound} or None, not {value!r}")
    if integral and value != math.inf and value != int(value):
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    return math.inf if value == math.inf else value


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    """Limits, timeouts and keepalive of a connection (see :doc:`/topics/timeouts`
    and :doc:`/topics/backpressure`). Every value is checked when the object
    is built; ``None`` is stored as ``math.inf`` (disabled).

    ``message_queue_size`` and ``write_limit`` may be 0 (hand-off; wait until
    the write buffer is empty); ``disconnect_timeout`` may be 0 (abort right
    after the close frame). Other limits and timeouts must be positive.
    """

    compression: str | None = "deflate"
    max_message_size: float = 2**20
    max_fragments: float = 4096
    message_queue_size: float = 1
    write_limit: float = 2**16
    connect_timeout: float = 10
    disconnect_timeout: float = 10
    ping_interval: float = 20
    ping_timeout: float = 20

    def __post_init__(self) -> None:
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"compression must be 'deflate' or None, not {self.compression!r}")
        checks = {
            "max_message_size": {"integral": True},
            "max_fragments": {"integral": True},
            "message_queue_size": {"zero": True, "integral": True},
            "write_limit": {"zero": True, "integral": True},
            "connect_timeout": {},
            "disconnect_timeout": {"zero": True},
            "ping_interval": {},
            "ping_timeout": {},
        }
        for name, flags in checks.items():
            object.__setattr__(self, name, _number(name, getattr(self, name), **flags))

    @classmethod
    def build(cls, base: Options | None = None, **values: Any) -> Options:
        """Options from keyword arguments as the API takes them (``None``
        included), on top of ``base`` (default: :data:`DEFAULTS`)."""
        return dataclasses.replace(base or DEFAULTS, **values)

    def replace(self, **changes: Any) -> Options:
        """A copy with some settings changed, checked like the original."""
        return dataclasses.replace(self, **changes)


#: What connect() and serve() use unless told otherwise.
DEFAULTS = Options()
#: What the low-level protocols use: no timeouts, no keepalive.
LOW_LEVEL = Options(
    connect_timeout=math.inf,
    disconnect_timeout=math.inf,
    ping_interval=math.inf,
    ping_timeout=math.inf,
)


def check_strings(name: str, values: Iterable[Any] | None, *, allow_none: bool = False) -> None:
    """Refuse a lone string where a list of strings is expected (it would be
    taken as a list of characters), and items that are not strings."""
    if values is None:
        return
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{name} must be a list of strings, not a single {type(values).__name__}")
    for value in values:
        if not isinstance(value, str) and not (allow_none and value is None):
            raise TypeError(f"{name} must hold strings, not {type(value).__name__}")
