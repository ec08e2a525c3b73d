"""websockets' connection states (``websockets.protocol``): the core's
:class:`~websockets_lite.State`, with the same names and values
(``CONNECTING``, ``OPEN``, ``CLOSING``, ``CLOSED``)."""

from __future__ import annotations

from ..protocol import State

__all__ = ["CLOSED", "CLOSING", "CONNECTING", "OPEN", "State"]

CONNECTING = State.CONNECTING
OPEN = State.OPEN
CLOSING = State.CLOSING
CLOSED = State.CLOSED
