"""Public type aliases used across the API."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from typing import TypeAlias

__all__ = ["BytesLike", "Data", "DataLike", "Fragments"]

#: A binary payload that :meth:`~websockets_lite.Connection.send` accepts.
BytesLike: TypeAlias = bytes | bytearray | memoryview

#: A message as :meth:`~websockets_lite.Connection.recv` returns it: text is
#: ``str``, binary is ``bytes``.
Data: TypeAlias = str | bytes

#: A complete message as :meth:`~websockets_lite.Connection.send` accepts it.
DataLike: TypeAlias = str | BytesLike

#: One fragmented message: every fragment is sent as one frame; all fragments
#: are text or all are binary.
Fragments: TypeAlias = Iterable[DataLike] | AsyncIterable[DataLike]
