"""permessage-deflate (RFC 7692) with bounded inflation, as a wsproto extension."""

from __future__ import annotations

import math
import zlib

from wsproto.extensions import Extension
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits

from .state import Side

__all__ = ["Deflate"]


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

