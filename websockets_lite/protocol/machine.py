"""The connection's state machine: it drives wsproto's frame layer once the
handshake is over, assembles messages within their limits, answers pings
and closes, and frames what we send."""

from __future__ import annotations

import codecs
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
)

from ..close import Close, CloseCode, check_close
from ..http import Request, Response
from .deflate import Deflate
from .frames import (
    _close,
    _truncate,
    frame,
    frame_parts,
    long_frame,
    mask,
    simple_message,
    walk_frames,
)
from .handshake import MAX_HANDSHAKE_SIZE, Handshake, _closed_during_handshake
from .state import Fragment, Pong, Side, State

__all__ = ["LARGE_MESSAGE", "MAX_PONG_BYTES", "Protocol"]

#: Messages this long (in characters or bytes) are written as two pieces,
#: header and payload, rather than copied once more into one frame.
LARGE_MESSAGE = 2**20

#: Most bytes of automatic pongs queued between two calls of data_to_send();
#: beyond it pongs are held like while the write buffer is full.
MAX_PONG_BYTES = 16 * 1024
#: A long frame's reads shorter than this are gathered until there are
#: _GATHERED bytes of them (see _LongFrame.small).
_SHORT_READ = 4096
_GATHERED = 65536

_TEXT, _BINARY, _PING, _PONG = Opcode.TEXT, Opcode.BINARY, Opcode.PING, Opcode.PONG
_CLOSED = State.CLOSED
_Utf8Decoder = codecs.getincrementaldecoder("utf-8")


class _LongFrame:
    """A data frame parsed here as its payload arrives (see
    frames.long_frame): whole messages in one frame, the common case of
    large messages, without wsproto's per-chunk costs."""

    __slots__ = ("decoder", "held", "key", "left", "length", "pieces", "small")

    def __init__(self, length: int, key: bytes | None, text: bool) -> None:
        self.length = length
        self.left = length  # payload bytes still to come
        self.key = key  # the masking key, rotated to where the next byte falls
        self.decoder = _Utf8Decoder() if text else None
        # What arrived so far (str or bytes pieces), or None once the pieces
        # go through Protocol._assemble (a stream, or a message skipped).
        self.pieces: list[str] | list[bytes] | None = []
        # Short reads, unmasked (and for text checked as UTF-8), gathered
        # before they become a piece: a piece object costs about 40 bytes, so
        # a frame arriving a few bytes at a time would otherwise take many
        # times its size in memory.
        self.small = bytearray()
        self.held = 0  # payload bytes in pieces and small (the read-side bound's share)


