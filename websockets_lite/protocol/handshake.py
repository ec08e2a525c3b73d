"""The opening handshake, both sides: requests and responses written and
parsed, ordinary heads by our own parser and everything else by h11.

:class:`Handshake` holds the handshake half of
:class:`~websockets_lite.protocol.Protocol`'s methods; the state they share
is declared here and created by ``Protocol.__init__``.
"""

from __future__ import annotations

import base64
import re
import sys
from collections.abc import Sequence
from http import HTTPStatus

import h11
from wsproto.utilities import generate_accept_token, generate_nonce

from ..exceptions import (
    InvalidHeader,
    InvalidMessage,
    InvalidStatus,
    InvalidUpgrade,
    NegotiationError,
    SecurityError,
)
from ..http import Headers, HeadersLike, Request, Response, serialize_head, split_head
from .deflate import Deflate
from .state import Side, State

__all__ = ["MAX_BODY_SIZE", "MAX_HANDSHAKE_SIZE", "MAX_HEADERS", "Handshake"]

#: Largest opening handshake head (request or response) and most headers in
#: it; a server answers a larger request with 431.
MAX_HANDSHAKE_SIZE = 16 * 1024
MAX_HEADERS = 128
#: Largest body of a rejection response that a client keeps.
MAX_BODY_SIZE = 64 * 1024

# Start lines that our own head parser takes (RFC 9112 3 and 4).
_REQUEST_LINE = re.compile(rb"([-!#$%&'*+.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP/1\.1")
_SWITCHING = re.compile(rb"HTTP/1\.1 101(?: ([\t\x20-\x7e\x80-\xff]*))?")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_BLANK_LINE = re.compile(rb"\n\r?\n")


