"""Sans-I/O WebSocket protocol over wsproto: bytes in, messages and bytes out.

This is the only module that imports wsproto (and h11, on which wsproto's
handshake is built). It has no asyncio, no sockets and no clock. Two common
cases skip them for speed, and hand everything else to them: ordinary
handshake heads (see :func:`~websockets_lite.http.split_head`) and whole,
simple data frames (see :meth:`Protocol._simple_message`). Tests feed both
paths the same valid and broken input and require the same results. The
connection layer drives it:

- feed bytes with :meth:`Protocol.receive_data` and :meth:`Protocol.receive_eof`;
- pull events with :meth:`Protocol.next_event` until it returns ``None``;
  it parses lazily, so bytes that have not been pulled stay unparsed in
  wsproto's buffer (that is how read backpressure stalls the parser);
- write what the ``send_*`` methods return, then :meth:`Protocol.data_to_send`
  (pongs, close replies and handshake answers), then :attr:`Protocol.pong`
  when there is room: while the write buffer is full (the connection sets
  :attr:`Protocol.hold_pongs`), or once 16 KiB of pongs wait in one batch,
  only the latest pong is kept there;
- read :attr:`Protocol.state`: ``CLOSED`` means the TCP connection should end
  now (a server closes it, a client waits for the server to close it).

Events are complete messages (``str`` or ``bytes``), :class:`Pong`, and during
the opening handshake :class:`~websockets_lite.http.Request` (server side).
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import math
import os
import re
import struct
import sys
import zlib
from collections.abc import Iterator, Sequence

import h11
from wsproto.extensions import Extension
from wsproto.frame_protocol import (
    CloseReason,
    Frame,
    FrameDecoder,
    FrameProtocol,
    Opcode,
    ParseFailed,
    RsvBits,
)
from wsproto.utilities import generate_accept_token, generate_nonce

from .close import Close, CloseCode
from .exceptions import InvalidHandshake, InvalidStatus
from .http import Headers, HeadersLike, Request, Response, serialize_head, split_head

__all__ = [
    "Deflate",
    "encode_frame",
    "MAX_BODY_SIZE",
    "MAX_HANDSHAKE_SIZE",
    "Pong",
    "Protocol",
    "Side",
    "State",
]

#: Largest opening handshake head (request or response) and most headers in
#: it; a server answers a larger request with 431.
MAX_HANDSHAKE_SIZE = 16 * 1024
MAX_HEADERS = 128
#: Largest body of a rejection response that a client keeps.
MAX_BODY_SIZE = 64 * 1024
#: Longest close reason that fits in a close frame (125 - 2 bytes of code).
MAX_CLOSE_REASON = 123
#: Most bytes of automatic pongs queued between two calls of data_to_send();
#: beyond it pongs are held like while the write buffer is full.
MAX_PONG_BYTES = 16 * 1024


class Side(enum.Enum):
    CLIENT = "client"
    SERVER = "server"


class State(enum.IntEnum):
    """Where the connection is; see the module docstring for ``CLOSED``."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


@dataclasses.dataclass(frozen=True, slots=True)
class Pong:
    """A pong frame received from the peer."""

    payload: bytes


_pack_medium = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack
_XOR_TABLES = [bytes(a ^ b for a in range(256)) for b in range(256)]

try:  # an optional C accelerator: pip install websockets_lite[speedups]
    from wsaccel.xormask import XorMaskerSimple as _Accelerated  # type: ignore[import-untyped, import-not-found, unused-ignore]
except ImportError:  # pragma: no cover
    _Accelerated = None


def mask(payload: bytes | bytearray, key: bytes | bytearray) -> bytes:
    """XOR ``payload`` with the 4-byte ``key`` repeated (RFC 6455 5.3)."""
    size = len(payload)
    if size < 256:
        # Small payloads: one big-integer XOR beats every per-byte approach.
        if not size:
            return b""
        repeated = (key * ((size >> 2) + 1))[:size]
        xored = int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")
        return xored.to_bytes(size, "little")
    if _Accelerated is not None:
        return bytes(_Accelerated(bytes(key)).process(payload))
    # Larger payloads: one translate() per byte lane, about 500 MB/s.
    data = bytearray(payload)
    for lane in range(4):
        data[lane::4] = data[lane::4].translate(_XOR_TABLES[key[lane]])
    return bytes(data)


