"""Pure unit tests of the sans-I/O layer: bytes in, events and bytes out.
No event loop, no sockets."""

from __future__ import annotations

import math
import os
import struct
import subprocess
import sys

import pytest

from tests.support import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_TEXT, close_payload, frame
from websockets_lite import Close, InvalidHandshake, InvalidStatus, Request, Response
from websockets_lite.protocol import MAX_BODY_SIZE, Pong, Protocol, Side, State


def drain(protocol: Protocol) -> list[object]:
    events = []
    while (event := protocol.next_event()) is not None:
        events.append(event)
    return events


def handshake(subprotocols: tuple[str, ...] = (), server_picks: str | None = None, **kwargs):
    client = Protocol(Side.CLIENT, **kwargs)
    server = Protocol(Side.SERVER, **kwargs)
    server.receive_data(client.send_request("example.com", "/chat?x=1", subprotocols=subprotocols))
    [request] = drain(server)
    assert isinstance(request, Request)
    client.receive_data(server.accept(server_picks))
    assert drain(client) == []
    return client, server


def deliver(sender: Protocol, receiver: Protocol, data: bytes = b"") -> list[object]:
    receiver.receive_data(data + sender.data_to_send())
    return drain(receiver)


class TestHandshake:
    def test_request_and_accept(self):
        client, server = handshake(("chat", "superchat"), server_picks="superchat")
        assert client.state is State.OPEN and server.state is State.OPEN
        assert client.opened and server.opened
        assert server.request.path == "/chat?x=1"
        assert server.request.headers["host"] == "example.com"
        assert server.request.headers["Sec-WebSocket-Protocol"] == "chat, superchat"
        assert client.response.status == 101
        assert client.subprotocol == server.subprotocol == "superchat"

    def test_heads_on_the_wire(self):
        client = Protocol(Side.CLIENT, compression=None)
        request = client.send_request("h", "/p?q=1", headers=[("X-Pad", "  a b  ")])
        key = client.request.headers["Sec-WebSocket-Key"]
        assert request == (
            b"GET /p?q=1 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + key.encode() + b"\r\nSec-WebSocket-Version: 13\r\n"
            b"X-Pad: a b\r\n\r\n"
        )
        server = Protocol(Side.SERVER)
        server.receive_data(request)
        [_] = drain(server)
        assert server.request.headers["X-Pad"] == "a b"
        response = server.accept()
        assert response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
        assert response.endswith(b"\r\n\r\n") and response.count(b"\r\n\r\n") == 1

    @pytest.mark.parametrize(
        "name, value",
        [("X-A", "1\r\nInjected: yes"), ("X-A", "1\nx"), ("X-A", "\x00"), ("Bad Name", "1"),
         ("X-A:", "1"), ("X-A", "\u20ac")],
    )
    def test_headers_that_cannot_be_sent_are_a_value_error(self, name, value):
        client = Protocol(Side.CLIENT)
        with pytest.raises(ValueError):
            client.send_request("h", "/", headers=[(name, value)])
        server = Protocol(Side.SERVER)
        server.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        drain(server)
        with pytest.raises(ValueError):
            server.reject(Response(403, [(name, value)]))

    def test_a_path_with_spaces_or_a_status_out_of_range_is_a_value_error(self):
        with pytest.raises(ValueError):
            Protocol(Side.CLIENT).send_request("h", "/a b")
        server = Protocol(Side.SERVER)
        server.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        drain(server)
        with pytest.raises(ValueError):
            server.reject(Response(101))

    def test_trailing_data_after_response_is_a_message(self):
        client = Protocol(Side.CLIENT)
        server = Protocol(Side.SERVER)
        server.receive_data(client.send_request("h", "/"))
        drain(server)
        client.receive_data(server.accept() + server.send_text("early"))
        assert drain(client) == ["early"]

    def test_rejection_with_body_is_invalid_status(self):
        client = Protocol(Side.CLIENT)
        client.send_request("h", "/")
        client.receive_data(
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\nX-Why: no\r\n\r\nnot ok"
        )
        assert drain(client) == []
        assert client.state is State.CLOSED and not client.opened
        exc = client.handshake_exc
        assert isinstance(exc, InvalidStatus)
        assert (exc.status, exc.body, exc.headers["x-why"]) == (403, b"not ok", "no")

    def test_rejection_body_is_capped(self):
        client = Protocol(Side.CLIENT)
        client.send_request("h", "/")
        client.receive_data(b"HTTP/1.1 500 Oops\r\n\r\n")  # body until EOF
        client.receive_data(b"x" * (MAX_BODY_SIZE + 1000))
        drain(client)
        assert isinstance(client.handshake_exc, InvalidStatus)
        assert len(client.handshake_exc.body) == MAX_BODY_SIZE

    def test_rejection_body_until_eof(self):
        client = Protocol(Side.CLIENT)
        client.send_request("h", "/")
        client.receive_data(b"HTTP/1.1 503 Busy\r\n\r\ncome back later")
        drain(client)
        client.receive_eof()
        drain(client)
        assert client.handshake_exc.body == b"come back later"

    @pytest.mark.parametrize(
        "response, message",
        [
            (b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Accept: wrong\r\n\r\n", "Sec-WebSocket-Accept"),
            (b"HTTP/1.1 101 OK\r\nConnection: Upgrade\r\n\r\n", "Upgrade"),
            (b"garbage\r\n\r\n", "illegal"),
        ],
    )
    def test_malformed_response_is_invalid_handshake(self, response, message):
        client = Protocol(Side.CLIENT)
        client.send_request("h", "/")
        client.receive_data(response)
        drain(client)
        assert isinstance(client.handshake_exc, InvalidHandshake)
        assert message in str(client.handshake_exc)
        assert client.state is State.CLOSED

    def test_subprotocol_not_offered_is_invalid_handshake(self):
        client = Protocol(Side.CLIENT)
        server = Protocol(Side.SERVER)
        server.receive_data(client.send_request("h", "/", subprotocols=["chat"]))
        drain(server)
        server.request.headers.add("Sec-WebSocket-Protocol", "other")
        client.receive_data(server.accept("other"))
        drain(client)
        assert "not offered" in str(client.handshake_exc)

    def test_eof_during_handshake(self):
        client = Protocol(Side.CLIENT)
        client.send_request("h", "/")
        client.receive_eof()
        drain(client)
        assert isinstance(client.handshake_exc, InvalidHandshake)
        server = Protocol(Side.SERVER)
        server.lost()
        assert isinstance(server.handshake_exc, InvalidHandshake)

    def test_server_answers_garbage_with_400(self):
        server = Protocol(Side.SERVER)
        server.receive_data(b"NOT HTTP AT ALL\r\n\r\n")
        assert drain(server) == []
        assert server.state is State.CLOSED
        assert server.data_to_send().startswith(b"HTTP/1.1 400 ")

    def test_server_answers_oversized_headers_with_431(self):
        server = Protocol(Side.SERVER)
        server.receive_data(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 20_000)
        assert drain(server) == []
        assert server.data_to_send().startswith(b"HTTP/1.1 431 ")

    def test_server_answers_a_complete_but_oversized_head_with_431(self):
        # h11 alone bounds only incomplete heads: 129 short headers, or one
        # header of 20 KB arriving at once, must be refused too.
        for extra in (b"X-A: b\r\n" * 129, b"Cookie: " + b"c" * 20_000 + b"\r\n"):
            server = Protocol(Side.SERVER)
            server.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\n" + extra + b"\r\n")
            assert drain(server) == []
            assert server.data_to_send().startswith(b"HTTP/1.1 431 ")

    def test_client_refuses_an_oversized_response_head(self):
        client = Protocol(Side.CLIENT)
        client.send_request("h", "/")
        client.receive_data(b"HTTP/1.1 101 OK\r\n" + b"X-A: b\r\n" * 200 + b"\r\n")
        drain(client)
        assert "too large" in str(client.handshake_exc)

    @pytest.mark.parametrize(
        "request_bytes, status",
        [
            (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 426),
            (b"POST / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Content-Length: 0\r\n\r\n", 405),
            (b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
             426),
            (b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: \xe9\xe9\r\n\r\n", 400),
        ],
    )
    def test_invalid_upgrade_gets_an_answer(self, request_bytes, status):
        server = Protocol(Side.SERVER)
        server.receive_data(request_bytes)
        [_] = drain(server)
        assert server.upgrade_error is not None and server.upgrade_error.status == status
        assert server.reject(server.upgrade_error).startswith(b"HTTP/1.1 %d " % status)
        assert server.state is State.CLOSED

    def test_wrong_version_answer_names_the_right_one(self):
        server = Protocol(Side.SERVER)
        server.receive_data(
            b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        drain(server)
        assert server.upgrade_error.headers["Sec-WebSocket-Version"] == "13"


class TestMessages:
    def test_text_and_binary_both_ways(self):
        client, server = handshake()
        assert deliver(client, server, client.send_text("héllo")) == ["héllo"]
        assert deliver(client, server, client.send_binary(b"\x00\xff")) == [b"\x00\xff"]
        assert deliver(server, client, server.send_text("")) == [""]
        assert deliver(server, client, server.send_binary(bytearray(b"ba"))) == [b"ba"]

    def test_fragments_are_assembled(self):
        client, server = handshake()
        data = b"".join(
            client.send_fragment(part, fin)
            for part, fin in [("é", False), ("t", False), ("é", True)]
        )
        assert deliver(client, server, data) == ["été"]
        data = client.send_fragment(b"a", False) + client.send_fragment(b"b", True)
        assert deliver(client, server, data) == [b"ab"]

    def test_mixing_text_and_binary_fragments_is_a_type_error(self):
        client, _ = handshake()
        client.send_fragment("a", False)
        with pytest.raises(TypeError):
            client.send_fragment(b"b", True)

    def test_bytes_fed_one_at_a_time(self):
        client, server = handshake()
        data = client.send_text("x" * 300) + client.send_binary(b"y" * 70_000)
        events = []
        for i in range(len(data)):
            server.receive_data(data[i : i + 1])
            events += drain(server)
        assert events == ["x" * 300, b"y" * 70_000]

    def test_parsing_is_lazy(self):
        # Events are parsed only when pulled: what is not pulled stays as
        # unparsed bytes, which is how the connection stalls the parser.
        client, server = handshake()
        one, two, three = (client.send_binary(bytes(1000)) for _ in range(3))
        server.receive_data(one + two + three)
        assert server.next_event() == bytes(1000)
        assert server.buffered_bytes() == len(two) + len(three)
        assert drain(server) == [bytes(1000), bytes(1000)]
        assert server.buffered_bytes() == 0

    def test_ping_is_answered_and_pong_reported(self):
        client, server = handshake()
        assert deliver(client, server, client.send_ping(b"abc")) == []
        assert deliver(server, client) == [Pong(b"abc")]

    def test_held_pongs_keep_only_the_latest(self):
        client, server = handshake()
        server.hold_pongs = True
        deliver(client, server, b"".join(client.send_ping(b"%d" % i) for i in range(100)))
        assert server.data_to_send() == b""
        client.receive_data(server.pong)
        assert drain(client) == [Pong(b"99")]


class TestLongFrames:
    """Frames of 126 bytes or more that are not wholly buffered (and every
    frame of 64 KiB or more) are parsed by the protocol layer as they
    arrive, not by wsproto: the same events, fewer copies."""

    CHUNK = 256 * 1024

    def feed(self, server: Protocol, data: bytes, chunk: int) -> list[object]:
        events = []
        for start in range(0, len(data), chunk):
            server.receive_data(data[start : start + chunk])
            events += drain(server)
            if server._long is not None:
                # Held while it arrives: the payload so far, nothing more.
                received = min(len(data), start + chunk)
                assert server.buffered_bytes() <= received
        return events

    @pytest.mark.parametrize("chunk", [1000, 4093, CHUNK])
    def test_large_binary_message(self, chunk):
        client, server = handshake(max_message_size=2**21)
        payload = bytes(range(256)) * 4096  # 1 MiB
        data = client.send_binary(payload)
        assert self.feed(server, data, chunk) == [payload]
        assert server._long is None and server.buffered_bytes() == 0

    def test_large_text_split_inside_characters(self):
        client, server = handshake(max_message_size=2**21)
        text = "é€😀x" * 30_000
        data = client.send_text(text)
        assert self.feed(server, data, 1001) == [text]

    @pytest.mark.parametrize("text", [False, True])
    def test_tiny_reads_take_no_more_memory_than_the_payload(self, text):
        # A peer may send a long frame a few bytes at a time: what is held
        # stays about the payload's size, not one object per read.
        import tracemalloc

        client, server = handshake(max_message_size=2**21)
        message = "é€😀x" * 20_000 if text else bytes(range(256)) * 800
        data = client.send_text(message) if text else client.send_binary(message)
        payload = len(data) - 14
        events = []
        tracemalloc.start()
        try:
            for start in range(0, len(data), 7):
                server.receive_data(data[start : start + 7])
                events += drain(server)
                if server._long is not None:
                    assert server.buffered_bytes() <= min(start + 7, payload)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert events == [message]
        assert peak < 3 * payload + 2**17, (peak, payload)

    @pytest.mark.parametrize("text", [False, True])
    def test_tiny_reads_then_a_stream(self, text):
        client, server = handshake(max_message_size=2**21)
        message = "é€😀x" * 10_000 if text else bytes(range(256)) * 400
        data = client.send_text(message) if text else client.send_binary(message)
        for start in range(0, 70_007, 7):  # over _GATHERED: some pieces made, some gathered
            server.receive_data(data[start : start + 7])
        assert drain(server) == []
        server.stream_next = True
        server.receive_data(data[70_007:])
        pieces = drain(server)
        assert [piece.last for piece in pieces] == [True]
        assert pieces[0].data == message
        assert server._long is None and server.buffered_bytes() == 0

    def test_a_whole_message_answers_a_stream_request(self):
        client, server = handshake(max_message_size=2**21)
        server.stream_next = True
        server.receive_data(client.send_binary(b"whole"))
        assert drain(server) == [b"whole"] and not server.stream_next
        data = client.send_binary(b"x" * 100_000)
        server.receive_data(data[:50_000])
        server.receive_data(data[50_000:])
        assert drain(server) == [b"x" * 100_000]  # not streamed: nobody asked

    def test_client_side_reads_unmasked_frames(self):
        client, server = handshake(max_message_size=2**21)
        payload = b"z" * 300_000
        client.receive_data(server.send_binary(payload)[:100_000])
        assert drain(client) == []
        assert client._long is not None
        client.receive_data(server.send_binary(payload)[100_000:])
        assert drain(client) == [payload]

    def test_invalid_utf8_fails_before_the_frame_ends(self):
        client, server = handshake(max_message_size=2**21)
        data = client.send_text("x" * 200_000)
        # Corrupt one byte early in the payload (after the 14-byte header).
        key = data[10:14]
        corrupt = bytearray(data)
        corrupt[20] = 0xFF ^ key[(20 - 14) % 4]
        server.receive_data(bytes(corrupt[:1000]))
        assert drain(server) == []
        assert server.close_sent.code == 1007 and server.state is State.CLOSED
        assert server.peer_error.code == 1007

    def test_streamed_from_the_start_or_midway(self):
        client, server = handshake(max_message_size=2**21)
        payload = b"a" * 100_000 + b"b" * 100_000
        data = client.send_binary(payload)
        server.receive_data(data[:50_000])
        assert drain(server) == []
        server.stream_next = True  # the application asks for a stream now
        server.receive_data(data[50_000:150_000])
        first = drain(server)
        server.receive_data(data[150_000:])
        second = drain(server)
        assert [piece.last for piece in first + second] == [False, True]
        assert b"".join(piece.data for piece in first + second) == payload
        assert len(first[0].data) == 150_000 - 14  # what came before, first

    def test_over_the_limit_is_left_to_wsproto(self):
        client, server = handshake(max_message_size=100_000)
        server.receive_data(client.send_binary(b"x" * 100_001)[:50_000])
        assert drain(server) == []
        assert server._long is None and server.state is State.OPEN
        server.receive_data(client.send_binary(b"x" * 100_001)[50_000:])
        assert drain(server) == []
        assert server.close_sent.code == 1009

    def test_non_minimal_length_is_a_protocol_error(self):
        _, server = handshake()
        # 200 bytes with the 64-bit length encoding: wsproto refuses it.
        server.receive_data(b"\x82\xff" + struct.pack("!Q", 200) + b"mask" + b"x" * 200)
        assert drain(server) == []
        assert server.close_sent.code == 1002


def test_large_messages_are_framed_in_two_parts():
    client, server = handshake(max_message_size=2**23)
    text, data = "é" * 2**20, bytes(range(256)) * 2**12
    assert server.send_parts("small") is None and server.send_parts(b"x" * 1000) is None
    for message in (text, data, bytearray(data), memoryview(data)):
        parts = server.send_parts(message)
        assert len(parts) == 2
        if isinstance(message, str):
            assert b"".join(parts) == server.send_text(message)
        else:
            assert b"".join(parts) == server.send_binary(message)
        # Masked by a client: the server reads the same message back.
        server.receive_data(b"".join(client.send_parts(message)))
        assert drain(server) == [message if isinstance(message, str) else data]


def test_large_memoryviews_are_framed_by_their_size_in_bytes():
    import array

    client, server = handshake(max_message_size=2**24)
    numbers = array.array("d", range(2**17))  # 1 MiB, 8 bytes an item
    raw = numbers.tobytes()
    square = memoryview(raw).cast("B", (2**10, 2**10))
    for view in (memoryview(numbers), memoryview(bytes(2**21))[::2], square):
        expected = bytes(view)
        for sender, receiver in ((client, server), (server, client)):
            parts = sender.send_parts(view)
            header = 14 if sender is client else 10
            assert parts is not None and sum(map(len, parts)) == len(expected) + header
            receiver.receive_data(b"".join(parts))
            assert drain(receiver) == [expected]


class TestMaskers:
    def test_every_masker_agrees(self):
        from websockets_lite.protocol import frames

        maskers = [frames._python_mask]
        try:
            from websockets_lite.speedups import apply_mask
        except ImportError:  # no compiler when installed
            pass
        else:
            maskers.append(apply_mask)
        import websockets.speedups

        maskers.append(websockets.speedups.apply_mask)
        data = bytes(range(256)) * 300
        for size in [*range(0, 40), 255, 767, 768, 1023, 1024, 4097, 65536, len(data)]:
            for key in (b"\x00\x00\x00\x00", b"\x01\x02\x03\x04", bytearray(b"\xff\x80ab")):
                shifted = memoryview(data)[3 : 3 + size]
                for payload in (data[:size], bytearray(data[:size]), shifted):
                    expected = bytes(b ^ key[i % 4] for i, b in enumerate(bytes(payload)))
                    for masker in maskers:
                        assert masker(payload, key) == expected, (masker, size)

    def test_the_pure_python_masker_can_be_forced(self):
        code = "from websockets_lite.protocol.frames import MASKER; print(MASKER)"
        forced = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env={**os.environ, "WEBSOCKETS_LITE_NO_SPEEDUPS": "1"},
        )
        assert forced.stdout.strip() == "python"


class TestLimits:
    def assert_refused(self, client: Protocol, server: Protocol, reason: str) -> None:
        assert server.state is State.CLOSING
        assert server.close_sent == Close(1009, server.close_sent.reason)
        assert reason in server.close_sent.reason
        # A clean closing handshake follows: the client echoes 1009.
        assert deliver(server, client) == []
        assert client.close_rcvd.code == 1009 and client.state is State.CLOSED
        assert deliver(client, server) == []
        assert server.state is State.CLOSED and server.close_rcvd.code == 1009

    @pytest.mark.parametrize("message", ["é" * 600, b"x" * 1025])
    def test_oversized_message(self, message):
        client, server = handshake(max_message_size=1024)
        send = client.send_text if isinstance(message, str) else client.send_binary
        assert deliver(client, server, send(message)) == []
        self.assert_refused(client, server, "over 1024 bytes")

    def test_text_counts_utf8_bytes_not_characters(self):
        client, server = handshake(max_message_size=1024)
        assert deliver(client, server, client.send_text("é" * 512)) == ["é" * 512]
        assert deliver(client, server, client.send_text("é" * 513)) == []
        assert server.state is State.CLOSING

    @pytest.mark.parametrize("part", ["é" * 100, b"x" * 200])
    def test_oversized_fragmented_message_fails_before_it_ends(self, part):
        client, server = handshake(max_message_size=1024)
        data = b"".join(client.send_fragment(part, False) for _ in range(6))
        assert deliver(client, server, data) == []
        self.assert_refused(client, server, "over 1024 bytes")
        # Later fragments and messages are discarded, not assembled.
        assert server.buffered_bytes() == 0

    def test_huge_declared_length_fails_as_data_arrives(self):
        _, server = handshake(max_message_size=1024)
        server.receive_data(frame(OP_BINARY, b"x" * 2000, length=2**40))
        assert drain(server) == []
        assert server.close_sent.code == 1009
        assert server.buffered_bytes() == 0

    def test_length_with_top_bit_set_is_a_protocol_error(self):
        _, server = handshake()
        server.receive_data(b"\x82\xff" + struct.pack("!Q", 2**63) + b"mask")
        assert drain(server) == []
        assert server.close_sent.code == 1002 and server.state is State.CLOSED

    def test_too_many_fragments(self):
        client, server = handshake(max_fragments=10)
        data = b"".join(client.send_fragment(b"", False) for _ in range(11))
        assert deliver(client, server, data) == []
        self.assert_refused(client, server, "over 10 fragments")

    def test_limits_can_be_disabled(self):
        client, server = handshake(max_message_size=math.inf, max_fragments=math.inf)
        data = b"".join(client.send_fragment(b"ab", False) for _ in range(5000))
        data += client.send_fragment(b"", True)
        assert deliver(client, server, data) == [b"ab" * 5000]


class TestFailures:
    @pytest.mark.parametrize(
        "data, code",
        [
            (frame(3, b""), 1002),  # reserved opcode
            (frame(OP_TEXT, b"\xff\xfe"), 1007),  # invalid UTF-8
            (frame(OP_TEXT, b"x", mask=False), 1002),  # clients must mask
            (frame(OP_TEXT, b"x", rsv=4), 1002),  # reserved bit
            (bytes([0x82, 0xFE, 0, 5, 0, 0, 0, 0]) + b"hello", 1002),  # 2-byte length for 5
            (bytes([0x82, 0xFF, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]), 1002),  # 8 bytes for 256
            (frame(OP_CONT, b"x"), 1002),  # continuation without a start
            (frame(OP_PING, b"x", fin=False), 1002),  # fragmented control frame
            (frame(OP_CLOSE, b"\x03"), 1002),  # one-byte close payload
            (frame(OP_CLOSE, close_payload(1005)), 1002),  # local-only code
            (frame(OP_CLOSE, b"\x03\xe8\xff"), 1007),  # invalid UTF-8 reason
        ],
    )
    def test_protocol_errors_fail_the_connection(self, data, code):
        _, server = handshake()
        server.receive_data(data)
        assert drain(server) == []
        assert server.close_sent.code == code
        assert server.state is State.CLOSED
        assert struct.unpack("!H", server.data_to_send()[2:4])[0] == code
        # Anything after that is ignored, without an exception.
        server.receive_data(frame(OP_TEXT, b"ignored"))
        assert drain(server) == []

    def test_invalid_utf8_across_fragments_fails_early(self):
        _, server = handshake()
        server.receive_data(frame(OP_TEXT, b"ok", fin=False) + frame(OP_CONT, b"\xc0", fin=False))
        assert drain(server) == []
        assert server.close_sent.code == 1007


class TestClosing:
    def test_client_initiates(self):
        client, server = handshake()
        data = client.send_close(1000, "bye")
        assert client.state is State.CLOSING
        assert deliver(client, server, data) == []
        assert server.state is State.CLOSED
        assert (server.close_rcvd, server.close_sent) == (Close(1000, "bye"), Close(1000, "bye"))
        assert server.close_rcvd_then_sent is True
        assert deliver(server, client) == []
        assert client.state is State.CLOSED
        assert client.close_rcvd == Close(1000, "bye") and client.close_rcvd_then_sent is False

    def test_messages_after_our_close_are_still_parsed(self):
        client, server = handshake()
        data = client.send_close()
        assert deliver(server, client, server.send_text("in flight")) == ["in flight"]
        server.receive_data(data)
        drain(server)
        assert server.state is State.CLOSED

    def test_close_in_the_middle_of_a_fragmented_message(self):
        # Autobahn 7.1.5: control frames may come between fragments.
        client, server = handshake()
        data = client.send_fragment("part", False) + client.send_close(1000)
        assert deliver(client, server, data) == []
        assert server.close_rcvd == Close(1000, "") and server.state is State.CLOSED

    def test_close_without_code_is_1005(self):
        _, server = handshake()
        server.receive_data(frame(OP_CLOSE))
        drain(server)
        assert server.close_rcvd.code == 1005
        assert server.data_to_send()[:2] == b"\x88\x00"  # echoed without a code

    def test_eof_without_close_frame(self):
        _, server = handshake()
        server.receive_eof()
        assert server.state is State.CLOSED and server.close_rcvd is None

    @pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 1016, 2999, 5000])
    def test_invalid_close_codes_are_refused(self, code):
        client, _ = handshake()
        with pytest.raises(ValueError):
            client.send_close(code)
        assert client.state is State.OPEN

    def test_reason_over_123_bytes_is_refused(self):
        client, _ = handshake()
        with pytest.raises(ValueError):
            client.send_close(1000, "é" * 62)
        client.send_close(4999, "x" * 123)
        assert client.state is State.CLOSING

    def test_no_pong_after_close(self):
        client, server = handshake()
        server.hold_pongs = True
        deliver(client, server, client.send_ping(b"p"))
        assert server.pong is not None
        server.send_close()
        assert server.pong is None


def test_pongs_of_one_batch_are_capped():
    from websockets_lite.protocol import MAX_PONG_BYTES

    client, server = handshake()
    pings = b"".join(client.send_ping(b"%0100d" % i) for i in range(2000))
    server.receive_data(pings)
    drain(server)
    replies = server.data_to_send()
    assert MAX_PONG_BYTES <= len(replies) < MAX_PONG_BYTES + 200
    client.receive_data(server.pong)
    assert drain(client) == [Pong(b"%0100d" % 1999)]  # the latest one
