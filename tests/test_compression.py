"""permessage-deflate (RFC 7692): negotiation (pure), traffic and the
decompression bomb (real sockets)."""

from __future__ import annotations

import asyncio
import os
import tracemalloc
import zlib

import pytest

from tests.support import OP_BINARY, ClosingRecorder, RawPeer, frame
from websockets_lite import InvalidHandshake, connect
from websockets_lite.protocol import Protocol, Side


def negotiate(offer: str, **kwargs) -> tuple[Protocol, str | None]:
    server = Protocol(Side.SERVER, compression="deflate", **kwargs)
    server.receive_data(
        RawPeer.request(extra=f"Sec-WebSocket-Extensions: {offer}\r\n".encode())
    )
    server.next_event()
    server.accept()
    return server, server.response.headers.get("Sec-WebSocket-Extensions")


class TestServerNegotiation:
    @pytest.mark.parametrize(
        "offer, response",
        [
            ("permessage-deflate", "server_max_window_bits=12"),
            ("permessage-deflate; client_max_window_bits",
             "server_max_window_bits=12; client_max_window_bits=12"),
            ("permessage-deflate; server_max_window_bits=10; client_max_window_bits=9",
             "server_max_window_bits=10; client_max_window_bits=9"),
            ("permessage-deflate; server_max_window_bits=15; client_max_window_bits=15",
             "server_max_window_bits=12; client_max_window_bits=12"),
            ("permessage-deflate; server_no_context_takeover; client_no_context_takeover",
             "server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12"),
            ('permessage-deflate; client_max_window_bits="10"',
             "server_max_window_bits=12; client_max_window_bits=10"),
        ],
    )
    def test_accepted(self, offer, response):
        server, header = negotiate(offer)
        assert header == f"permessage-deflate; {response}"
        assert server.deflate is not None and server.deflate.enabled()

    @pytest.mark.parametrize(
        "offer",
        [
            "permessage-deflate; unknown=1",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=8",  # zlib cannot deflate with 8
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "x-webkit-deflate-frame",
        ],
    )
    def test_declined(self, offer):
        server, header = negotiate(offer)
        assert header is None and server.deflate is None

    def test_first_acceptable_offer_wins(self):
        _, header = negotiate(
            "permessage-deflate; bogus, permessage-deflate; server_max_window_bits=11, "
            "permessage-deflate; server_max_window_bits=10"
        )
        assert header == "permessage-deflate; server_max_window_bits=11"

    def test_compression_off(self):
        server = Protocol(Side.SERVER, compression=None)
        offer = b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
        server.receive_data(RawPeer.request(extra=offer))
        server.next_event()
        server.accept()
        assert "Sec-WebSocket-Extensions" not in server.response.headers

    def test_unknown_compression_is_refused(self):
        with pytest.raises(ValueError):
            Protocol(Side.SERVER, compression="brotli")


class TestClientNegotiation:
    def respond(self, params: str) -> Protocol:
        client = Protocol(Side.CLIENT, compression="deflate")
        request = client.send_request("h", "/")
        offer = b"permessage-deflate; server_max_window_bits=12; client_max_window_bits\r\n"
        assert offer in request
        server = Protocol(Side.SERVER, compression=None)
        server.receive_data(request)
        server.next_event()
        response = server.accept(headers=[("Sec-WebSocket-Extensions", params)])
        client.receive_data(response)
        client.next_event()
        return client

    @pytest.mark.parametrize("client_bits, used", [(15, 12), (10, 10), (9, 9)])
    def test_client_window_is_the_smaller_of_ours_and_theirs(self, client_bits, used):
        client = self.respond(f"permessage-deflate; client_max_window_bits={client_bits}")
        assert client.opened and client.deflate.local_bits == used

    def test_accepted(self):
        client = self.respond(
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10"
        )
        assert client.opened
        deflate = client.deflate
        assert (deflate.remote_bits, deflate.local_bits) == (10, 12)
        assert deflate.remote_no_context_takeover and not deflate.local_no_context_takeover

    @pytest.mark.parametrize(
        "params",
        [
            "permessage-deflate; server_max_window_bits=13",  # above our offer
            "permessage-deflate; client_max_window_bits=8",
            "permessage-deflate; foo",
            "x-other",
            "permessage-deflate, permessage-deflate",
        ],
    )
    def test_invalid_response_fails_the_handshake(self, params):
        client = self.respond(params)
        assert isinstance(client.handshake_exc, InvalidHandshake)


