"""websockets' type aliases (``websockets.typing``)."""

from __future__ import annotations

import http
import logging
from typing import Any, TypeAlias

from ..typing import BytesLike, Data, DataLike

__all__ = ["BytesLike", "Data", "DataLike", "LoggerLike", "Origin", "StatusLike", "Subprotocol"]

#: A logger, or an adapter of one.
LoggerLike: TypeAlias = logging.Logger | logging.LoggerAdapter[Any]
#: An HTTP status: an ``int`` or an :class:`http.HTTPStatus`.
StatusLike: TypeAlias = http.HTTPStatus | int
#: The value of an ``Origin`` header.
Origin: TypeAlias = str
#: A subprotocol name.
Subprotocol: TypeAlias = str
