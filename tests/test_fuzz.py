"""Property-based fuzzing (hypothesis).

- arbitrary bytes into the protocol layer, before and after the handshake;
- valid streams of messages, pings and fragments, split at arbitrary points;
- arbitrary sequences of API calls on a connection pair over a socket pair;
- frames valid and not, parsed with and without the protocol layer's own
  parser of simple frames, and handshake heads mangled in many ways, parsed
  with and without its own head parser: the events, states and replies must
  be the same as with wsproto and h11 alone.

Invariants: no exception escapes the protocol layer, every message sent is
received exactly once and in order until a close, states only move forward,
and the memory bound holds. The default run is short; for a longer one:

    FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/test_fuzz.py
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import socket

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from websockets_lite import ClientProtocol, ConnectionClosed, ServerProtocol, State, memory_bound
from websockets_lite.flow import READ_CHUNK
from websockets_lite.protocol import Pong, Protocol, Side, frame, mask

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
MAX_SIZE = 1000


def opened_pair(compression: str | None = None) -> tuple[Protocol, Protocol]:
    client = Protocol(Side.CLIENT, max_message_size=MAX_SIZE, compression=compression)
    server = Protocol(Side.SERVER, max_message_size=MAX_SIZE, compression=compression)
    server.receive_data(client.send_request("h", "/"))
    server.next_event()
    client.receive_data(server.accept())
    client.next_event()
    return client, server


def pull(protocol: Protocol) -> list[object]:
    events = []
    while (event := protocol.next_event()) is not None:
        events.append(event)
    return events


@FUZZ
@given(
    chunks=st.lists(st.binary(max_size=600), max_size=30),
    compression=st.sampled_from([None, "deflate"]),
)
def test_arbitrary_bytes_after_the_handshake(chunks, compression):
    _, server = opened_pair(compression)
    previous = server.state
    fed = 0
    for chunk in chunks:
        server.receive_data(chunk)  # must never raise
        fed += len(chunk)
        for event in pull(server):
            assert isinstance(event, (str, bytes, Pong))
            if isinstance(event, (str, bytes)):
                size = len(event.encode()) if isinstance(event, str) else len(event)
                assert size <= MAX_SIZE
        server.data_to_send()
        assert server.state >= previous  # only forward
        previous = server.state
        # Unparsed bytes, plus at most one message being assembled.
        assert server.buffered_bytes() <= MAX_SIZE + len(chunk) + 14
    server.receive_eof()
    assert server.state is State.CLOSED


@FUZZ
@given(data=st.binary(max_size=3000), side=st.sampled_from([Side.SERVER, Side.CLIENT]))
def test_arbitrary_bytes_during_the_handshake(data, side):
    protocol = Protocol(side)
    if side is Side.CLIENT:
        protocol.send_request("h", "/")
    for start in range(0, len(data), 97):
        protocol.receive_data(data[start : start + 97])
        pull(protocol)
    protocol.receive_eof()
    pull(protocol)
    reply = protocol.data_to_send()
    if side is Side.SERVER and protocol.state is State.CLOSED and protocol.request is None:
        assert reply == b"" or reply.startswith(b"HTTP/1.1 4")


text = st.text(max_size=200)
binary = st.binary(max_size=400)
message = st.one_of(text, binary)
item = st.one_of(
    st.tuples(st.just("message"), message),
    st.tuples(st.just("fragments"), st.lists(text, min_size=1, max_size=5)),
    st.tuples(st.just("fragments"), st.lists(binary, min_size=1, max_size=5)),
    st.tuples(st.just("ping"), st.binary(max_size=125)),
)


@FUZZ
@given(
    items=st.lists(item, max_size=15),
    cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=20),
    compression=st.sampled_from([None, "deflate"]),
)
def test_valid_streams_split_anywhere(items, cuts, compression):
    client, server = opened_pair(compression)
    stream = b""
    expected: list[object] = []
    pings = []
    for kind, value in items:
        if kind == "message":
            send = client.send_text if isinstance(value, str) else client.send_binary
            stream += send(value)
            expected.append(value)
        elif kind == "fragments":
            for index, part in enumerate(value):
                stream += client.send_fragment(part, index == len(value) - 1)
            expected.append(("" if isinstance(value[0], str) else b"").join(value))
        else:
            stream += client.send_ping(value)
            pings.append(value)
    received: list[object] = []
    points = sorted({0, len(stream), *(cut % (len(stream) + 1) for cut in cuts)})
    for start, end in itertools.pairwise(points):
        server.receive_data(stream[start:end])
        received += pull(server)
    assert received == expected  # exactly once, in order
    client.receive_data(server.data_to_send())
    assert pull(client) == [Pong(payload) for payload in pings]


close_payload_1000 = (1000).to_bytes(2, "big") + b"bye"


def invalid_utf8(payload: bytes) -> bytes:
    """Text that turns invalid somewhere in the middle."""
    middle = len(payload) // 2
    return payload[:middle] + b"\xff" + payload[middle:]


large = st.one_of(
    st.integers(65536, 70000).map(lambda size: os.urandom(size)),
    st.integers(126, 70000).map(lambda size: ("\u00e9\u20ac\U0001f600x" * size)[:size].encode()),
    st.integers(126, 70000).map(lambda size: invalid_utf8(("\u20acx" * size)[:size].encode())),
)


@st.composite
def raw_frame(draw: st.DrawFn, side: Side, long: bool = False) -> bytes:
    """One frame as the peer of ``side`` might send it, valid or not;
    ``long`` adds payloads up to 70,000 bytes (text, some of it invalid)."""
    # Mostly what the simple parser takes, with every kind of exception.
    opcode = draw(st.sampled_from([1, 2] * 8 + [0, 8, 9, 10, 3, 11]))
    first = opcode | (0x80 if draw(st.sampled_from([1] * 9 + [0])) else 0)
    if draw(st.sampled_from([0] * 19 + [1])):
        first |= draw(st.integers(1, 7)) << 4
    payload = draw(
        st.one_of(
            st.text(max_size=150).map(str.encode),
            st.text(max_size=150).map(str.encode),
            st.binary(max_size=300),
            st.binary(min_size=126, max_size=500),
            st.just(close_payload_1000),
            *([large, large, large] if long else []),
        )
    )
    masked = (side is Side.SERVER) is draw(st.sampled_from([True] * 19 + [False]))
    size = len(payload)
    encoding = draw(st.sampled_from(["short"] * 8 + ["16", "64"]))
    if encoding == "short" and size < 126:
        head = bytes((first, size))
    elif encoding != "64" and size < 65536:
        head = bytes((first, 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((first, 127)) + size.to_bytes(8, "big")
    if not masked:
        return head + payload
    key = draw(st.binary(min_size=4, max_size=4))
    head = bytes((head[0], head[1] | 0x80)) + head[2:]
    return head + key + mask(payload, key)


def state_of(protocol: Protocol) -> tuple[object, ...]:
    return (
        protocol.state, protocol.close_sent, protocol.close_rcvd, protocol.peer_error,
        protocol.buffered_bytes(),
    )


def parse_both(
    stream: bytes, cuts: list[int], side: Side, max_size: int, streamed: set[int]
) -> None:
    """Feed ``stream`` to a protocol that parses simple and long frames
    itself and to one where wsproto parses every frame, cut at ``cuts``;
    ``streamed`` says at which cuts the next message is asked as a stream.
    The events must be the same, chunk by chunk; the states the same at the
    end; and ours never holds more bytes."""
    fast, slow = (Protocol(side, max_message_size=max_size) for _ in range(2))
    for protocol in (fast, slow):
        protocol._open(b"")
    slow._decoder = None  # wsproto parses every frame
    assert fast._decoder is not None
    points = sorted({0, len(stream), *cuts})
    replies: tuple[list[bytes], list[bytes]] = ([], [])
    for index, (start, end) in enumerate(itertools.pairwise(points)):
        for protocol in (fast, slow):
            if index in streamed:
                protocol.stream_next = True
            protocol.receive_data(stream[start:end])
        assert pull(fast) == pull(slow)
        # Up to 3 bytes of a split UTF-8 character wait in a decoder: we
        # count them, wsproto's side does not.
        assert fast.buffered_bytes() <= slow.buffered_bytes() + 3
        replies[0].append(fast.data_to_send())
        replies[1].append(slow.data_to_send())
    assert state_of(fast) == state_of(slow)
    if side is Side.SERVER:  # a client masks its replies with random keys
        assert b"".join(replies[0]) == b"".join(replies[1])


@FUZZ
@given(data=st.data(), side=st.sampled_from([Side.SERVER, Side.CLIENT]))
def test_simple_frame_parser_agrees_with_wsproto(data, side):
    stream = b"".join(data.draw(st.lists(raw_frame(side), max_size=12)))
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=8))
    parse_both(stream, cuts, side, 400, set())


@FUZZ
@given(data=st.data(), side=st.sampled_from([Side.SERVER, Side.CLIENT]))
def test_long_frame_parser_agrees_with_wsproto(data, side):
    # Large, fragmented and split frames, some over the limit, some streamed.
    stream = b"".join(data.draw(st.lists(raw_frame(side, long=True), max_size=8)))
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    streamed = set(data.draw(st.lists(st.integers(0, 12), max_size=3)))
    max_size = data.draw(st.sampled_from([400, 66000, 2**20]))
    parse_both(stream, cuts, side, max_size, streamed)


REQUEST = (
    b"GET /chat?x=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\nX-Extra:  spaced\tvalue  \r\n\r\n"
)
RESPONSE = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
)
NONCE = b"dGhlIHNhbXBsZSBub25jZQ=="
tricky = st.sampled_from(
    [b" ", b"\t", b"\r", b"\n", b"\r\n", b":", b"\x00", b"\x7f", b"\xff", b"a", b"/", b"1",
     b"\r\n folded", b"\r\nHost: other", b"\r\nContent-Length: 0",
     b"\r\nTransfer-Encoding: chunked", b"\r\nBad Name: x", b"HTTP/1.0", b"\r\n\r\n"]
)
edit = st.tuples(
    st.sampled_from(["insert", "delete", "replace"]),
    st.integers(0, 400),
    st.one_of(tricky, st.binary(min_size=1, max_size=3)),
)


def mangle(head: bytes, edits: list[tuple[str, int, bytes]]) -> bytes:
    for kind, at, data in edits:
        at %= len(head) + 1
        if kind == "insert":
            head = head[:at] + data + head[at:]
        elif kind == "delete":
            head = head[:at] + head[at + len(data) :]
        else:
            head = head[:at] + data + head[at + len(data) :]
    return head


def outcome(protocol: Protocol) -> tuple[object, ...]:
    response = protocol.response
    exc = protocol.handshake_exc
    return (
        protocol.state, protocol.subprotocol, protocol.upgrade_error,
        None if response is None else (response.status, response.headers, response.reason,
                                       response.body),
        None if exc is None else (type(exc), str(exc)),
    )


def feed_both(
    fast: Protocol, slow: Protocol, stream: bytes, cuts: list[int], eof: bool
) -> tuple[list[object], list[object]]:
    """Feed ``stream`` to both, cut at ``cuts``, then maybe EOF; return the
    events each produced."""
    events: tuple[list[object], list[object]] = ([], [])
    points = sorted({0, len(stream), *(cut % (len(stream) + 1) for cut in cuts)})
    for start, end in itertools.pairwise(points):
        for protocol, seen in zip((fast, slow), events, strict=True):
            protocol.receive_data(stream[start:end])
            seen += pull(protocol)
    if eof:
        for protocol, seen in zip((fast, slow), events, strict=True):
            protocol.receive_eof()
            seen += pull(protocol)
    return events


@FUZZ
@given(
    edits=st.lists(edit, max_size=3),
    cuts=st.lists(st.integers(0, 400), max_size=4),
    eof=st.booleans(),
)
def test_own_request_parser_agrees_with_h11(edits, cuts, eof):
    stream = mangle(REQUEST, edits) + frame(0x82, b"first", True)
    fast, slow = Protocol(Side.SERVER), Protocol(Side.SERVER)
    slow._to_h11()
    fast_events, slow_events = feed_both(fast, slow, stream, cuts, eof)
    assert fast_events == slow_events
    assert outcome(fast) == outcome(slow)
    assert fast.data_to_send() == slow.data_to_send()
    if fast.request is not None and fast.upgrade_error is None and fast.state is State.CONNECTING:
        assert fast.accept() == slow.accept()
        assert pull(fast) == pull(slow)
        assert outcome(fast) == outcome(slow)


@FUZZ
@given(
    edits=st.lists(edit, max_size=3),
    cuts=st.lists(st.integers(0, 400), max_size=4),
    body=st.sampled_from([b"", b"HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\n\r\nno!"]),
    eof=st.booleans(),
)
def test_own_response_parser_agrees_with_h11(edits, cuts, body, eof):
    stream = mangle(body or RESPONSE, edits) + frame(0x82, b"first", False)
    fast, slow = Protocol(Side.CLIENT), Protocol(Side.CLIENT)
    for protocol in (fast, slow):
        protocol.send_request("example.com", "/chat")
        protocol._nonce = NONCE
    slow._to_h11()
    fast_events, slow_events = feed_both(fast, slow, stream, cuts, eof)
    assert fast_events == slow_events
    assert outcome(fast) == outcome(slow)


operation = st.one_of(
    st.tuples(st.just("send"), message),
    st.tuples(st.just("send_fragments"), st.lists(text, min_size=1, max_size=4)),
    st.just(("recv",)),
    st.just(("recv_cancelled",)),
    st.just(("ping",)),
    st.just(("close",)),
)


async def run_operations(operations: list[tuple[object, ...]]) -> None:
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    recorded: list[object] = []
    handler_done = asyncio.Event()

    async def handler(ws: ServerProtocol) -> None:
        # Record everything received, even once echoing fails after a close.
        while True:
            try:
                data = await ws.recv()
            except ConnectionClosed:
                break
            recorded.append(data)
            with contextlib.suppress(ConnectionClosed):
                await ws.send(data)
        handler_done.set()

    _, server = await loop.connect_accepted_socket(
        lambda: ServerProtocol(handler, message_queue_size=2), theirs
    )
    _, client = await loop.create_connection(
        lambda: ClientProtocol("ws://localhost/", message_queue_size=2), sock=ours
    )
    await client.handshake()
    bound = memory_bound(2, 2**20, 2**16) - 2 * 2**20 + READ_CHUNK
    sent: list[object] = []
    echoed: list[object] = []
    states = [client.state]
    closed = False
    for operation in operations:
        kind = operation[0]
        if kind in ("send", "send_fragments"):
            payload = operation[1]
            try:
                await client.send(payload)
            except ConnectionClosed:
                assert closed
                continue
            assert not closed
            sent.append(payload if kind == "send" else "".join(payload))  # type: ignore[arg-type]
        elif kind == "recv" and len(echoed) < len(sent) and not closed:
            async with asyncio.timeout(5):
                echoed.append(await client.recv())
        elif kind == "recv_cancelled":
            task = asyncio.ensure_future(client.recv())
            await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                echoed.append(await task)  # it may have completed first
        elif kind == "ping" and not closed:
            # A pong is read like any frame: echoes not consumed yet would
            # keep it waiting (reading pauses when the queue is full).
            async with asyncio.timeout(5):
                while len(echoed) < len(sent):
                    echoed.append(await client.recv())
                assert await client.ping() >= 0
        elif kind == "close":
            await client.close()
            closed = True
        states.append(client.state)
        assert client.stats.read_buffer_size <= bound
        assert server.stats.read_buffer_size <= bound
    if not closed:
        # Read the echoes still on their way, then close.
        async with asyncio.timeout(5):
            while len(echoed) < len(sent):
                echoed.append(await client.recv())
        await client.close()
    states.append(client.state)
    assert states == sorted(states)  # states only move forward
    # What is still queued was received before the close: deliver it.
    while True:
        try:
            echoed.append(await client.recv())
        except ConnectionClosed:
            break
    await asyncio.wait_for(handler_done.wait(), 5)
    assert recorded == sent  # the server got every message exactly once, in order
    assert echoed == sent[: len(echoed)]  # echoes in order, none twice, none invented
    if not any(operation[0] == "close" for operation in operations):
        assert echoed == sent
    await server.wait_closed()


@FUZZ
@given(operations=st.lists(operation, max_size=25))
def test_arbitrary_api_call_sequences(operations):
    asyncio.run(run_operations(operations))


def test_bound_used_above_is_the_documented_one():
    assert memory_bound(2, 2**20, 2**16) - 2 * 2**20 + READ_CHUNK == (
        2 * 2**20 + 2 * READ_CHUNK + 2**16
    )
    assert math.isinf(memory_bound(math.inf, 1, 1))