class Protocol(Handshake):
    """One WebSocket connection, client or server side, without I/O.

    ``max_message_size`` and ``max_fragments`` may be ``math.inf``.
    """

    # Slots: one of these lives as long as each connection.
    __slots__ = (
        "_decoder",
        "_discard_data",
        "_frames",
        "_long",
        "_masked",
        "_own_framing",
        "_parser",
        "_partial",
        "_partial_text",
        "_pong_bytes",
        "_pongs_ahead",
        "_proto",
        "_skip",
        "_streamed",
        "_streaming",
        "_unparsed",
        "_walker",
        "close_rcvd",
        "close_rcvd_then_sent",
        "close_sent",
        "hold_pongs",
        "max_fragments",
        "max_message_size",
        "opened",
        "peer_error",
        "pong",
        "stream_next",
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
        # wsproto's frame decoder, when the look-ahead may walk its buffer.
        self._walker: FrameDecoder | None = None
        # Pings answered by the look-ahead that the parser has not reached.
        self._pongs_ahead = 0
        #: Set by the connection: emit the next message as Fragment events
        #: as its data arrives, instead of assembling it.
        self.stream_next = False
        self._streaming = False  # the message being received is streamed
        self._streamed = 0  # its size so far
        self._skip = False  # the rest of it is dropped: nobody reads the stream
        self._long: _LongFrame | None = None  # a frame being parsed here

    def _open(self, trailing: bytes) -> None:
        extensions: list[Extension] = [self.deflate] if self.deflate else []
        self._proto = FrameProtocol(self.side is Side.CLIENT, extensions)
        decoder = getattr(self._proto, "_frame_decoder", None)
        self._unparsed = getattr(getattr(decoder, "buffer", None), "buffer", None)
        # Complete, unfragmented, uncompressed data frames that wait whole in
        # wsproto's buffer while its decoder is between frames are parsed
        # here (see frames.simple_message); everything else goes through wsproto.
        if (
            self.deflate is None
            and type(self._unparsed) is bytearray
            and getattr(decoder, "header", False) is None
        ):
            self._decoder = decoder
        if type(self._unparsed) is bytearray and getattr(decoder, "header", False) is None:
            self._walker = decoder
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
        self._long = None

    def next_event(self) -> str | bytes | Fragment | Pong | Request | None:
        """Return the next event, or ``None`` when more bytes are needed."""
        if self._h11 is not None:
            request = self._next_handshake_event()
            if request is not None or self._h11 is not None:
                return request
        frames = self._parser
        if frames is None:
            return None
        if self._long is not None:
            item = self._long_next()
            if item is not None or self._long is not None or self._parser is None:
                if not self._unparsed:
                    self._parser = None
                return item
        decoder = self._decoder
        if (
            decoder is not None
            and decoder.header is None
            and self._partial is None
            and not self._discard_data
            and not self._streaming
            and not self._skip
        ):
            # Between messages only: inside a fragmented message, wsproto
            # checks that continuation frames come next.
            unparsed = self._unparsed
            assert unparsed is not None
            message = simple_message(unparsed, self._masked, self.max_message_size)
            if message is not None:
                self.stream_next = False  # a whole message answers a stream asked for
                if not unparsed:
                    self._parser = None
                return message
            if len(unparsed) >= 4 and unparsed[1] & 0x7F >= 126 and self._start_long():
                return self.next_event()
        try:
            for frame_ in frames:
                opcode = frame_.opcode
                if opcode is _TEXT or opcode is _BINARY:
                    item = self._assemble(
                        frame_.payload,  # type: ignore[arg-type]  # str or bytes here
                        frame_.frame_finished,
                        frame_.message_finished,
                    )
                    if item is not None:
                        if not self._unparsed:
                            # Nothing left to parse: resuming the parser would
                            # only find that out, at the cost of a parse attempt.
                            self._parser = None
                        return item
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

    def _start_long(self) -> bool:
        """Start parsing the data frame at the front of the buffer here, if
        frames.long_frame() takes it. A frame over ``max_message_size`` is
        left to wsproto: it is refused once that many bytes have arrived,
        or earlier for invalid UTF-8, as any other frame."""
        unparsed = self._unparsed
        assert unparsed is not None
        header = long_frame(unparsed, self._masked)
        if header is None:
            return False
        size, length, key = header
        if length > self.max_message_size:
            return False
        self._long = _LongFrame(length, key, unparsed[0] == 0x81)
        del unparsed[:size]
        return True

    def _long_next(self) -> str | bytes | Fragment | None:
        """Take the long frame's payload that has arrived: the message once
        it is complete, a piece of it when it is streamed, else ``None``."""
        long = self._long
        unparsed = self._unparsed
        assert long is not None and unparsed is not None
        size = min(long.left, len(unparsed))
        if not size:
            return None
        if self._discard_data:  # refused meanwhile: drop the rest
            data = b""
        else:
            with memoryview(unparsed) as view:
                part = view[:size]
                key = long.key
                if key is None:
                    data = bytes(part)
                else:
                    data = mask(part, key)
                    turn = size & 3
                    if turn:
                        long.key = key[turn:] + key[:turn]
                part.release()
        del unparsed[:size]
        began = long.left < long.length  # some payload came before this
        long.left -= size
        last = not long.left
        if last:
            self._long = None
        if self._discard_data:
            return None
        pieces = long.pieces
        collecting = pieces is not None and not (self.stream_next or self._streaming or self._skip)
        piece: str | bytes = data
        if long.decoder is not None:
            try:
                piece = long.decoder.decode(data, last)
            except UnicodeDecodeError as exc:  # as wsproto reports it
                reason = _truncate(str(exc))
                self.fail(CloseCode.INVALID_DATA, reason)
                self.peer_error = self.close_sent or _close(CloseCode.INVALID_DATA, reason)
                return None
        small = long.small
        if collecting and not last and size < _SHORT_READ:
            gathered = piece.encode() if isinstance(piece, str) else piece  # valid UTF-8 now
            small += gathered
            long.held += len(gathered)
            if len(small) < _GATHERED:
                return None
            size = 0
        if small:  # what was gathered goes first, as a piece of its own
            assert pieces is not None  # gathered only while collecting
            before = bytes(small)
            small.clear()
            pieces.append(before.decode() if long.decoder is not None else before)  # type: ignore[arg-type]
        if collecting:
            assert pieces is not None
            if size:
                pieces.append(piece)  # type: ignore[arg-type]  # all str or all bytes
                long.held += size
            if not last:
                return None
            if long.decoder is not None:
                return "".join(pieces)  # type: ignore[arg-type]
            return pieces[0] if len(pieces) == 1 else b"".join(pieces)  # type: ignore[arg-type]
        if pieces is not None:  # a stream starts midway: what came so far first
            long.pieces = None
            long.held = 0
            if began:
                self._partial = bytearray()
                self._partial_text = long.decoder is not None
                for earlier in pieces:
                    self._partial += earlier.encode() if isinstance(earlier, str) else earlier
        return self._assemble(piece, last, last)

    def _assemble(
        self, data: str | bytes, frame_finished: bool, message_finished: bool
    ) -> str | bytes | Fragment | None:
        if self._discard_data:
            return None
        if self._skip:
            if message_finished:
                self._skip = False
                self._frames = 0
            return None
        if self._streaming or (
            self.stream_next and not (message_finished and self._partial is None)
        ):
            return self._stream(data, frame_finished, message_finished)
        if message_finished and self._partial is None:
            # The whole message arrived in one piece: the common, fast case
            # (and the answer to a stream asked for).
            self.stream_next = False
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
        if frame_finished:
            self._frames += 1
            if self._frames > self.max_fragments:
                self._refuse_message(f"message in over {self.max_fragments} fragments")
                return None
        if not message_finished:
            return None
        message: str | bytes = (
            self._partial.decode() if self._partial_text else bytes(self._partial)
        )
        self._partial = None
        self._frames = 0
        return message

    def _stream(
        self, data: str | bytes, frame_finished: bool, message_finished: bool
    ) -> Fragment | None:
        """The next piece of a streamed message, within the same limits."""
        size = len(data) if isinstance(data, bytes) or data.isascii() else len(data.encode())
        if not self._streaming:
            self._streaming = True
            self.stream_next = False
            pending, self._partial = self._partial, None
            if pending:  # what arrived before the application asked for a stream
                size += len(pending)
                if isinstance(data, str):
                    data = pending.decode() + data
                else:
                    data = bytes(pending) + data
            self._streamed = 0
        self._streamed += size
        if self._streamed > self.max_message_size:
            self._refuse_message(f"message over {self.max_message_size} bytes")
            return None
        if frame_finished:
            self._frames += 1
            if self._frames > self.max_fragments:
                self._refuse_message(f"message in over {self.max_fragments} fragments")
                return None
        last = message_finished
        if last:
            self._streaming = False
            self._frames = 0
        elif not data:
            return None
        return Fragment(data, last)

    def skip_message(self) -> None:
        """The application stopped reading a streamed message: drop its rest."""
        if self._streaming:
            self._streaming = False
            self._skip = True
        self.stream_next = False

    def _refuse_message(self, reason: str) -> None:
        # 1009: drop the partial message and any later data, but keep parsing
        # so that the peer's close reply is seen: a clean closing handshake.
        self._streaming = False
        self._partial = None
        self._discard_data = True
        if self.state is State.OPEN:
            self._out.append(self.send_close(CloseCode.MESSAGE_TOO_BIG, reason))
            self.peer_error = self.close_sent

    def _on_ping(self, payload: bytes) -> None:
        if self._pongs_ahead:  # answered already, when the look-ahead found it
            self._pongs_ahead -= 1
        else:
            self._answer_ping(payload)

    def _answer_ping(self, payload: bytes) -> None:
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
        self._long = None

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

    def send_parts(self, data: str | bytes | bytearray | memoryview) -> list[bytes] | None:
        """The frame of a complete message of 1 MiB or more as its header and
        its payload, to write apart (see frames.frame_parts); ``None`` for
        shorter messages, or when wsproto frames them (compression)."""
        if not self._own_framing:
            return None
        if isinstance(data, str):
            if len(data) < LARGE_MESSAGE:
                return None
            return frame_parts(0x81, data.encode(), self._masked)
        if isinstance(data, memoryview):
            if data.nbytes < LARGE_MESSAGE:
                return None
            if data.itemsize != 1 or data.ndim != 1 or not data.contiguous:
                # Framed by its size in bytes, not its count of items.
                data = data.cast("B") if data.c_contiguous else bytes(data)
        elif len(data) < LARGE_MESSAGE:
            return None
        return frame_parts(0x82, data, self._masked)

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

    def send_pong(self, payload: bytes) -> bytes:
        return frame(0x8A, payload, self._masked)

    def send_close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> bytes:
        """Return the close frame to write and move to ``CLOSING``.

        Raises ``ValueError`` for a code that may not be sent or a reason
        longer than 123 bytes in UTF-8.
        """
        assert self._proto is not None and self.state is State.OPEN
        check_close(code, reason)
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
        if self._long is not None:
            size += self._long.held
        if self._unparsed is not None:
            size += len(self._unparsed)
        return size

    def unparsed_size(self) -> int:
        """Bytes received and not parsed yet."""
        return len(self._unparsed) if self._unparsed is not None else 0

    def look_ahead(self, start: int) -> tuple[int, list[bytes], bool, bool]:
        """Walk the frames received after the message where the parser
        stalled, without parsing their data, from ``start`` (an offset in the
        unparsed bytes where a previous walk stopped, or 0).

        The connection calls it while the application is behind, so that a
        peer that closes or stops answering is noticed even then. Pings found
        are answered now (the parser will not answer them again). Returns
        where the walk stopped, the payloads of the pongs found, whether a
        close frame was found, and whether the walk is blocked: it cannot go
        on (a frame the parser will refuse, or no walker available) whatever
        arrives next.
        """
        walker = self._walker
        buffer = self._unparsed
        if (
            walker is None
            or buffer is None
            or walker.header is not None
            or self._partial is not None
            or self._long is not None
            or self.state is not State.OPEN
        ):
            return start, [], False, True
        controls, end, blocked = walk_frames(buffer, start, not self._masked)
        pongs: list[bytes] = []
        closing = False
        for opcode, payload in controls:
            if opcode == 0x9:
                self._answer_ping(payload)
                self._pongs_ahead += 1
            elif opcode == 0xA:
                pongs.append(payload)
            else:
                closing = True
        return end, pongs, closing, blocked

    def data_to_send(self) -> bytes:
        """Return and forget the bytes queued by the protocol itself."""
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out.clear()
        self._pong_bytes = 0
        return data


