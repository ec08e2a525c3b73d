"""Positions in a topic's history, and the rule that says whether a gap can
be filled from it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TypeAlias

from ..typing import Data

__all__ = ["Entry", "Formatter", "Position", "covers"]


@dataclasses.dataclass(frozen=True, slots=True)
class Position:
    """Where a publication sits on its topic.

    ``offset`` counts the publications on the topic, 1, 2, 3..., across
    every publishing process. ``epoch`` names one history stream: it changes
    whenever that history is lost (Redis restarted without persistence, the
    topic's keys expired, a :class:`MemoryBackend` created anew), so that a
    position from an old stream is never mistaken for one of the new.

    ``str(position)`` is ``"epoch:offset"``, and :meth:`parse` reads it back:
    the form to hand to a browser and get back on reconnection.
    """

    epoch: str
    offset: int

    def __str__(self) -> str:
        return f"{self.epoch}:{self.offset}"

    @classmethod
    def parse(cls, text: str) -> Position:
        """Read ``"epoch:offset"``; ``ValueError`` when it is not one."""
        epoch, sep, offset = text.rpartition(":")
        if not sep or not epoch or not offset.isdigit() or len(text) > 200:
            raise ValueError(f"not a position: {text!r}")
        return cls(epoch, int(offset))


#: One publication from a topic's history.
Entry: TypeAlias = tuple[Position, Data]

#: ``formatter(topic, position, message)`` turns each delivered message into
#: what the subscriber is sent, for example a JSON object that carries the
#: position, so that a client can resume from it.
Formatter: TypeAlias = Callable[[str, Position, Data], Data]


def covers(since: Position, latest: Position | None, entries: list[Entry]) -> bool:
    """Whether the history read after ``since`` fills the gap from it: same
    epoch, and either nothing was published since, or the entries start
    right after it (nothing was trimmed in between)."""
    if latest is None or latest.epoch != since.epoch or since.offset > latest.offset:
        return False
    if since.offset == latest.offset:
        return True
    return bool(entries) and entries[0][0] == Position(since.epoch, since.offset + 1)