def reason_phrase(status: int) -> str:
    """The standard reason phrase of ``status``, or ``""`` for an unknown one."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _closed_during_handshake() -> InvalidMessage:
    # EOFError as the cause marks it as transient: reconnecting may succeed.
    exc = InvalidMessage("connection closed during the opening handshake")
    exc.__cause__ = EOFError()
    return exc


class Handshake:
    """The opening handshake's methods of :class:`~websockets_lite.protocol.Protocol`."""

    # Created by Protocol.__init__; slots here, as a subclass cannot add them.
    __slots__ = (
        "_h11",
        "_h11_eof",
        "_head",
        "_nonce",
        "_offer",
        "_offered",
        "_out",
        "_reject_body",
        "_scan",
        "deflate",
        "handshake_exc",
        "request",
        "response",
        "side",
        "state",
        "subprotocol",
        "upgrade_error",
    )

    side: Side
    state: State
    request: Request | None
    response: Response | None
    subprotocol: str | None
    upgrade_error: Response | None
    handshake_exc: Exception | None
    deflate: Deflate | None
    _offer: Deflate | None
    _h11: h11.Connection | None
    _h11_eof: bool
    _head: bytearray | None
    _scan: int
    _nonce: bytes
    _offered: Sequence[str]
    _reject_body: bytearray | None
    _out: list[bytes]

    def _open(self, trailing: bytes) -> None:
        raise NotImplementedError  # the handshake succeeded: the frame layer takes over

    # Opening handshake, client side.

    def send_request(
        self,
        host: str,
        path: str,
        *,
        subprotocols: Sequence[str] = (),
        headers: HeadersLike | None = None,
    ) -> bytes:
        """Return the opening handshake request to write."""
        assert self._h11 is not None and self.side is Side.CLIENT
        self._nonce = generate_nonce()
        self._offered = list(subprotocols)
        request_headers = Headers(
            [
                ("Host", host),
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", self._nonce.decode()),
                ("Sec-WebSocket-Version", "13"),
            ]
        )
        if subprotocols:
            request_headers.add("Sec-WebSocket-Protocol", ", ".join(subprotocols))
        if self._offer is not None:
            request_headers.add(
                "Sec-WebSocket-Extensions", f"{Deflate.name}; {self._offer.offer()}"
            )
        for name, value in Headers(headers).raw_items():
            request_headers.add(name, value)
        if not _TARGET.fullmatch(path.encode("latin-1", "replace")):
            raise ValueError(f"invalid request path: {path!r}")
        data = serialize_head(f"GET {path} HTTP/1.1", request_headers.raw_items())
        self.request = Request(path, request_headers)
        return data

    def _client_handshake_event(self, event: object) -> None:
        assert self._h11 is not None
        if isinstance(event, h11.InformationalResponse):
            if event.status_code == 101:
                if _too_large(event):
                    self._fail_handshake(SecurityError("response headers too large"))
                else:
                    trailing = self._h11.trailing_data[0]
                    self._accept_response(_headers(event), _reason(event), trailing)
        elif isinstance(event, h11.Response):
            self.response = Response(event.status_code, _headers(event), reason=_reason(event))
            self._reject_body = bytearray()
        elif isinstance(event, h11.Data) and self._reject_body is not None:
            self._reject_body += event.data[: MAX_BODY_SIZE - len(self._reject_body)]
            if len(self._reject_body) >= MAX_BODY_SIZE:
                self._finish_rejection()
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            if self.response is not None:
                self._finish_rejection()
            else:
                self._fail_handshake(_closed_during_handshake())

    def _accept_response(self, headers: Headers, reason: str, trailing: bytes) -> None:
        self.response = Response(101, headers, reason=reason)
        try:
            if not _has_token(headers, "Upgrade", "websocket"):
                raise InvalidUpgrade("Upgrade", headers.get("Upgrade"), "expected websocket")
            if not _has_token(headers, "Connection", "upgrade"):
                raise InvalidUpgrade("Connection", headers.get("Connection"), "expected Upgrade")
            if headers.get("Sec-WebSocket-Accept") != generate_accept_token(self._nonce).decode():
                raise InvalidHeader(
                    "Sec-WebSocket-Accept", headers.get("Sec-WebSocket-Accept"), "wrong key"
                )
            subprotocol = headers.get("Sec-WebSocket-Protocol")
            if subprotocol is not None and subprotocol not in self._offered:
                raise NegotiationError(f"server chose a subprotocol not offered: {subprotocol}")
            for name, params in _parse_extensions(headers):
                if name != Deflate.name or self._offer is None or self.deflate is not None:
                    raise NegotiationError(f"server accepted an extension not offered: {name}")
                try:
                    self._offer.finalize(params)
                except ValueError as exc:
                    raise NegotiationError(f"invalid permessage-deflate response: {exc}") from None
                self.deflate = self._offer
        except (InvalidHeader, NegotiationError) as exc:
            self._fail_handshake(exc)
            return
        self.subprotocol = subprotocol
        self._open(trailing)

    def _finish_rejection(self) -> None:
        assert self.response is not None and self._reject_body is not None
        self.response.body = bytes(self._reject_body)
        self._fail_handshake(
            InvalidStatus(self.response.status, self.response.headers, self.response.body)
        )

    # Opening handshake, server side.

    def _server_handshake_event(self, event: object) -> Request | None:
        if isinstance(event, h11.Request):
            if _too_large(event):
                # h11 bounds only heads that are still incomplete.
                self._fail_handshake(
                    SecurityError("request headers too large"),
                    Response(431, body="Request headers too large.\n"),
                )
                return None
            self.request = Request(
                event.target.decode("latin-1"), _headers(event), event.method.decode("latin-1")
            )
            self.upgrade_error = _check_upgrade(self.request, event.http_version)
            return self.request
        if isinstance(event, h11.ConnectionClosed):
            self._fail_handshake(_closed_during_handshake())
        return None

    def accept(self, subprotocol: str | None = None, headers: HeadersLike | None = None) -> bytes:
        """Accept the opening handshake; return the 101 response to write."""
        return self.send_accept(self.prepare_accept(subprotocol, headers))

    def prepare_accept(
        self, subprotocol: str | None = None, headers: HeadersLike | None = None
    ) -> Response:
        """Build the 101 response (negotiating permessage-deflate), to be
        changed or replaced before :meth:`send_accept` (or :meth:`reject`)."""
        assert self._h11 is not None and self.request is not None
        assert self.upgrade_error is None, "cannot accept an invalid upgrade request"
        key = self.request.headers["Sec-WebSocket-Key"].encode("latin-1")
        response_headers = Headers(
            [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", generate_accept_token(key).decode()),
            ]
        )
        if subprotocol is not None:
            response_headers.add("Sec-WebSocket-Protocol", subprotocol)
        if self._offer is not None:
            # The first acceptable offer wins (RFC 7692 5).
            for name, params in _parse_extensions(self.request.headers):
                accepted = self._offer.accept(params) if name == Deflate.name else None
                if accepted is not None:
                    response_headers.add(
                        "Sec-WebSocket-Extensions", f"{Deflate.name}; {accepted}".rstrip("; ")
                    )
                    self.deflate = self._offer
                    break
        for name, value in Headers(headers).raw_items():
            response_headers.add(name, value)
        return Response(101, response_headers, reason="Switching Protocols")

    def send_accept(self, response: Response) -> bytes:
        """Write the 101 ``response`` and open the connection; what it says of
        the subprotocol and of permessage-deflate is what applies."""
        assert self._h11 is not None and response.status == 101
        headers = response.headers
        if self.deflate is not None and not any(
            name == Deflate.name for name, _ in _parse_extensions(headers)
        ):
            self.deflate = None  # removed from the response: not in use
        reason = response.reason or "Switching Protocols"
        data = serialize_head(f"HTTP/1.1 101 {reason}", headers.raw_items())
        self.response = Response(101, headers, reason=reason)
        self.subprotocol = headers.get("Sec-WebSocket-Protocol")
        self._open(self._trailing())
        return data

    def reject(self, response: Response) -> bytes:
        """Answer the request with ``response`` instead of upgrading; return the
        bytes to write, after which the server closes the TCP connection."""
        assert self._h11 is not None and self.state is State.CONNECTING
        headers = Headers(response.headers)
        headers["Content-Length"] = str(len(response.body))
        headers["Connection"] = "close"
        if not 200 <= response.status <= 999:
            raise ValueError(f"cannot answer a handshake with status {response.status}")
        reason = response.reason or reason_phrase(response.status)
        start = f"HTTP/1.1 {response.status} {reason}"
        data = serialize_head(start, headers.raw_items())
        if self.request is None or self.request.method != "HEAD":  # RFC 9110 9.3.2
            data += response.body
        self.response = Response(response.status, headers, response.body, reason)
        self.state = State.CLOSED
        self._h11 = None
        return data

    def _trailing(self) -> bytes:
        # What the peer sent after the handshake's head: its first frames.
        if self._head is not None:
            trailing, self._head = bytes(self._head), None
            return trailing
        assert self._h11 is not None
        return self._h11.trailing_data[0]

    def _fail_handshake(self, exc: Exception, answer: Response | None = None) -> None:
        self.handshake_exc = exc
        if answer is not None and self.side is Side.SERVER:
            self._out.append(self.reject(answer))
        self.state = State.CLOSED
        self._h11 = None

    def _fast_handshake_event(self) -> bool:
        """Parse an ordinary handshake head ourselves; return whether it was
        taken (or more bytes are needed). Anything else, rejections and
        malformed or oversized heads included, goes to h11, several times
        slower, which produces the answers and errors it always did."""
        head = self._head
        assert head is not None and self._h11 is not None
        # Where h11 would see the head end, so that both parsers agree on it.
        blank = _BLANK_LINE.search(head, self._scan, MAX_HANDSHAKE_SIZE + 4)
        if blank is None:
            self._scan = max(0, len(head) - 2)  # a slow sender costs no rescans
            # h11 answers at once a head that cannot be HTTP (like TLS bytes).
            hopeless = len(head) > 0 and head[0] < 0x21
            if len(head) <= MAX_HANDSHAKE_SIZE and not self._h11_eof and not hopeless:
                return True  # more bytes needed
        elif blank.start() > 0 and head[blank.start() - 1 : blank.end()] == b"\r\n\r\n":
            end = blank.start() - 1  # else a bare LF ends a line: h11's to parse
            parsed = split_head(bytes(head[:end]), MAX_HEADERS)
            if parsed is not None:
                if self.side is Side.SERVER:
                    taken = self._take_request(*parsed)
                else:
                    taken = self._take_response(*parsed, trailing=bytes(head[end + 4 :]))
                if taken:
                    if self._head is not None:
                        del head[: end + 4]  # what remains waits for accept()
                    return True
        self._to_h11()
        return False

    def _take_request(self, start: bytes, pairs: list[tuple[str, str]]) -> bool:
        match = _REQUEST_LINE.fullmatch(start)
        headers = Headers(pairs)
        if match is None or len(headers.get_all("Host")) != 1:
            return False  # h11 answers 400 for a missing or repeated Host
        method, target = match.groups()
        self.request = Request(target.decode("latin-1"), headers, method.decode("latin-1"))
        self.upgrade_error = _check_upgrade(self.request, b"1.1")
        return True

    def _take_response(self, start: bytes, pairs: list[tuple[str, str]], trailing: bytes) -> bool:
        match = _SWITCHING.fullmatch(start)
        if match is None:
            return False  # a rejection: h11 reads its body
        self._head = None
        self._accept_response(Headers(pairs), (match.group(1) or b"").decode("latin-1"), trailing)
        return True

    def _to_h11(self) -> None:
        """Hand the handshake over to h11, with the bytes received so far."""
        head, self._head = self._head, None
        assert head is not None and self._h11 is not None
        if self.side is Side.CLIENT and self.request is not None:
            # Replay the request, sent without h11, so that h11 expects a response.
            items = self.request.headers.raw_items()
            self._h11.send(
                h11.Request(
                    method="GET",
                    target=self.request.path,
                    headers=[(name, value.strip(" \t")) for name, value in items],
                )
            )
        if head:
            self._h11.receive_data(bytes(head))  # b"" would mean EOF to h11
        if self._h11_eof:
            self._h11.receive_data(b"")

    def _next_handshake_event(self) -> Request | None:
        if self._head is not None:
            if self.side is Side.SERVER and self.request is not None:
                return None  # taken: the bytes wait for accept() or reject()
            if self._fast_handshake_event():
                return self.request if self.side is Side.SERVER else None
        while self._h11 is not None:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                if self._h11.their_state is h11.ERROR and self._h11_eof:
                    error = _closed_during_handshake()
                else:
                    error = InvalidMessage(f"invalid HTTP: {exc}")
                status = exc.error_status_hint
                # The details (h11's words) go to the log through the error;
                # the client gets a plain sentence.
                text = "Request headers too large." if status == 431 else "Malformed HTTP request."
                self._fail_handshake(error, Response(status, body=text + "\n"))
                return None
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return None
            if self.side is Side.SERVER:
                request = self._server_handshake_event(event)
                if request is not None:
                    return request
            else:
                self._client_handshake_event(event)
        return None


