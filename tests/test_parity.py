"""What websockets users write, through the core API: decode/text, streaming,
pong, HTTP answers in the handshake, server header, application attributes,
start_serving, and the exception names. The real websockets library is the
peer where one is involved."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import websockets.asyncio.client
import websockets.exceptions

from tests.conftest import echo
from tests.support import OP_BINARY, OP_CONT, OP_TEXT, RawPeer, frame, until
from websockets_lite import (
    ConcurrencyError,
    ConnectionClosedError,
    HandshakeError,
    Headers,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    NegotiationError,
    PayloadTooBig,
    Response,
    SecurityError,
    ServerProtocol,
    connect,
    serve,
)
from websockets_lite.server import SERVER


class TestDecodeAndText:
    async def test_recv_decode_and_send_text(self, start_server):
        server = await start_server(echo)
        async with connect(server.uri) as ws:
            await ws.send("café")
            assert await ws.recv(decode=False) == "café".encode()
            await ws.send("café".encode(), text=True)  # bytes as a text frame
            assert await ws.recv() == "café"
            await ws.send("café", text=False)  # str as a binary frame
            assert await ws.recv() == "café".encode()
            await ws.send(b"caf\xc3\xa9")
            assert await ws.recv(decode=True) == "café"
            await ws.send(b"\xff")
            with pytest.raises(UnicodeDecodeError):
                await ws.recv(decode=True)

    async def test_text_true_with_invalid_utf8_is_refused_here(self, start_server):
        server = await start_server(echo)
        async with connect(server.uri) as ws:
            with pytest.raises(UnicodeDecodeError):
                await ws.send(b"\xff", text=True)


class TestStreaming:
    async def test_fragments_arrive_as_they_are_sent(self, start_server):
        pieces: list = []
        got_first = asyncio.Event()

        async def handler(ws):
            async for piece in ws.recv_streaming():
                pieces.append(piece)
                got_first.set()
            await ws.send("done")

        server = await start_server(handler)
        release = asyncio.Event()

        async def fragments():
            yield "Hello, "
            await release.wait()  # the first piece is there before the rest is sent
            yield "wörld"

        async with websockets.asyncio.client.connect(server.uri) as ws:
            sending = asyncio.ensure_future(ws.send(fragments()))
            await got_first.wait()
            assert pieces == ["Hello, "]
            release.set()
            await sending
            assert await ws.recv() == "done"
        assert "".join(pieces) == "Hello, wörld"

    async def test_a_whole_message_is_one_piece_and_decode_works(self, start_server):
        results = []

        async def handler(ws):
            results.append([p async for p in ws.recv_streaming(decode=False)])
            results.append(await ws.recv())

        server = await start_server(handler)
        async with connect(server.uri) as ws:
            await ws.send("whole")
            await ws.send("after")
            await until(lambda: len(results) == 2)
        assert results == [[b"whole"], "after"]

    async def test_size_limit_holds_while_streaming(self, start_server):
        errors = []

        async def handler(ws):
            try:
                async for _ in ws.recv_streaming():
                    pass
            except ConnectionClosedError as exc:
                errors.append(exc)

        server = await start_server(handler, max_message_size=10)
        raw = await RawPeer.connect(server.port)
        raw.send(frame(OP_BINARY, b"x" * 6, fin=False))
        raw.send(frame(OP_CONT, b"x" * 6, fin=True))
        assert (await raw.read_close())[0] == 1009
        await until(lambda: errors)
        assert errors[0].sent.code == 1009
        assert isinstance(errors[0].__cause__, PayloadTooBig)
        raw.abort()

    async def test_second_consumer_and_leaving_midway(self, start_server):
        outcome = []

        async def handler(ws):
            stream = ws.recv_streaming()
            first = await stream.__anext__()
            with pytest.raises(ConcurrencyError):
                await ws.recv()
            with pytest.raises(ConcurrencyError):
                await ws.recv_streaming().__anext__()
            await stream.aclose()  # left midway: the rest of that message is dropped
            outcome.append((first, await ws.recv()))

        server = await start_server(handler)
        raw = await RawPeer.connect(server.port)
        raw.send(frame(OP_TEXT, b"one", fin=False))
        await until(lambda: server.server.connections)
        await asyncio.sleep(0.05)
        raw.send(frame(OP_CONT, b" two", fin=False) + frame(OP_CONT, b" three"))
        raw.send(frame(OP_TEXT, b"next message"))
        await until(lambda: outcome)
        assert outcome == [("one", "next message")]
        raw.abort()

    async def test_cancelled_before_anything_arrived_loses_nothing(self, start_server):
        got = []

        async def handler(ws):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.05):
                    async for piece in ws.recv_streaming():
                        got.append(("piece", piece))
            got.append(("recv", await ws.recv()))

        server = await start_server(handler)
        raw = await RawPeer.connect(server.port)
        await asyncio.sleep(0.1)
        raw.send(frame(OP_TEXT, b"a", fin=False) + frame(OP_CONT, b"b"))
        await until(lambda: got)
        assert got == [("recv", "ab")]
        raw.abort()


async def test_pong(start_server):
    received = []

    async def handler(ws):
        await ws.pong(b"heartbeat")
        await ws.wait_closed()

    server = await start_server(handler)
    async with websockets.asyncio.client.connect(server.uri) as ws:
        # websockets ignores unsolicited pongs; what matters: it stays open.
        await asyncio.sleep(0.05)
        assert ws.state.name == "OPEN"
        received.append(True)
    async with connect(server.uri) as ws:
        with pytest.raises(ValueError):
            await ws.pong(b"x" * 126)


class TestHttpAnswers:
    async def test_respond_in_process_request(self, start_server):
        def health(connection, request):
            if request.path == "/healthz":
                return connection.respond(200, "OK\n")
            return None

        server = await start_server(echo, process_request=health)
        with pytest.raises(websockets.exceptions.InvalidStatus) as caught:
            await websockets.asyncio.client.connect(server.uri + "/healthz")
        assert caught.value.response.status_code == 200
        assert caught.value.response.body == b"OK\n"
        assert caught.value.response.headers["Server"] == SERVER

    @pytest.mark.parametrize("asynchronous", [False, True])
    async def test_process_response_changes_or_replaces(self, start_server, asynchronous):
        def process_response(connection, request, response):
            if request.path == "/refuse":
                return Response(403, body="no\n")
            response.headers["X-Seen"] = "yes"
            return None

        async def async_process_response(connection, request, response):
            await asyncio.sleep(0)
            return process_response(connection, request, response)

        server = await start_server(
            echo, process_response=async_process_response if asynchronous else process_response
        )
        async with connect(server.uri) as ws:
            assert ws.response.headers["X-Seen"] == "yes"
            await ws.send("still works")
            assert await ws.recv() == "still works"
        with pytest.raises(InvalidStatus) as caught:
            await connect(server.uri + "/refuse")
        assert caught.value.response.status == 403

    async def test_server_header(self, start_server):
        for value, expected in [(SERVER, SERVER), ("mine/1", "mine/1"), (None, None)]:
            server = await start_server(echo, server_header=value)
            async with connect(server.uri) as ws:
                assert ws.response.headers.get("Server") == expected
        assert SERVER.startswith("Python/3.") and "websockets_lite/" in SERVER


    async def test_repeated_header_names_are_kept(self, start_server):
        cookies = Headers([("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
        seen: list[list[str]] = []

        def process_request(connection, request):
            seen.append(request.headers.get_all("X-Tag"))
            if request.path == "/refuse":
                return Response(401, Headers(cookies), "no\n")
            return None

        def process_response(connection, request, response):
            for value in cookies.get_all("Set-Cookie"):
                response.headers.add("Set-Cookie", value)

        server = await start_server(
            echo, process_request=process_request, process_response=process_response
        )
        tags = Headers([("X-Tag", "1"), ("X-Tag", "2"), ("User-Agent", "mine")])
        async with connect(server.uri, additional_headers=tags) as ws:
            assert ws.response.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
            assert ws.request.headers.get_all("User-Agent") == ["mine"]
        with pytest.raises(websockets.exceptions.InvalidStatus) as caught:
            await websockets.asyncio.client.connect(
                server.uri + "/refuse", additional_headers=[("X-Tag", "3"), ("X-Tag", "4")]
            )
        assert caught.value.response.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
        assert caught.value.response.headers["Server"] == SERVER
        assert seen == [["1", "2"], ["3", "4"]]

async def test_application_attributes(start_server):
    seen = []

    async def handler(ws):
        ws.user = "alice"  # as websockets allows
        seen.append(ws.user)
        await ws.close()

    server = await start_server(handler)
    async with connect(server.uri) as ws:
        ws.session = {"n": 1}
        assert ws.session == {"n": 1}
        await ws.wait_closed()
    assert seen == ["alice"]


async def test_start_serving_false_then_serve_forever():
    async with serve(echo, "127.0.0.1", 0, start_serving=False) as server:
        assert not server.is_serving()
        assert server.get_loop() is asyncio.get_running_loop()
        port = server.sockets[0].getsockname()[1]
        task = asyncio.ensure_future(server.serve_forever())
        await until(server.is_serving)
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send("served")
            assert await ws.recv() == "served"
        task.cancel()
    async with serve(echo, "127.0.0.1", 0, start_serving=False) as server:
        await server.start_serving()
        assert server.is_serving()


class TestExceptionNames:
    async def test_tree(self):
        assert issubclass(InvalidStatus, InvalidHandshake)
        assert issubclass(InvalidHandshake, HandshakeError)
        assert issubclass(PayloadTooBig, websockets_lite_protocol_error())

    async def test_a_401_is_an_invalid_handshake_with_a_response(self, start_server):
        server = await start_server(echo, process_request=lambda ws, r: Response(401, body="no"))
        with pytest.raises(InvalidHandshake) as caught:
            await connect(server.uri)
        assert isinstance(caught.value, InvalidStatus)
        assert caught.value.response.status == 401 and caught.value.response.body == b"no"

    async def test_closed_during_the_handshake_is_invalid_message(self):
        async def close_at_once(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.close()

        server = await asyncio.start_server(close_at_once, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            with pytest.raises(InvalidMessage) as caught:
                await connect(f"ws://127.0.0.1:{port}/")
        assert isinstance(caught.value.__cause__, EOFError)

    async def test_subprotocol_not_offered_is_a_negotiation_error(self):
        async def bad_server(reader, writer):
            head = await reader.readuntil(b"\r\n\r\n")
            key = next(line.split(b": ")[1] for line in head.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key"))
            from wsproto.utilities import generate_accept_token

            writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                         + generate_accept_token(key) + b"\r\nSec-WebSocket-Protocol: evil\r\n\r\n")

        server = await asyncio.start_server(bad_server, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            with pytest.raises(NegotiationError):
                await connect(f"ws://127.0.0.1:{port}/", subprotocols=["chat"])

    async def test_redirect_loop_is_a_security_error(self, start_server):
        def loop_forever(ws, request):
            return Response(302, {"Location": request.path})

        server = await start_server(echo, process_request=loop_forever)
        with pytest.raises(SecurityError, match="redirects"):
            await connect(server.uri + "/again")


def websockets_lite_protocol_error():
    from websockets_lite import ProtocolError

    return ProtocolError


async def test_handlers_typed_with_the_server_connection(start_server):
    # ws.request is always there in a handler: typed without None.
    paths = []

    async def handler(ws: ServerProtocol) -> None:
        paths.append(ws.request.path)

    server = await start_server(handler)
    async with connect(server.uri + "/typed") as ws:
        await ws.wait_closed()
    assert paths == ["/typed"]
