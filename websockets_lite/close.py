"""The vocabulary of closing: close codes and the content of a close frame."""

from __future__ import annotations

import dataclasses
import enum

__all__ = [
    "MAX_CLOSE_REASON", "OK_CLOSE_CODES", "Close", "CloseCause", "CloseCode", "check_close",
]

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


class CloseCause(enum.Enum):
    """Why a connection ended: :attr:`Connection.close_cause
    <websockets_lite.Connection.close_cause>` and ``ConnectionClosed.cause``.

    The value is a short name, usable as a metric label. Each says whose
    doing it was, so that "you were slow" and "the peer vanished" never look
    alike.
    """

    #: The peer closed with 1000 (or no code).
    PEER_NORMAL = "peer_normal"
    #: The peer closed with 1001: it is going away (page closed, server restart).
    PEER_GOING_AWAY = "peer_going_away"
    #: The peer closed with an error code.
    PEER_ERROR = "peer_error"
    #: The peer's keepalive gave up on us while our reading was paused because
    #: the application did not consume messages: our slowness, not the network.
    PEER_TIMEOUT_WHILE_PAUSED = "peer_timeout_while_paused"
    #: The application closed the connection (``close()``, handler returned or failed).
    APPLICATION = "application"
    #: The server shut down.
    SHUTDOWN = "shutdown"
    #: Our keepalive ping went unanswered: the peer or the network is gone.
    KEEPALIVE_TIMEOUT = "keepalive_timeout"
    #: Our keepalive ping went unanswered while our writes were stalled: the
    #: peer stopped reading.
    WRITE_STALLED = "write_stalled"
    #: The peer sent a message over ``max_message_size`` (1009).
    MESSAGE_TOO_BIG = "message_too_big"
    #: The peer broke the protocol (1002, 1003...).
    PROTOCOL_ERROR = "protocol_error"
    #: The peer sent text that is not UTF-8 (1007).
    INVALID_UTF8 = "invalid_utf8"
    #: The TCP connection ended (EOF or reset) without a closing handshake.
    LOST = "lost"
    #: The opening handshake took longer than ``connect_timeout``.
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    #: Closed with 1013 for being too slow: ``broadcast(on_slow="close")``, or
    #: a Hub subscriber whose missed messages left the history.
    TOO_SLOW = "too_slow"

    @classmethod
    def of_peer_close(cls, code: int) -> CloseCause:
        """The cause when the peer closed with ``code``."""
        if code == CloseCode.NORMAL_CLOSURE or code == CloseCode.NO_STATUS_RCVD:
            return cls.PEER_NORMAL
        if code == CloseCode.GOING_AWAY:
            return cls.PEER_GOING_AWAY
        return cls.PEER_ERROR
