"""Frames as bytes: masking, serializing frames we send, and parsing the
most common frame ourselves (the fast path that skips wsproto's parser).
Close codes and reasons are checked here too."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

from ..close import MAX_CLOSE_REASON, Close, CloseCode
from ..typing import BytesLike

__all__ = [
    "MASKER", "MAX_CLOSE_REASON", "encode_frame", "frame", "frame_parts", "long_frame", "mask",
    "simple_message", "walk_frames",
]


_pack_medium = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack
_XOR_TABLES = [bytes(a ^ b for a in range(256)) for b in range(256)]

def _c_masker() -> tuple[Callable[[BytesLike, bytes | bytearray], bytes] | None, str]:
    """The C masker: ours, built at install when a compiler was present;
    else websockets' (the ``speedups`` extra installs it, as wheels for
    every platform); else none. WEBSOCKETS_LITE_NO_SPEEDUPS=1 forces the
    pure-Python one (to measure or test it)."""
    if os.environ.get("WEBSOCKETS_LITE_NO_SPEEDUPS"):
        return None, "python"
    try:
        from ..speedups import apply_mask as ours
    except ImportError:
        pass
    else:
        return ours, "websockets_lite.speedups"
    try:
        from websockets.speedups import apply_mask as theirs
    except ImportError:
        return None, "python"
    return theirs, "websockets.speedups"


#: Which masker is used: ``"websockets_lite.speedups"``,
#: ``"websockets.speedups"`` or ``"python"``.
_apply_mask, MASKER = _c_masker()


def _python_mask(payload: BytesLike, key: bytes | bytearray) -> bytes:
    """The fastest pure-Python masker for each size (measured in
    docs/topics/performance.rst): one big-integer XOR for short payloads,
    one ``translate()`` per byte lane for long ones."""
    size = len(payload)
    if size < 768:
        if not size:
            return b""
        repeated = (key * ((size >> 2) + 1))[:size]
        xored = int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")
        return xored.to_bytes(size, "little")
    data = bytearray(payload)
    for lane in range(4):
        data[lane::4] = data[lane::4].translate(_XOR_TABLES[key[lane]])
    return bytes(data)


#: ``mask(payload, key)``: XOR ``payload`` (any bytes-like object) with the
#: 4-byte ``key`` repeated (RFC 6455 5.3); returns ``bytes``.
mask: Callable[[BytesLike, bytes | bytearray], bytes] = _apply_mask or _python_mask


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


def frame_parts(first: int, payload: bytes | bytearray | memoryview, masked: bool) -> list[bytes]:
    """The same frame as :func:`frame`, as its header and its payload, for
    two writes: a long payload (64 KiB or more, of single bytes) is not
    copied once more to join them."""
    size = len(payload)
    assert size >= 65536
    header = _pack_long(first, 127 | (0x80 if masked else 0), size)
    if not masked:
        return [header, payload if isinstance(payload, bytes) else bytes(payload)]
    key = os.urandom(4)
    return [header + key, mask(payload, key)]


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
    and leave the bytes to wsproto (or to :func:`long_frame`).

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
        return None  # 64 KiB or more: see long_frame()
    if masked:
        start += 4
    end = start + length
    if size < end or length > max_size:
        return None
    if length < 1024:
        payload: bytes | bytearray = buffer[start:end]
        if masked:
            payload = mask(payload, buffer[start - 4 : start])
    else:  # one copy fewer: worth the memoryview's cost
        with memoryview(buffer) as view:
            part = view[start:end]
            payload = mask(part, buffer[start - 4 : start]) if masked else bytes(part)
            part.release()
    if first == 0x81:
        try:
            message: str | bytes = payload.decode()
        except UnicodeDecodeError:
            return None
    else:
        message = bytes(payload)
    del buffer[:end]
    return message


def long_frame(buffer: bytearray, we_mask: bool) -> tuple[int, int, bytes | None] | None:
    """The header of a data frame that :func:`simple_message` did not take
    but that is parsed here as it arrives: FIN set, no RSV bit, text or
    binary, masked as this side expects, shortest length encoding, 126
    bytes or more (so: over 64 KiB, or not wholly buffered yet). Returns the
    header's size, the payload's length and the masking key, or ``None``
    (not such a frame, or its header is not wholly buffered). The peer
    masks if and only if we do not (``we_mask``)."""
    size = len(buffer)
    if size < 4:
        return None
    first = buffer[0]
    second = buffer[1]
    if (first != 0x81 and first != 0x82) or bool(second & 0x80) is we_mask:
        return None
    code = second & 0x7F
    if code == 126:
        length = (buffer[2] << 8) | buffer[3]
        start = 4
        if length < 126:
            return None
    elif code == 127:
        if size < 10:
            return None
        length = int.from_bytes(buffer[2:10], "big")
        start = 10
        if length < 65536 or length >> 63:
            return None
    else:
        return None
    if we_mask:
        return start, length, None
    if size < start + 4:
        return None
    return start + 4, length, bytes(buffer[start : start + 4])


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
