"""Interoperability with the websockets library (a test-only dependency):
our client against its server, its client against our server."""

from __future__ import annotations

import pytest
import websockets
import websockets.asyncio.client
import websockets.asyncio.server

from tests.conftest import echo
from websockets_lite import ConnectionClosedError, ConnectionClosedOK, connect

MESSAGES = [
    "text é",
    b"\x00binary\xff",
    "",
    "x" * 2**20,  # 1 MiB
    bytes(range(256)) * 4096,
]


async def websockets_echo(ws) -> None:
    async for message in ws:
        await ws.send(message)


@pytest.fixture(params=["deflate", None], ids=["compressed", "uncompressed"])
def compression(request):
    return request.param


class TestOurClientTheirServer:
    async def test_messages(self, compression):
        async with websockets.asyncio.server.serve(
            websockets_echo, "127.0.0.1", 0, max_size=2**21, compression=compression
        ) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(
                f"ws://127.0.0.1:{port}/", max_message_size=2**21, compression=compression
            ) as ws:
                assert (ws.protocol.deflate is not None) == (compression is not None)
                for message in MESSAGES:
                    await ws.send(message)
                    assert await ws.recv() == message
                await ws.send(["frag", "ment", "ed"])
                assert await ws.recv() == "fragmented"
                await ws.send([b"a", b"b"])
                assert await ws.recv() == b"ab"

    async def test_fragmented_from_their_side(self):
        async def handler(ws):
            await ws.send(["one ", "two"])
            await ws.send(iter([b"\x01", b"\x02"]))

        async with websockets.asyncio.server.serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}/") as ws:
                assert [await ws.recv(), await ws.recv()] == ["one two", b"\x01\x02"]

    @pytest.mark.parametrize("code, ok", [(1000, True), (1001, True), (4000, False)])
    async def test_close_codes(self, code, ok):
        async def handler(ws):
            await ws.close(code, "their reason")

        async with websockets.asyncio.server.serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}/") as ws:
                with pytest.raises(ConnectionClosedOK if ok else ConnectionClosedError):
                    await ws.recv()
            assert (ws.close_code, ws.close_reason) == (code, "their reason")

    async def test_our_close_code_reaches_them(self):
        seen = []

        async def handler(ws):
            try:
                await ws.recv()
            except websockets.ConnectionClosed as exc:
                seen.append(exc)

        async with websockets.asyncio.server.serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}/") as ws:
                await ws.close(4321, "ours")
        assert (seen[0].rcvd.code, seen[0].rcvd.reason) == (4321, "ours")

    async def test_subprotocols(self):
        async with websockets.asyncio.server.serve(
            lambda ws: ws.send(ws.subprotocol), "127.0.0.1", 0, subprotocols=["chat", "v2"]
        ) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}/", subprotocols=["v2"]) as ws:
                assert ws.subprotocol == "v2" and await ws.recv() == "v2"

    async def test_their_ping_and_our_ping(self):
        async def handler(ws):
            latency = await (await ws.ping())
            await ws.send(str(latency >= 0))  # uvloop's clock has millisecond steps
            await ws.wait_closed()

        async with websockets.asyncio.server.serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}/") as ws:
                assert await ws.ping() > 0
                assert await ws.recv() == "True"


class TestTheirClientOurServer:
    async def test_messages(self, start_server, compression):
        server = await start_server(echo, max_message_size=2**21, compression=compression)
        async with websockets.asyncio.client.connect(
            server.uri, max_size=2**21, compression=compression
        ) as ws:
            extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
            assert (extensions is not None) == (compression is not None)
            for message in MESSAGES:
                await ws.send(message)
                assert await ws.recv() == message
            await ws.send(["frag", "ment", "ed"])
            assert await ws.recv() == "fragmented"

    @pytest.mark.parametrize("code", [1000, 1001, 1011, 4000])
    async def test_close_codes(self, start_server, code):
        server = await start_server(lambda ws: ws.close(code, "our reason"))
        async with websockets.asyncio.client.connect(server.uri) as ws:
            with pytest.raises(websockets.ConnectionClosed) as info:
                await ws.recv()
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (code, "our reason")

    async def test_their_close_code_reaches_us(self, start_server):
        seen = []

        async def handler(ws):
            try:
                await ws.recv()
            except ConnectionClosedError as exc:
                seen.append(exc)

        server = await start_server(handler)
        async with websockets.asyncio.client.connect(server.uri) as ws:
            await ws.close(4999, "theirs")
        assert (seen[0].code, seen[0].reason) == (4999, "theirs")

    async def test_subprotocols(self, start_server):
        server = await start_server(lambda ws: ws.send(str(ws.subprotocol)),
                                    subprotocols=["chat", "v2"])
        async with websockets.asyncio.client.connect(server.uri, subprotocols=["v2"]) as ws:
            assert ws.subprotocol == "v2" and await ws.recv() == "v2"

    async def test_oversized_message_gets_1009(self, start_server):
        server = await start_server(echo, max_message_size=1000)
        async with websockets.asyncio.client.connect(server.uri) as ws:
            await ws.send("x" * 1001)
            with pytest.raises(websockets.ConnectionClosed) as info:
                await ws.recv()
        assert info.value.rcvd.code == 1009
