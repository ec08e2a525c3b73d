"""websockets' close vocabulary (``websockets.frames``): the core's
:class:`~websockets_lite.CloseCode` (same names and values) and
:class:`~websockets_lite.Close` (``code``, ``reason``)."""

from __future__ import annotations

from ..close import OK_CLOSE_CODES, Close, CloseCode

__all__ = ["OK_CLOSE_CODES", "Close", "CloseCode"]