def _parse_extensions(headers: Headers) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Parse Sec-WebSocket-Extensions: ``[(name, [(param, value or None)])]``."""
    result = []
    for value in headers.get_all("Sec-WebSocket-Extensions"):
        for item in value.split(","):
            name, *params = (part.strip() for part in item.split(";"))
            if not name:
                continue
            parsed: list[tuple[str, str | None]] = []
            for param in params:
                key, sep, val = param.partition("=")
                parsed.append((key.strip(), val.strip().strip('"') if sep else None))
            result.append((name, parsed))
    return result


def _headers(event: h11.Request | h11.Response | h11.InformationalResponse) -> Headers:
    # Names are interned: every connection's request repeats the same ones.
    return Headers(
        (sys.intern(name.decode("latin-1")), value.decode("latin-1"))
        for name, value in event.headers.raw_items()
    )


def _too_large(event: h11.Request | h11.InformationalResponse) -> bool:
    raw = event.headers.raw_items()
    size = sum(len(name) + len(value) + 4 for name, value in raw)
    return len(raw) > MAX_HEADERS or size > MAX_HANDSHAKE_SIZE


def _reason(event: h11.Response | h11.InformationalResponse) -> str:
    return event.reason.decode("latin-1")


def _has_token(headers: Headers, name: str, token: str) -> bool:
    return any(
        item.strip().lower() == token
        for value in headers.get_all(name)
        for item in value.split(",")
    )


def _check_upgrade(request: Request, http_version: bytes) -> Response | None:
    """Return the answer to ``request`` if it is not a valid WebSocket upgrade
    (RFC 6455 4.2.1), else ``None``."""
    headers = request.headers
    if not _has_token(headers, "Upgrade", "websocket") or not _has_token(
        headers, "Connection", "upgrade"
    ):
        return Response(
            426,
            [("Upgrade", "websocket"), ("Connection", "Upgrade")],
            "This endpoint speaks WebSocket only: missing 'Upgrade: websocket'.\n",
        )
    if request.method != "GET":
        return Response(405, [("Allow", "GET")], "A WebSocket handshake must use GET.\n")
    if http_version != b"1.1":
        return Response(400, body="A WebSocket handshake needs HTTP/1.1.\n")
    if headers.get("Sec-WebSocket-Version") != "13":
        return Response(
            426,
            [("Sec-WebSocket-Version", "13")],
            "Unsupported Sec-WebSocket-Version: 13 is required.\n",
        )
    try:
        key = base64.b64decode(headers.get("Sec-WebSocket-Key", ""), validate=True)
    except ValueError:  # binascii.Error, or a value that is not ASCII
        key = b""
    if len(key) != 16:
        return Response(400, body="Missing or invalid Sec-WebSocket-Key.\n")
    return None
