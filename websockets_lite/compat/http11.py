"""websockets' HTTP messages (``websockets.http11``).

``Request`` is the core's :class:`~websockets_lite.Request` (``path``,
``headers``, ``method``). ``Response`` takes websockets' arguments,
``Response(status_code, reason_phrase, headers, body)``, and is a core
:class:`~websockets_lite.Response`, so ``process_request`` and
``process_response`` may return it.
"""

from __future__ import annotations

from ..client import USER_AGENT
from ..http import Request
from ..http import Response as _CoreResponse
from ..server import SERVER
from .datastructures import Headers, HeadersLike

__all__ = ["SERVER", "USER_AGENT", "Request", "Response"]


class Response(_CoreResponse):
    """An HTTP response, built as websockets builds it::

        Response(200, "OK", Headers([("Content-Type", "text/plain")]), b"OK\\n")

    ``headers`` becomes a :class:`~websockets_lite.compat.datastructures.Headers`
    (websockets' semantics); ``status_code`` and ``reason_phrase`` may be
    changed afterwards, as websockets allows.
    """

    __slots__ = ()

    def __init__(
        self,
        status_code: int,
        reason_phrase: str,
        headers: HeadersLike | None = None,
        body: bytes | bytearray = b"",
    ) -> None:
        compat_headers = headers if isinstance(headers, Headers) else Headers(
            *(() if headers is None else (headers,))
        )
        super().__init__(int(status_code), compat_headers, bytes(body), reason_phrase)

    @property
    def status_code(self) -> int:
        """The status (``status`` in the core)."""
        return self.status

    @status_code.setter
    def status_code(self, value: int) -> None:
        self.status = int(value)

    @property
    def reason_phrase(self) -> str:
        """The reason (``reason`` in the core)."""
        return self.reason

    @reason_phrase.setter
    def reason_phrase(self, value: str) -> None:
        self.reason = value

    def __repr__(self) -> str:
        return (
            f"Response(status_code={self.status}, reason_phrase={self.reason!r}, "
            f"headers={self.headers!r}, body={self.body!r})"
        )
