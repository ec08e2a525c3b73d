"""The vocabulary of the sans-I/O protocol: which side we are, where the
connection is, and the events it emits besides messages."""

from __future__ import annotations

import dataclasses
import enum

__all__ = ["Fragment", "Pong", "Side", "State"]


class Side(enum.Enum):
    CLIENT = "client"
    SERVER = "server"


class State(enum.IntEnum):
    """Where the connection is; see the module docstring for ``CLOSED``."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


@dataclasses.dataclass(frozen=True, slots=True)
class Pong:
    """A pong frame received from the peer."""

    payload: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class Fragment:
    """A piece of a message being streamed (see ``Protocol.stream_next``):
    text as ``str`` (whole characters), binary as ``bytes``; ``last`` ends
    the message."""

    data: str | bytes
    last: bool