def frame(first: int, payload: bytes, masked: bool) -> bytes:
    """Serialize one frame: ``first`` is FIN, RSV and opcode; a client masks."""
    size = len(payload)
    if size < 126:
        header = bytes((first, size | 0x80)) if masked else bytes((first, size))
    elif size < 65536:
        header = _pack_medium(first, 126 | (0x80 if masked else 0), size)
    else:
        header = _pack_long(first, 127 | (0x80 if masked else 0), size)
    if not masked:
        return header + payload
    key = os.urandom(4)
    return header + key + mask(payload, key)


def encode_frame(message: str | bytes | bytearray | memoryview) -> bytes:
    """Frame a complete message as a server without compression sends it:
    unmasked, no extension bits. These bytes are the same for every such
    connection, so broadcast() builds them once."""
    if isinstance(message, str):
        return frame(0x81, message.encode(), False)
    return frame(0x82, bytes(message), False)


def _closed_during_handshake() -> InvalidHandshake:
    # EOFError as the cause marks it as transient: reconnecting may succeed.
    exc = InvalidHandshake("connection closed during the opening handshake")
    exc.__cause__ = EOFError()
    return exc


_TEXT, _BINARY, _PING, _PONG = Opcode.TEXT, Opcode.BINARY, Opcode.PING, Opcode.PONG
_CLOSED = State.CLOSED
# Start lines that our own head parser takes (RFC 9112 3 and 4).
_REQUEST_LINE = re.compile(rb"([-!#$%&'*+.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP/1\.1")
_SWITCHING = re.compile(rb"HTTP/1\.1 101(?: ([\t\x20-\x7e\x80-\xff]*))?")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_BLANK_LINE = re.compile(rb"\n\r?\n")


def _truncate(reason: str) -> str:
    """Cut a close reason to 123 bytes of UTF-8, on a character boundary."""
    encoded = reason.encode()
    if len(encoded) <= MAX_CLOSE_REASON:
        return reason
    return encoded[:MAX_CLOSE_REASON].decode(errors="ignore")


def _close(code: int, reason: str | None) -> Close:
    """A Close with our CloseCode where the code is a known one."""
    try:
        code = CloseCode(code)
    except ValueError:
        code = int(code)
    return Close(code, reason or "")


def _valid_close_code(code: int) -> bool:
    # RFC 6455 7.4: 1004-1006 and 1015 are reserved or local-only; 1016-2999
    # are for future RFCs; 3000-4999 are for libraries and applications.
    return code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014 or 3000 <= code <= 4999