def pair():
    client = Protocol(Side.CLIENT, compression="deflate")
    server = Protocol(Side.SERVER, compression="deflate")
    server.receive_data(client.send_request("h", "/"))
    server.next_event()
    client.receive_data(server.accept())
    client.next_event()
    return client, server


def test_messages_round_trip_compressed_and_context_is_kept():
    client, server = pair()
    text = "the same words again " * 50
    first = client.send_text(text)
    second = client.send_text(text)
    assert first[0] & 0x40 and len(first) < len(text) / 5  # rsv1 set, compressed
    assert len(second) < len(first)  # context takeover: the second is cheaper
    server.receive_data(first + second + client.send_fragment(b"ab", False)
                        + client.send_fragment(b"cd", True))
    assert [server.next_event() for _ in range(3)] == [text, text, b"abcd"]
    server.receive_data(client.send_ping(b"x"))  # control frames are never compressed
    assert server.next_event() is None


def test_no_context_takeover_drops_zlib_state_after_each_message():
    client, server = pair()
    server.deflate.local_no_context_takeover = True
    server.send_text("hello")
    assert server.deflate._encoder is None
    client.deflate.remote_no_context_takeover = True
    client.receive_data(server.send_text("hello"))
    assert client.next_event() == "hello" and client.deflate._decoder is None


def bomb(size: int) -> bytes:
    """A deflate stream of ``size`` zero bytes, about size / 1000 bytes long."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -12)
    zeros = bytes(2**20)
    data = b"".join(compressor.compress(zeros) for _ in range(size // 2**20))
    return (data + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


@pytest.fixture(scope="module")
def bomb_256mib() -> bytes:
    return bomb(256 * 2**20)


class TestOverSockets:
    async def test_negotiated_by_default_and_smaller_on_the_wire(self, start_server):
        async def handler(ws):
            await ws.send(await ws.recv())

        server = await start_server(handler)
        async with connect(server.uri) as ws:
            assert ws.protocol.deflate is not None
            assert "server_max_window_bits=12" in ws.response.headers["Sec-WebSocket-Extensions"]
            await ws.send("repetitive " * 10_000)
            assert await ws.recv() == "repetitive " * 10_000
            assert ws.stats.bytes_out < 2_000

    @pytest.mark.parametrize("side", ["client", "server"])
    async def test_either_side_can_disable_it(self, start_server, side):
        server = await start_server(
            lambda ws: ws.send("x" * 1000), compression=None if side == "server" else "deflate"
        )
        async with connect(server.uri, compression=None if side == "client" else "deflate") as ws:
            assert ws.protocol.deflate is None
            assert await ws.recv() == "x" * 1000

    async def test_decompression_bomb_is_closed_with_1009_and_memory_stays_bounded(
        self, start_server, bomb_256mib
    ):
        handler = ClosingRecorder()

        server = await start_server(handler)  # max_message_size: 1 MiB
        peer, head = await RawPeer.connect_with(
            server.port, b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
        )
        assert b"permessage-deflate" in head
        payload = frame(OP_BINARY, bomb_256mib, rsv=4)  # rsv1: compressed
        assert len(payload) < 300_000  # 256 MiB once inflated
        tracemalloc.start()
        try:
            peer.send(payload)
            await handler.error()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        [exc] = handler.errors
        assert exc.sent.code == 1009 and "decompressed" in exc.sent.reason
        assert peak < 8 * 2**20, f"peak {peak} bytes while refusing a 256 MiB bomb"
        assert (await peer.read_close())[0] == 1009
        peer.abort()

    async def test_bomb_within_a_fragmented_message(self, start_server):
        handler = ClosingRecorder()

        server = await start_server(handler, max_message_size=2**16)
        peer, _ = await RawPeer.connect_with(
            server.port, b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
        )
        stream = bomb(4 * 2**20)
        third = len(stream) // 3
        peer.send(
            frame(OP_BINARY, stream[:third], rsv=4, fin=False)
            + frame(0, stream[third : 2 * third], fin=False)
            + frame(0, stream[2 * third :])
        )
        await handler.error()
        assert handler.errors[0].sent.code == 1009
        peer.abort()

    async def test_garbage_in_a_compressed_frame_is_1007(self, start_server):
        handler = ClosingRecorder()

        server = await start_server(handler)
        peer, _ = await RawPeer.connect_with(
            server.port, b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
        )
        peer.send(frame(OP_BINARY, os.urandom(64) + b"\xff" * 64, rsv=4))
        await handler.error()
        assert handler.errors[0].sent.code in (1007, 1009)
        peer.abort()
        await asyncio.sleep(0)
