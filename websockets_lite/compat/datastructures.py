"""websockets' :class:`Headers` (``websockets.datastructures``).

A subclass of the core's :class:`~websockets_lite.Headers` with websockets'
``MutableMapping`` semantics: ``headers[name] = value`` *appends* a value,
``headers[name]`` raises :exc:`MultipleValuesError` when the name has
several values, and names iterate lowercased. Anything that takes the core's
``Headers`` takes this one (through :meth:`raw_items`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any, Protocol, TypeAlias

from ..http import Headers as _CoreHeaders
from .exceptions import InvalidHeaderValue

__all__ = ["Headers", "HeadersLike", "MultipleValuesError"]

# What a header value may hold (RFC 9110 5.5): no CR, LF or NUL.
_valid_value = re.compile(r"[\t\x20-\x7e\x80-\xff]*").fullmatch


class MultipleValuesError(LookupError):
    """``headers[name]`` for a name that has more than one value: use
    :meth:`Headers.get_all`."""

    def __str__(self) -> str:
        # As KeyError shows its key.
        if len(self.args) == 1:
            return repr(self.args[0])
        return super().__str__()


class SupportsKeysAndGetItem(Protocol):
    """A dict-like object: ``keys()`` and ``[]``."""

    def keys(self) -> Iterable[str]: ...

    def __getitem__(self, key: str) -> str: ...


#: What websockets accepts where headers are expected.
HeadersLike: TypeAlias = (
    _CoreHeaders | Mapping[str, str] | Iterable[tuple[str, str]] | SupportsKeysAndGetItem
)


class Headers(_CoreHeaders, MutableMapping[str, str]):
    """HTTP headers as websockets has them.

    - ``headers[name]``: the value; ``KeyError`` when there is none,
      :exc:`MultipleValuesError` when there are several;
    - ``headers[name] = value``: adds a value (``InvalidHeaderValue`` for a
      value with CR, LF or NUL);
    - ``del headers[name]``: removes every value (``KeyError`` when none);
    - :meth:`get_all` and :meth:`raw_items` handle repeated names.

    Names compare case-insensitively and iterate lowercased; two ``Headers``
    are equal when they hold the same values under the same names.
    """

    __slots__ = ()

    def __init__(self, *args: HeadersLike, **kwargs: str) -> None:
        super().__init__()
        self.update(*args, **kwargs)

    def __str__(self) -> str:
        return "".join(f"{name}: {value}\r\n" for name, value in self._items) + "\r\n"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._items!r})"

    def copy(self) -> Headers:
        """A copy (of the same class)."""
        copy = type(self)()
        copy._items = list(self._items)
        return copy

    def serialize(self) -> bytes:
        """The header lines and the blank line, as sent (ISO-8859-1)."""
        return str(self).encode("iso-8859-1")

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for name, _ in self._items:
            key = name.lower()
            if key not in seen:
                seen.add(key)
                yield key

    def __getitem__(self, name: str) -> str:
        values = self.get_all(name)
        if not values:
            raise KeyError(name)
        if len(values) > 1:
            raise MultipleValuesError(name)
        return values[0]

    def __setitem__(self, name: str, value: str) -> None:
        if not _valid_value(str(value)):
            raise InvalidHeaderValue(name, value)
        self.add(name, value)

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        super().__delitem__(name)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _CoreHeaders):
            return NotImplemented
        return _by_name(self) == _by_name(other)

    __hash__ = None  # type: ignore[assignment]

    def clear(self) -> None:
        """Remove every header."""
        self._items = []

    def update(self, *args: Any, **kwargs: str) -> None:
        """Add the headers of the argument (a ``Headers``, with its repeated
        names, a mapping, or ``(name, value)`` pairs), then ``kwargs``."""
        super().update(
            *(arg.raw_items() if isinstance(arg, _CoreHeaders) else arg for arg in args),
            **kwargs,
        )

    def set_insecure(self, name: str, value: str) -> None:
        """Add a value without checking it."""
        self.add(name, value)


def _by_name(headers: _CoreHeaders) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in headers.raw_items():
        grouped.setdefault(name.lower(), []).append(value)
    return grouped
