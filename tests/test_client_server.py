"""connect() and serve(): handshakes, timeouts, handler lifecycle, the
registry, shutdown, and the low-level protocols with asyncio.timeout()."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.conftest import echo
from tests.support import RawPeer, until
from websockets_lite import (
    ClientProtocol,
    ConnectionClosedError,
    ConnectionClosedOK,
    ConnectTimeout,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
    Response,
    ServerProtocol,
    State,
    connect,
    parse_uri,
    serve,
)


async def raw_http_server(answer: bytes | None):
    """A TCP server that reads a request head and writes ``answer`` (or nothing)."""

    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        if answer is not None:
            writer.write(answer)
            await writer.drain()
            writer.close()
        else:
            await reader.read()  # silent until the client goes away

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


class TestURI:
    @pytest.mark.parametrize(
        "uri, host, port, path, secure",
        [
            ("ws://example.com", "example.com", 80, "/", False),
            ("wss://example.com:8443/a/b?c=d", "example.com", 8443, "/a/b?c=d", True),
            ("ws://[::1]:9000/", "::1", 9000, "/", False),
            ("ws://h/with space", "h", 80, "/with%20space", False),
        ],
    )
    def test_valid(self, uri, host, port, path, secure):
        parsed = parse_uri(uri)
        assert (parsed.host, parsed.port, parsed.path, parsed.secure) == (host, port, path, secure)

    def test_host_header(self):
        assert parse_uri("ws://h:80/").host_header == "h"
        assert parse_uri("wss://h:80/").host_header == "h:80"
        assert parse_uri("ws://[::1]:81/").host_header == "[::1]:81"

    @pytest.mark.parametrize(
        "uri", ["http://example.com", "ws://", "ws://h:99999", "ws://h/#frag", "example.com"]
    )
    async def test_invalid_uri(self, uri):
        with pytest.raises(InvalidURI):
            await connect(uri)


class TestHandshake:
    async def test_request_is_visible_to_the_handler(self, start_server):
        seen = []

        async def handler(ws):
            seen.append(ws.request)
            await ws.send(ws.request.path)

        server = await start_server(handler)
        async with connect(
            server.uri + "/room/1?x=y",
            additional_headers={"Authorization": "Bearer t"},
            origin="https://example.org",
        ) as ws:
            assert await ws.recv() == "/room/1?x=y"
            assert ws.response.status == 101
        [request] = seen
        assert request.headers["authorization"] == "Bearer t"
        assert request.headers["Origin"] == "https://example.org"
        assert request.headers["User-Agent"].startswith("Python/")

    async def test_user_agent_can_be_omitted(self, start_server):
        seen = []
        server = await start_server(lambda ws: seen.append(ws.request) or ws.close())
        async with connect(server.uri, user_agent_header=None):
            pass
        assert "User-Agent" not in seen[0].headers

    @pytest.mark.parametrize(
        "ours, offered, agreed",
        [(["chat", "v2"], ["v2", "chat"], "chat"), (["chat"], ["other"], None), ([], ["x"], None)],
    )
    async def test_subprotocol(self, start_server, ours, offered, agreed):
        server = await start_server(lambda ws: ws.send(str(ws.subprotocol)), subprotocols=ours)
        async with connect(server.uri, subprotocols=offered) as ws:
            assert ws.subprotocol == agreed
            assert await ws.recv() == str(agreed)

    async def test_a_header_that_cannot_be_sent_is_a_value_error_before_any_byte(
        self, start_server
    ):
        seen = []
        server = await start_server(lambda ws: seen.append(ws) or ws.close())
        with pytest.raises(ValueError, match="X-Bad"):
            await connect(server.uri, additional_headers=[("X-Bad", "1\r\nInjected: yes")])
        async with connect(server.uri):  # the server is fine and saw nothing
            pass
        assert len(seen) == 1 and "Injected" not in seen[0].request.headers

    async def test_a_refusal_that_cannot_be_sent_is_a_500(self, start_server, caplog):
        def process_request(ws, request):
            return Response(403, [("X-Why", "line one\nline two")])

        server = await start_server(echo, process_request=process_request)
        with (
            caplog.at_level(logging.ERROR, logger="websockets_lite"),
            pytest.raises(InvalidStatus) as info,
        ):
            await connect(server.uri)
        assert info.value.status == 500
        assert "X-Why" in caplog.text

    async def test_non_101_answer_is_invalid_status(self):
        server, port = await raw_http_server(
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 7\r\nX-Reason: nope\r\n\r\nno way!"
        )
        async with server:
            with pytest.raises(InvalidStatus) as info:
                await connect(f"ws://127.0.0.1:{port}/")
        assert info.value.status == 403
        assert info.value.body == b"no way!"
        assert info.value.headers["x-reason"] == "nope"

    async def test_malformed_answer_is_invalid_handshake(self):
        server, port = await raw_http_server(b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n\r\n")
        async with server:
            with pytest.raises(InvalidHandshake):
                await connect(f"ws://127.0.0.1:{port}/")

    async def test_plain_http_request_gets_426(self, start_server):
        server = await start_server(echo)
        response = await http_exchange(server.port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert response.startswith(b"HTTP/1.1 426 Upgrade Required\r\n")
        assert b"Upgrade: websocket" in response

    async def test_answers_have_standard_reason_phrases(self, start_server):
        def process_request(ws, request):
            if request.path == "/custom":
                return Response(404, body="gone\n", reason="Gone Fishing")
            return Response(404, body="nothing here\n")

        server = await start_server(echo, process_request=process_request)
        response = await http_exchange(server.port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert response.startswith(b"HTTP/1.1 404 Not Found\r\n")
        assert response.endswith(b"\r\n\r\nnothing here\n")
        response = await http_exchange(
            server.port, b"GET /custom HTTP/1.1\r\nHost: h\r\n\r\n"
        )
        assert response.startswith(b"HTTP/1.1 404 Gone Fishing\r\n")

    async def test_head_request_gets_no_body(self, start_server):
        server = await start_server(echo, process_request=lambda ws, r: Response(200, body="OK\n"))
        response = await http_exchange(server.port, b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert response.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Content-Length: 3\r\n" in response and response.endswith(b"\r\n\r\n")

    async def test_malformed_request_gets_a_plain_400(self, start_server):
        server = await start_server(echo)
        response = await http_exchange(server.port, b"GET / HTTP/1.1 extra\r\nHost: h\r\n\r\n")
        assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert response.endswith(b"\r\n\r\nMalformed HTTP request.\n")
        assert b"bytearray" not in response

    async def test_connection_refused_is_an_os_error(self):
        server, port = await raw_http_server(None)
        server.close()
        await server.wait_closed()
        with pytest.raises(OSError):
            await connect(f"ws://127.0.0.1:{port}/")


class TestTimeouts:
    async def test_silent_server_makes_connect_raise_connect_timeout(self):
        server, port = await raw_http_server(None)
        loop = asyncio.get_running_loop()
        async with server:
            start = loop.time()
            with pytest.raises(ConnectTimeout) as info:
                await connect(f"ws://127.0.0.1:{port}/", connect_timeout=0.1)
            assert loop.time() - start < 0.1 + 0.5
        assert isinstance(info.value, TimeoutError)

    async def test_silent_client_is_dropped_and_handler_never_runs(self, start_server):
        calls = []
        server = await start_server(lambda ws: calls.append(ws), connect_timeout=0.1)
        peer = await RawPeer.connect(server.port, handshake=False)
        assert await asyncio.wait_for(peer.at_eof(), 2)
        assert calls == []
        assert not server.server.connections

    async def test_slow_handshake_is_dropped_too(self, start_server):
        calls = []
        server = await start_server(lambda ws: calls.append(ws), connect_timeout=0.1)
        peer = await RawPeer.connect(server.port, handshake=False)
        peer.send(RawPeer.request()[:20])  # half a request, then nothing
        assert await asyncio.wait_for(peer.at_eof(), 2)
        assert calls == []


class TestHandler:
    async def test_handler_return_closes_with_1000(self, start_server):
        server = await start_server(lambda ws: ws.send("bye"))
        async with connect(server.uri) as ws:
            assert await ws.recv() == "bye"
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
        assert ws.close_code == 1000

    async def test_handler_exception_closes_with_1011_is_logged_and_server_goes_on(
        self, start_server, caplog
    ):
        async def handler(ws):
            if ws.request.path == "/fail":
                raise ValueError("boom")
            await echo(ws)

        server = await start_server(handler)

        def logged(prefix):
            return [r.message for r in caplog.records if r.message.startswith(prefix)]

        with caplog.at_level(logging.DEBUG, logger="websockets_lite"):  # normal closes: DEBUG
            async with connect(server.uri + "/fail") as ws:
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
            assert info.value.code == 1011
            async with connect(server.uri + "/ok") as ws:
                await ws.send("still serving")
                assert await ws.recv() == "still serving"
            await until(lambda: len(logged("connection closed")) == 2)
        [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert error.message == "connection handler failed"
        assert error.exc_info[0] is ValueError
        opened = logged("connection open")
        assert len(opened) == 2 and "127.0.0.1:" in opened[0] and "/fail" in opened[0]
        assert "1011" in logged("connection closed")[0]

    async def test_handler_that_ignores_a_closed_connection_is_not_an_error(
        self, start_server, caplog
    ):
        async def handler(ws):
            await ws.recv()
            await ws.recv()  # raises ConnectionClosed: the client left

        server = await start_server(handler)
        with caplog.at_level(logging.ERROR, logger="websockets_lite"):
            async with connect(server.uri) as ws:
                await ws.send("one")
            await until(lambda: not server.server._alive)
        assert not caplog.records


class TestServer:
    async def test_registry_holds_open_connections(self, start_server):
        server = await start_server(echo)
        async with connect(server.uri) as one, connect(server.uri) as two:
            await one.send("a")
            await two.send("b")
            assert [await one.recv(), await two.recv()] == ["a", "b"]
            connections = server.server.connections
            assert len(connections) == 2
            assert all(c.state is State.OPEN for c in connections)
        await until(lambda: not server.server.connections)

    async def test_close_closes_connections_with_1001_and_waits_for_handlers(self):
        finished = []

        async def handler(ws):
            try:
                await ws.recv()
            finally:
                finished.append(ws)

        server = await serve(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        clients = [await connect(f"ws://127.0.0.1:{port}") for _ in range(3)]
        await until(lambda: len(server.connections) == 3)
        server.close()
        await server.wait_closed()
        assert len(finished) == 3
        for ws in clients:
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
            assert ws.close_code == 1001
        with pytest.raises(OSError):
            await connect(f"ws://127.0.0.1:{port}")

    async def test_close_without_closing_connections_waits_for_them(self):
        server = await serve(echo, "127.0.0.1", 0, disconnect_timeout=0.05)
        port = server.sockets[0].getsockname()[1]
        ws = await connect(f"ws://127.0.0.1:{port}")
        await until(lambda: server.connections)
        server.close(close_connections=False)
        closing = asyncio.create_task(server.wait_closed())
        await asyncio.sleep(0.1)  # longer than disconnect_timeout: still open
        await ws.send("still served")
        assert await ws.recv() == "still served"
        assert not closing.done()
        await ws.close()
        await asyncio.wait_for(closing, 5)
        assert ws.close_code == 1000

    async def test_close_code_is_configurable(self):
        server = await serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        ws = await connect(f"ws://127.0.0.1:{port}")
        await until(lambda: server.connections)
        server.close(code=1012, reason="restarting")
        await server.wait_closed()
        await ws.wait_closed()
        assert (ws.close_code, ws.close_reason) == (1012, "restarting")

    async def test_handlers_that_do_not_stop_are_cancelled_after_the_timeout(self):
        cancelled = []

        async def stubborn(ws):
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(ws)
                raise

        server = await serve(stubborn, "127.0.0.1", 0, disconnect_timeout=0.1)
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}"):
            await until(lambda: server.connections)
            server.close()
            await asyncio.wait_for(server.wait_closed(), 5)
        assert len(cancelled) == 1

    async def test_async_with_and_cancelled_serve_forever_close_the_server(self):
        async with serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            ws = await connect(f"ws://127.0.0.1:{port}")
            task = asyncio.create_task(server.serve_forever())
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await ws.wait_closed()
            assert ws.close_code == 1001
        await server.wait_closed()

    async def test_async_process_request_finishing_during_shutdown_gets_503(self):
        started = asyncio.Event()
        release = asyncio.Event()

        async def slow(ws, request):
            started.set()
            await release.wait()

        server = await serve(echo, "127.0.0.1", 0, process_request=slow)
        port = server.sockets[0].getsockname()[1]
        connecting = asyncio.ensure_future(connect(f"ws://127.0.0.1:{port}"))
        await started.wait()
        server.closing = True  # as close() sets it first
        release.set()
        with pytest.raises(InvalidStatus) as info:
            await connecting
        assert info.value.status == 503
        server.close()
        await server.wait_closed()

    async def test_handshake_during_shutdown_gets_503(self):
        server = await serve(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        peer = await RawPeer.connect(port, handshake=False)
        await until(lambda: server._alive)
        server.closing = True  # as close() sets it first
        peer.send(RawPeer.request())
        assert (await peer.reader.read(12)) == b"HTTP/1.1 503"
        server.close()
        await server.wait_closed()


class TestLowLevel:
    async def test_protocols_with_create_server_and_create_connection(self):
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: ServerProtocol(echo), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, ws = await loop.create_connection(
            lambda: ClientProtocol(f"ws://127.0.0.1:{port}/"), "127.0.0.1", port
        )
        async with asyncio.timeout(5):
            await ws.handshake()
            await ws.send("low level")
            assert await ws.recv() == "low level"
            await ws.close()
        server.close()
        await server.wait_closed()

    async def test_no_internal_timeouts_compose_asyncio_timeout(self):
        server, port = await raw_http_server(None)  # never answers
        loop = asyncio.get_running_loop()
        async with server:
            _, ws = await loop.create_connection(
                lambda: ClientProtocol(f"ws://127.0.0.1:{port}/"), "127.0.0.1", port
            )
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await ws.handshake()
            ws.abort()
            await ws.wait_closed()


async def http_exchange(port: int, request: bytes) -> bytes:
    """Send raw bytes, return everything the server answers until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    response = await reader.read()
    writer.close()
    return response


class TestContextManagers:
    async def test_leaving_connect_normally_closes_with_1000_and_on_error_with_1011(
        self, start_server
    ):
        codes: list[int | None] = []

        async def handler(ws):
            await ws.wait_closed()
            codes.append(ws.close_code)

        server = await start_server(handler)
        async with connect(server.uri) as ws:
            pass
        assert ws.close_code == 1000
        with pytest.raises(LookupError):
            async with connect(server.uri) as ws:
                raise LookupError("the application failed")
        assert ws.protocol.close_sent.code == 1011
        await until(lambda: len(codes) == 2)
        assert codes == [1000, 1011]

    async def test_async_with_on_a_connection_closes_it(self, start_server):
        server = await start_server(echo)
        ws = await connect(server.uri)
        async with ws as same:
            assert same is ws
            await ws.send("hi")
            assert await ws.recv() == "hi"
        assert ws.state is State.CLOSED and ws.close_code == 1000