class Protocol:
    """One WebSocket connection, client or server side, without I/O.

    ``max_message_size`` and ``max_fragments`` may be ``math.inf``.
    """

    # Slots: one of these lives as long as each connection.
    __slots__ = (
        "_decoder", "_discard_data", "_frames", "_h11", "_h11_eof", "_head", "_masked", "_nonce",
        "_offer", "_offered", "_out", "_own_framing", "_parser", "_partial", "_partial_text",
        "_pong_bytes", "_proto", "_reject_body", "_scan", "_unparsed", "close_rcvd",
        "close_rcvd_then_sent", "close_sent", "deflate", "handshake_exc", "hold_pongs",
        "max_fragments", "max_message_size", "opened", "peer_error", "pong", "request",
        "response", "side", "state", "subprotocol", "upgrade_error",
    )

    def __init__(
        self,
        side: Side,
        *,
        max_message_size: float = 2**20,
        max_fragments: float = 4096,
        compression: str | None = None,
    ) -> None:
        if compression not in (None, "deflate"):
            raise ValueError(f"unsupported compression: {compression!r}")
        self.side = side
        self.state = State.CONNECTING
        self.max_message_size = max_message_size
        self.max_fragments = max_fragments
        self.request: Request | None = None
        self.response: Response | None = None
        self.subprotocol: str | None = None
        #: The answer to a request that is not a valid WebSocket upgrade
        #: (server side), or ``None`` when it is valid.
        self.upgrade_error: Response | None = None
        #: Whether the opening handshake succeeded (it stays true once closed).
        self.opened = False
        #: Why the opening handshake failed, once it has.
        self.handshake_exc: Exception | None = None
        self.close_rcvd: Close | None = None
        self.close_sent: Close | None = None
        self.close_rcvd_then_sent: bool | None = None
        #: The close frame we sent because the peer broke a rule or a limit.
        self.peer_error: Close | None = None
        #: Set while the write buffer is over its limit: automatic pongs are
        #: then held in :attr:`pong`, the latest replacing older ones (RFC
        #: 6455 5.5.3 allows answering only the most recent ping).
        self.hold_pongs = False
        #: The latest automatic pong held back, to write once there is room.
        self.pong: bytes | None = None
        #: The permessage-deflate extension, once negotiated.
        self.deflate: Deflate | None = None
        self._offer = Deflate(side, max_message_size) if compression else None
        self._h11: h11.Connection | None = h11.Connection(
            h11.CLIENT if side is Side.CLIENT else h11.SERVER,
            max_incomplete_event_size=MAX_HANDSHAKE_SIZE,
        )
        self._h11_eof = False
        # The handshake's bytes while our own parser may still take them
        # (see _next_handshake_event); None once they go to h11 or it is over.
        self._head: bytearray | None = bytearray()
        self._scan = 0
        self._nonce = b""
        self._offered: Sequence[str] = ()
        self._reject_body: bytearray | None = None
        # wsproto's frame layer: parser, UTF-8 decoder, close validation and
        # extension hooks. Its Connection wrapper is not used: we keep the
        # state here, and parse errors come out as ParseFailed.
        self._proto: FrameProtocol | None = None
        self._parser: Iterator[Frame] | None = None
        self._out: list[bytes] = []
        self._pong_bytes = 0
        # The message being assembled, as UTF-8 bytes for text: its length is
        # the size that max_message_size bounds, with no per-fragment overhead.
        self._partial: bytearray | None = None
        self._partial_text = False
        self._frames = 0
        self._discard_data = False
        self._own_framing = False
        self._masked = side is Side.CLIENT
        # wsproto's buffer of bytes not parsed yet, when we can see it.
        self._unparsed: bytearray | None = None
        # wsproto's frame decoder, when simple frames may be parsed here.
        self._decoder: FrameDecoder | None = None

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
                    self._fail_handshake(InvalidHandshake("response headers too large"))
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
                raise InvalidHandshake("missing 'Upgrade: websocket' in the response")
            if not _has_token(headers, "Connection", "upgrade"):
                raise InvalidHandshake("missing 'Connection: Upgrade' in the response")
            if headers.get("Sec-WebSocket-Accept") != generate_accept_token(self._nonce).decode():
                raise InvalidHandshake("wrong Sec-WebSocket-Accept in the response")
            subprotocol = headers.get("Sec-WebSocket-Protocol")
            if subprotocol is not None and subprotocol not in self._offered:
                raise InvalidHandshake(f"server chose a subprotocol not offered: {subprotocol}")
            for name, params in _parse_extensions(headers):
                if name != Deflate.name or self._offer is None or self.deflate is not None:
                    raise InvalidHandshake(f"server accepted an extension not offered: {name}")
                try:
                    self._offer.finalize(params)
                except ValueError as exc:
                    raise InvalidHandshake(f"invalid permessage-deflate response: {exc}") from None
                self.deflate = self._offer
        except InvalidHandshake as exc:
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
                    InvalidHandshake("request headers too large"),
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
        data = serialize_head("HTTP/1.1 101 Switching Protocols", response_headers.raw_items())
        self.response = Response(101, response_headers, reason="Switching Protocols")
        self.subprotocol = subprotocol
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
        start = f"HTTP/1.1 {response.status} {response.reason}"
        data = serialize_head(start, headers.raw_items()) + response.body
        self.response = Response(response.status, headers, response.body, response.reason)
        self.state = State.CLOSED
        self._h11 = None
        return data

    # Both sides.

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

    def _open(self, trailing: bytes) -> None:
        extensions: list[Extension] = [self.deflate] if self.deflate else []
        self._proto = FrameProtocol(self.side is Side.CLIENT, extensions)
        decoder = getattr(self._proto, "_frame_decoder", None)
        self._unparsed = getattr(getattr(decoder, "buffer", None), "buffer", None)
        # Complete, unfragmented, uncompressed data frames that wait whole in
        # wsproto's buffer while its decoder is between frames are parsed
        # here (see _simple_message); everything else goes through wsproto.
        if (
            self.deflate is None
            and type(self._unparsed) is bytearray
            and getattr(decoder, "header", False) is None
        ):
            self._decoder = decoder
        self._offer = None
        # Complete uncompressed messages are framed here with struct and a
        # fast mask, not by wsproto: the same bytes, several times faster.
        self._own_framing = self.deflate is None
        self._masked = self.side is Side.CLIENT
        self._h11 = None
        self.opened = True
        self.state = State.OPEN
        if trailing:
            self.receive_data(trailing)

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes read from the network; then pull :meth:`next_event`."""
        if self._h11 is not None:
            if self._head is not None:
                self._head += data
            else:
                self._h11.receive_data(bytes(data))
        elif (
            self._proto is not None and self.state is not _CLOSED and self.close_rcvd is None
        ):
            unparsed = self._unparsed
            if self._decoder is not None and unparsed is not None:
                unparsed += data  # in place: what wsproto's receive_bytes() does, in one step
            else:
                self._proto.receive_bytes(data)  # type: ignore[arg-type]  # memoryview works
            if self._parser is None:
                self._parser = self._proto.received_frames()

    def receive_eof(self) -> None:
        """Tell that the peer closed its side of the TCP connection."""
        if self._h11 is not None:
            self._h11_eof = True
            if self._head is None:
                self._h11.receive_data(b"")
        else:
            self.state = State.CLOSED
            self._parser = None

    def lost(self) -> None:
        """Tell that the TCP connection is gone, whatever the state."""
        if self._h11 is not None:
            self.receive_eof()
            self.next_event()  # lets a rejection whose body ends at EOF complete
        if self.state is State.CONNECTING:
            self.handshake_exc = _closed_during_handshake()
        self._h11 = None
        self.state = State.CLOSED
        self._parser = None
        self._partial = None

    def next_event(self) -> str | bytes | Pong | Request | None:
        """Return the next event, or ``None`` when more bytes are needed."""
        if self._h11 is not None:
            request = self._next_handshake_event()
            if request is not None or self._h11 is not None:
                return request
        frames = self._parser
        if frames is None:
            return None
        decoder = self._decoder
        if (
            decoder is not None
            and decoder.header is None
            and self._partial is None
            and not self._discard_data
        ):
            message = self._simple_message()
            if message is not None:
                if not self._unparsed:
                    self._parser = None
                return message
        try:
            for frame_ in frames:
                opcode = frame_.opcode
                if opcode is _TEXT or opcode is _BINARY:
                    message = self._assemble(frame_)
                    if message is not None:
                        if not self._unparsed:
                            # Nothing left to parse: resuming the parser would
                            # only find that out, at the cost of a parse attempt.
                            self._parser = None
                        return message
                elif opcode is _PING:
                    self._on_ping(frame_.payload)  # type: ignore[arg-type]
                elif opcode is _PONG:
                    return Pong(bytes(frame_.payload))  # type: ignore[arg-type]
                else:
                    self._on_close(*frame_.payload)
        except ParseFailed as exc:
            # RFC 6455 7.1.7: fail the connection. Only our inflater says 1009.
            reason = str(exc)
            if exc.code == CloseReason.MESSAGE_TOO_BIG:
                reason = f"message over {self.max_message_size} bytes once decompressed"
            self.fail(exc.code, reason)
            self.peer_error = self.close_sent or _close(exc.code, _truncate(reason))
        self._parser = None
        return None

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

    def _simple_message(self) -> str | bytes | None:
        """Parse one whole message from wsproto's buffer, or return ``None``
        and leave the bytes to wsproto.

        Only the most common frame is taken: FIN set, no RSV bit, text or
        binary, masked as this side expects, shortest length encoding, under
        64 KiB, entirely buffered, within ``max_message_size`` and, for text,
        valid UTF-8. wsproto parses this frame about four times slower and
        would reach the same result; anything else (control frames, fragments,
        errors, partial frames) goes to wsproto, which then reports errors
        with the right close code.
        """
        buffer = self._unparsed
        assert buffer is not None
        size = len(buffer)
        if size < 2:
            return None
        first = buffer[0]
        if first != 0x81 and first != 0x82:
            return None
        second = buffer[1]
        masked = second & 0x80
        if (masked != 0) is self._masked:  # the peer masks if and only if we do not
            return None
        length = second & 0x7F
        start = 2
        if length == 126:
            if size < 4:
                return None
            length = (buffer[2] << 8) | buffer[3]
            if length < 126:
                return None
            start = 4
        elif length == 127:
            return None  # 64 KiB or more: the parser's cost is small per byte
        if masked:
            start += 4
        end = start + length
        if size < end or length > self.max_message_size:
            return None
        payload: bytes | bytearray = buffer[start:end]
        if masked:
            payload = mask(payload, buffer[start - 4 : start])
        if first == 0x81:
            try:
                message: str | bytes = payload.decode()
            except UnicodeDecodeError:
                return None
        else:
            message = bytes(payload)
        del buffer[:end]
        return message

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
                    error = InvalidHandshake(f"invalid HTTP: {exc}")
                status = exc.error_status_hint
                text = "Request headers too large" if status == 431 else f"Bad request: {exc}"
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

    def _assemble(self, event: Frame) -> str | bytes | None:
        if self._discard_data:
            return None
        data: str | bytes = event.payload  # type: ignore[assignment]  # str or bytes here
        if event.message_finished and self._partial is None:
            # The whole message arrived in one piece: the common, fast case.
            if isinstance(data, bytes) or data.isascii():
                size = len(data)
            else:
                size = len(data.encode())
            if size > self.max_message_size:
                self._refuse_message(f"message over {self.max_message_size} bytes")
                return None
            return data
        if self._partial is None:
            self._partial = bytearray()
            self._partial_text = type(data) is str
        self._partial += data.encode() if isinstance(data, str) else data
        if len(self._partial) > self.max_message_size:
            self._refuse_message(f"message over {self.max_message_size} bytes")
            return None
        if event.frame_finished:
            self._frames += 1
            if self._frames > self.max_fragments:
                self._refuse_message(f"message in over {self.max_fragments} fragments")
                return None
        if not event.message_finished:
            return None
        message: str | bytes = (
            self._partial.decode() if self._partial_text else bytes(self._partial)
        )
        self._partial = None
        self._frames = 0
        return message

    def _refuse_message(self, reason: str) -> None:
        # 1009: drop the partial message and any later data, but keep parsing
        # so that the peer's close reply is seen: a clean closing handshake.
        self._partial = None
        self._discard_data = True
        if self.state is State.OPEN:
            self._out.append(self.send_close(CloseCode.MESSAGE_TOO_BIG, reason))
            self.peer_error = self.close_sent

    def _on_ping(self, payload: bytes) -> None:
        if self.close_sent is None:  # after our close frame, nothing else goes out
            pong = frame(0x8A, bytes(payload), self._masked)
            if self.hold_pongs or self._pong_bytes >= MAX_PONG_BYTES:
                self.pong = pong
            else:
                self._out.append(pong)
                self._pong_bytes += len(pong)

    def _on_close(self, code: int, reason: str) -> None:
        self.close_rcvd = _close(code, reason)
        if self.close_sent is None:
            # Echo the peer's close frame (RFC 6455 5.5.1).
            self.pong = None
            self._out.append(self._close_frame(code, reason))
            self.close_sent = self.close_rcvd
            self.close_rcvd_then_sent = True
        else:
            self.close_rcvd_then_sent = False
        self.state = State.CLOSED
        self._partial = None
        self._parser = None

    def fail(self, code: int, reason: str = "") -> None:
        """Fail the connection (RFC 6455 7.1.7): send a close frame if none was
        sent, and stop processing anything the peer sends."""
        if self.state is State.OPEN:
            self._out.append(self.send_close(code, _truncate(reason)))
        self.state = State.CLOSED
        self._parser = None
        self._partial = None

    # Sending, once open. The connection layer checks that the state is OPEN.

    def send_text(self, data: str) -> bytes:
        """Return the frame of a complete text message."""
        if self._own_framing:
            return frame(0x81, data.encode(), self._masked)
        assert self._proto is not None
        return bytes(self._proto.send_data(data))

    def send_binary(self, data: bytes | bytearray | memoryview) -> bytes:
        """Return the frame of a complete binary message."""
        if self._own_framing:
            return frame(0x82, bytes(data), self._masked)
        assert self._proto is not None
        return bytes(self._proto.send_data(bytes(data)))

    def send_fragment(self, data: str | bytes | bytearray | memoryview, fin: bool) -> bytes:
        """Return one frame of a fragmented message; ``fin`` marks the last one.

        Raises ``TypeError`` when text and binary fragments are mixed.
        """
        assert self._proto is not None
        # Through wsproto, which tracks the message in progress; complete
        # messages wait for it at the connection layer.
        self._own_framing = fin and self.deflate is None
        if not isinstance(data, str):
            data = bytes(data)
        return bytes(self._proto.send_data(data, fin))

    def send_ping(self, payload: bytes) -> bytes:
        return frame(0x89, payload, self._masked)

    def send_close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> bytes:
        """Return the close frame to write and move to ``CLOSING``.

        Raises ``ValueError`` for a code that may not be sent or a reason
        longer than 123 bytes in UTF-8.
        """
        assert self._proto is not None and self.state is State.OPEN
        if not _valid_close_code(code):
            raise ValueError(f"invalid close code: {code}")
        if len(reason.encode()) > MAX_CLOSE_REASON:
            raise ValueError(f"close reason over {MAX_CLOSE_REASON} bytes")
        self.pong = None
        self.close_sent = _close(code, reason)
        self.state = State.CLOSING
        return self._close_frame(code, reason)

    def _close_frame(self, code: int, reason: str) -> bytes:
        # 1005 means "no code": its close frame is empty (RFC 6455 7.1.5).
        if code == CloseCode.NO_STATUS_RCVD:
            return frame(0x88, b"", self._masked)
        return frame(0x88, code.to_bytes(2, "big") + reason.encode(), self._masked)

    def buffered_bytes(self) -> int:
        """Bytes received and still held: the message being assembled plus
        the bytes wsproto has not parsed yet (the read-side bound's share)."""
        size = len(self._partial) if self._partial is not None else 0
        if self._unparsed is not None:
            size += len(self._unparsed)
        return size

    def data_to_send(self) -> bytes:
        """Return and forget the bytes queued by the protocol itself."""
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out.clear()
        self._pong_bytes = 0
        return data


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


def _window_bits(value: str | None) -> int:
    if value is None or not value.isdigit() or value.startswith("0") or not 8 <= int(value) <= 15:
        raise ValueError(f"invalid window bits: {value}")
    return int(value)


class Deflate(Extension):
    """permessage-deflate (RFC 7692) whose inflation is bounded.

    wsproto's own extension inflates without any limit (65 KB on the wire can
    become a 64 MiB message). This one inflates at most ``max_message_size + 1``
    bytes of a message (zlib's ``max_length``, leftovers staying in
    ``unconsumed_tail``); one byte more fails the connection with 1009 at once,
    since a truncated stream leaves nothing to parse. Defaults keep zlib's
    memory small: 12-bit windows and ``memLevel`` 5, about 32 KiB to compress
    and 11 KiB to inflate per connection, allocated on first use and dropped
    after each message when context takeover is off.
    """

    name = "permessage-deflate"

    def __init__(
        self,
        side: Side,
        max_message_size: float,
        *,
        max_window_bits: int = 12,
        mem_level: int = 5,
        level: int = 6,
    ) -> None:
        self.client = side is Side.CLIENT
        self.max_message_size = max_message_size
        self.max_window_bits = max_window_bits
        self.mem_level = mem_level
        self.level = level
        self.local_bits = self.remote_bits = 15
        self.local_no_context_takeover = self.remote_no_context_takeover = False
        self._enabled = False
        self._encoder: zlib._Compress | None = None
        self._decoder: zlib._Decompress | None = None
        self._message_compressed = False  # the message being received
        self._frame_inflates = False  # the frame being received
        self._inflated = 0

    def enabled(self) -> bool:
        return self._enabled

    # Negotiation.

    def offer(self) -> str:
        """Client side: our offer's parameters. ``client_max_window_bits``
        goes without a value: the server may then name any limit, and we
        compress with at most our own ``max_window_bits`` anyway."""
        return f"server_max_window_bits={self.max_window_bits}; client_max_window_bits"

    def finalize(self, params: list[tuple[str, str | None]]) -> None:  # type: ignore[override]
        """Client side: apply the server's response; ``ValueError`` if invalid."""
        seen: set[str] = set()
        self.local_bits = self.max_window_bits
        for key, value in params:
            if key in seen:
                raise ValueError(f"duplicate parameter {key}")
            seen.add(key)
            if key == "server_no_context_takeover" and value is None:
                self.remote_no_context_takeover = True
            elif key == "client_no_context_takeover" and value is None:
                self.local_no_context_takeover = True
            elif key == "server_max_window_bits":
                self.remote_bits = _window_bits(value)
                if self.remote_bits > self.max_window_bits:
                    raise ValueError("server_max_window_bits above our offer")
            elif key == "client_max_window_bits":
                self.local_bits = min(_window_bits(value), self.max_window_bits)
                if self.local_bits == 8:
                    raise ValueError("zlib cannot compress with 8-bit windows")
            else:
                raise ValueError(f"unknown parameter {key}")
        self._enabled = True

    def accept(self, params: list[tuple[str, str | None]]) -> str | None:  # type: ignore[override]
        """Server side: return our response's parameters, or ``None`` to
        decline this offer."""
        seen: set[str] = set()
        server_bits: int | None = None
        client_bits: int | bool | None = None
        server_no_takeover = client_no_takeover = False
        try:
            for key, value in params:
                if key in seen:
                    return None
                seen.add(key)
                if key == "server_no_context_takeover" and value is None:
                    server_no_takeover = True
                elif key == "client_no_context_takeover" and value is None:
                    client_no_takeover = True
                elif key == "server_max_window_bits":
                    server_bits = _window_bits(value)
                elif key == "client_max_window_bits":
                    client_bits = True if value is None else _window_bits(value)
                else:
                    return None
        except ValueError:
            return None
        self.local_bits = min(server_bits or 15, self.max_window_bits)
        if self.local_bits == 8:
            return None  # zlib cannot compress with 8-bit windows
        response = []
        if server_no_takeover:
            response.append("server_no_context_takeover")
        if client_no_takeover:
            response.append("client_no_context_takeover")
        response.append(f"server_max_window_bits={self.local_bits}")
        if client_bits is True:
            client_bits = self.max_window_bits
        if client_bits:
            self.remote_bits = min(client_bits, self.max_window_bits)
            response.append(f"client_max_window_bits={self.remote_bits}")
        self.local_no_context_takeover = server_no_takeover
        self.remote_no_context_takeover = client_no_takeover
        self._enabled = True
        return "; ".join(response)

    # Inbound frames, called by wsproto's parser.

    def frame_inbound_header(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        payload_length: int,
    ) -> CloseReason | RsvBits:
        if opcode.iscontrol() or opcode is Opcode.CONTINUATION:
            if rsv.rsv1:
                return CloseReason.PROTOCOL_ERROR
        else:
            self._message_compressed = rsv.rsv1
            self._inflated = 0
        self._frame_inflates = self._message_compressed and not opcode.iscontrol()
        return RsvBits(True, False, False)

    def _inflate(self, data: bytes) -> bytes | CloseReason:
        if self._decoder is None:
            self._decoder = zlib.decompressobj(-max(self.remote_bits, 9))
        budget = self.max_message_size - self._inflated
        try:
            if budget == math.inf:
                out = self._decoder.decompress(data)
            else:
                out = self._decoder.decompress(data, int(budget) + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self._inflated += len(out)
        if len(out) > budget:
            return CloseReason.MESSAGE_TOO_BIG
        return out

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | CloseReason:
        return self._inflate(data) if self._frame_inflates else data

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | CloseReason | None:
        if not (fin and self._frame_inflates):
            return None
        out = self._inflate(b"\x00\x00\xff\xff")  # RFC 7692 7.2.2: restore the tail
        self._message_compressed = False
        if self.remote_no_context_takeover:
            self._decoder = None
        return out

    # Outbound frames.

    def frame_outbound(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        data: bytes,
        fin: bool,
    ) -> tuple[RsvBits, bytes]:
        if opcode.iscontrol():
            return rsv, data
        if opcode is not Opcode.CONTINUATION:
            rsv = RsvBits(True, rsv.rsv2, rsv.rsv3)
        if self._encoder is None:
            self._encoder = zlib.compressobj(
                self.level, zlib.DEFLATED, -self.local_bits, self.mem_level
            )
        out = self._encoder.compress(data) + self._encoder.flush(zlib.Z_SYNC_FLUSH)
        if fin:
            out = out[:-4]  # RFC 7692 7.2.1: drop the empty block's tail
            if self.local_no_context_takeover:
                self._encoder = None
        return rsv, out


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
