"""The HTTP vocabulary of the opening handshake: headers, request, response."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from typing import TypeAlias

__all__ = ["Headers", "HeadersLike", "Request", "Response"]


class Headers(Mapping[str, str]):
    """HTTP headers: names are case-insensitive, order and repeats are kept.

    ``headers[name]`` is the first value (``KeyError`` when missing),
    :meth:`get_all` returns every value, :meth:`raw_items` the wire pairs.
    """

    __slots__ = ("_items",)

    def __init__(self, items: HeadersLike | None = None) -> None:
        self._items: list[tuple[str, str]] = []
        if items is not None:
            pairs = items.items() if isinstance(items, Mapping) else items
            for name, value in pairs:
                self.add(name, value)

    def add(self, name: str, value: str) -> None:
        """Append one header, keeping any earlier value of the same name."""
        self._items.append((name, value))

    def __setitem__(self, name: str, value: str) -> None:
        """Replace every value of ``name`` with ``value``."""
        del self[name]
        self.add(name, value)

    def __delitem__(self, name: str) -> None:
        key = name.lower()
        self._items = [item for item in self._items if item[0].lower() != key]

    def __getitem__(self, name: str) -> str:
        key = name.lower()
        for item_name, value in self._items:
            if item_name.lower() == key:
                return value
        raise KeyError(name)

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, in order."""
        key = name.lower()
        return [value for item_name, value in self._items if item_name.lower() == key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.get_all(name))

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for name, _ in self._items:
            if name.lower() not in seen:
                seen.add(name.lower())
                yield name

    def __len__(self) -> int:
        return len({name.lower() for name, _ in self._items})

    def raw_items(self) -> list[tuple[str, str]]:
        """Every (name, value) pair, repeats included, in order."""
        return list(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._items == other._items
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


#: What the API accepts where headers are expected.
HeadersLike: TypeAlias = Headers | Mapping[str, str] | Iterable[tuple[str, str]]


@dataclasses.dataclass(slots=True)
class Request:
    """The HTTP request of an opening handshake (or a plain HTTP request)."""

    path: str
    headers: Headers
    method: str = "GET"


@dataclasses.dataclass(slots=True, init=False)
class Response:
    """An HTTP response: the server's 101, a rejection, or an answer to a plain
    HTTP request returned by ``process_request``.

    ``headers`` may be any :data:`HeadersLike`; a ``str`` body is encoded as
    UTF-8 and gets ``Content-Type: text/plain; charset=utf-8`` unless a
    content type is given.
    """

    status: int
    headers: Headers = dataclasses.field(default_factory=Headers)
    body: bytes = b""
    reason: str = ""

    def __init__(
        self,
        status: int,
        headers: HeadersLike | None = None,
        body: bytes | str = b"",
        reason: str = "",
    ) -> None:
        self.status = status
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        if isinstance(body, str):
            body = body.encode()
            if "Content-Type" not in self.headers:
                self.headers["Content-Type"] = "text/plain; charset=utf-8"
        self.body = body
        self.reason = reason
