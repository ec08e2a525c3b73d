"""Sans-I/O WebSocket protocol over wsproto: bytes in, messages and bytes out.

This package is the only part of websockets_lite that imports wsproto (and
h11, on which wsproto's handshake is built). It has no asyncio, no sockets and no clock. Two common
cases skip them for speed, and hand everything else to them: ordinary
handshake heads (see :func:`~websockets_lite.http.split_head`) and whole,
simple data frames (see :func:`frames.simple_message`). Tests feed both
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

Modules: :mod:`.state` (sides, states, events), :mod:`.frames` (masking,
framing, the simple-frame parser), :mod:`.deflate` (permessage-deflate with
bounded inflation), :mod:`.handshake` (the opening handshake) and
:mod:`.machine` (the state machine that drives wsproto).
"""

from __future__ import annotations

from .deflate import Deflate
from .frames import MAX_CLOSE_REASON, encode_frame, frame, mask
from .handshake import MAX_BODY_SIZE, MAX_HANDSHAKE_SIZE, MAX_HEADERS
from .machine import LARGE_MESSAGE, MAX_PONG_BYTES, Protocol
from .state import Fragment, Pong, Side, State

__all__ = [
    "LARGE_MESSAGE",
    "MAX_BODY_SIZE",
    "MAX_CLOSE_REASON",
    "MAX_HANDSHAKE_SIZE",
    "MAX_HEADERS",
    "MAX_PONG_BYTES",
    "Deflate",
    "Fragment",
    "Pong",
    "Protocol",
    "Side",
    "State",
    "encode_frame",
    "frame",
    "mask",
]
