"""The HTTP vocabulary of the opening handshake: headers, request, response,
and the HTTP/1.1 heads that carry them.

:func:`serialize_head` writes every head we send. :func:`split_head` reads
the heads of ordinary handshakes, strictly; whatever it does not take (bodies,
folded lines, other versions, anything malformed) it leaves to h11, which the
protocol layer then uses to parse and answer it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TypeAlias

__all__ = ["Headers", "HeadersLike", "Request", "Response", "serialize_head", "split_head"]

# RFC 9110 5.1 and 5.5: a token, and a field value without its surrounding
# whitespace. Every pattern here is linear: no nested or adjacent repeats.
_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
#: Header names arrive in a few spellings only: decode each one once.
_names: dict[bytes, str] = {}


class Headers(Mapping[str, str]):
    """HTTP headers: names are case-insensitive, order and repeats are kept.

    ``headers[name]`` is the first value (``KeyError`` when missing),
    :meth:`get_all` returns every value, :meth:`raw_items` the wire pairs.
    """

    __slots__ = ("_items",)

    def __init__(self, items: HeadersLike | None = None) -> None:
        self._items: list[tuple[str, str]] = []
        if items is not None:
            if isinstance(items, Headers):
                pairs: Iterable[tuple[str, str]] = items.raw_items()
            elif isinstance(items, Mapping):
                pairs = items.items()
            else:
                pairs = items
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

    @property
    def status_code(self) -> int:
        """``status``, by websockets' name."""
        return self.status

    @property
    def reason_phrase(self) -> str:
        """``reason``, by websockets' name."""
        return self.reason


def serialize_head(start: str, headers: Iterable[tuple[str, str]]) -> bytes:
    """Return an HTTP/1.1 head: ``start`` (request or status line), headers,
    blank line. Raises ``ValueError`` for a header that cannot be sent as
    given (a name that is not a token, a value with CR, LF or NUL in it, or
    characters outside Latin-1): nothing is ever injected into the head."""
    raw_start = start.encode("latin-1")
    if not _VALUE.fullmatch(raw_start):
        raise ValueError(f"invalid start line: {start!r}")
    lines = [raw_start]
    for name, value in headers:
        raw_name = name.encode("latin-1")
        raw_value = value.encode("latin-1").strip(b" \t")
        if not _TOKEN.fullmatch(raw_name):
            raise ValueError(f"invalid header name: {name!r}")
        if not _VALUE.fullmatch(raw_value):
            raise ValueError(f"invalid value for header {name}: {value!r}")
        lines.append(raw_name + b": " + raw_value)
    lines.append(b"\r\n")
    return b"\r\n".join(lines)


def split_head(head: bytes, max_headers: int) -> tuple[bytes, list[tuple[str, str]]] | None:
    """Split a complete head (without its blank line) into its start line
    and its headers; ``None`` when it is not the plain, valid kind: a folded
    or malformed line, more than ``max_headers`` headers, or a body announced
    (Content-Length, Transfer-Encoding). The caller checks the start line."""
    lines = head.split(b"\r\n")
    if len(lines) > max_headers + 1:
        return None
    headers = []
    for line in lines[1:]:
        raw_name, colon, raw_value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(raw_name):
            return None  # no colon, whitespace before it, or a folded line
        raw_value = raw_value.strip(b" \t")
        if not _VALUE.fullmatch(raw_value):
            return None
        name = _names.get(raw_name)
        if name is None:
            name = raw_name.decode("latin-1")
            if len(_names) < 256 and len(raw_name) <= 64:
                _names[raw_name] = name
        lowered = name.lower()
        if lowered == "content-length" or lowered == "transfer-encoding":
            return None
        headers.append((name, raw_value.decode("latin-1")))
    return lines[0], headers
