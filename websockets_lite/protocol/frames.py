"""Frames as bytes: masking, serializing frames we send, and parsing the
most common frame ourselves (the fast path that skips wsproto's parser).
Close codes and reasons are checked here too."""

from __future__ import annotations

import os
import struct

from ..close import MAX_CLOSE_REASON, Close, CloseCode

__all__ = [
    "MAX_CLOSE_REASON", "encode_frame", "frame", "mask", "simple_message", "walk_frames",
]


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



def simple_message(buffer: bytearray, masked_side: bool, max_size: float) -> str | bytes | None:
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
    size = len(buffer)
    if size < 2:
        return None
    first = buffer[0]
    if first != 0x81 and first != 0x82:
        return None
    second = buffer[1]
    masked = second & 0x80
    if (masked != 0) is masked_side:  # the peer masks if and only if we do not
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
    if size < end or length > max_size:
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



def walk_frames(
    buffer: bytearray, start: int, masked_side: bool
) -> tuple[list[tuple[int, bytes]], int, bool]:
    """Walk the whole frames in ``buffer`` from ``start``, a frame boundary,
    without parsing their data; return the control frames found (opcode and
    unmasked payload), where the walk stopped (a frame boundary), and whether
    it stopped at a frame that the parser will refuse (it cannot go past).

    ``masked_side`` tells whether the frames are masked: the peer masks if and
    only if we do not. A close frame ends the walk: nothing after it counts.
    """
    controls: list[tuple[int, bytes]] = []
    size = len(buffer)
    position = start
    while size - position >= 2:
        first = buffer[position]
        second = buffer[position + 1]
        if bool(second & 0x80) is not masked_side:
            return controls, position, True
        length = second & 0x7F
        head = position + 2
        if length == 126:
            if size - head < 2:
                break
            length = (buffer[head] << 8) | buffer[head + 1]
            head += 2
        elif length == 127:
            if size - head < 8:
                break
            length = int.from_bytes(buffer[head : head + 8], "big")
            head += 8
        if masked_side:
            head += 4
        end = head + length
        if end > size:
            break
        opcode = first & 0x0F
        if opcode >= 8:
            if opcode > 10 or length > 125 or not first & 0x80:
                return controls, position, True
            payload = bytes(buffer[head:end])
            if masked_side:
                payload = mask(payload, buffer[head - 4 : head])
            controls.append((opcode, payload))
            if opcode == 8:
                return controls, end, False
        position = end
    return controls, position, False
