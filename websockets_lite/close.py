"""The vocabulary of closing: close codes and the content of a close frame."""

from __future__ import annotations

import dataclasses
import enum

__all__ = ["MAX_CLOSE_REASON", "OK_CLOSE_CODES", "Close", "CloseCode", "check_close"]

#: Longest close reason that fits in a close frame (125 - 2 bytes of code).
MAX_CLOSE_REASON = 123


class CloseCode(enum.IntEnum):
    """Close codes of RFC 6455 section 7.4.1 and the IANA registry."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005  # never sent on the wire
    ABNORMAL_CLOSURE = 1006  # never sent on the wire
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015  # never sent on the wire


#: Codes that end a connection normally: ``async for`` stops quietly on them
#: and :class:`~websockets_lite.ConnectionClosedOK` is raised for them.
OK_CLOSE_CODES = frozenset(
    {CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY, CloseCode.NO_STATUS_RCVD}
)

_EXPLANATIONS = {
    1000: "OK",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status received",
    1006: "connection closed abnormally",
    1007: "invalid data",
    1008: "policy violation",
    1009: "message too big",
    1010: "extension required",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS handshake failure",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Close:
    """The code and reason of a close frame, sent or received."""

    code: int
    reason: str = ""

    def __str__(self) -> str:
        if 3000 <= self.code < 4000:
            explanation = "registered"
        elif 4000 <= self.code < 5000:
            explanation = "private use"
        else:
            explanation = _EXPLANATIONS.get(self.code, "unknown")
        text = f"{self.code} ({explanation})"
        return f"{text} {self.reason}" if self.reason else text


def valid_close_code(code: int) -> bool:
    """Whether ``code`` may be sent in a close frame."""
    # RFC 6455 7.4: 1004-1006 and 1015 are reserved or local-only; 1016-2999
    # are for future RFCs; 3000-4999 are for libraries and applications.
    return code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014 or 3000 <= code <= 4999


def check_close(code: int, reason: str) -> None:
    """Raise ``ValueError`` (or ``TypeError``) unless ``code`` and ``reason``
    can be sent in a close frame: a code of RFC 6455 7.4 that is not reserved
    for local use, a reason of at most 123 bytes in UTF-8."""
    if isinstance(code, bool) or not isinstance(code, int):
        raise TypeError(f"close code must be an int, not {type(code).__name__}")
    if not isinstance(reason, str):
        raise TypeError(f"close reason must be a str, not {type(reason).__name__}")
    if not valid_close_code(code):
        raise ValueError(f"invalid close code: {code}")
    if len(reason.encode()) > MAX_CLOSE_REASON:
        raise ValueError(f"close reason over {MAX_CLOSE_REASON} bytes")
