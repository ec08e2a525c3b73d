"""Full client and server features over real sockets: TLS, Unix sockets,
given sockets, reuse_port, reconnection, redirects, HTTP answers, auth,
origins, connection limits and logging."""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import ssl

import pytest
import trustme

from tests.conftest import echo
from tests.support import OP_TEXT, RawPeer, frame, until
from websockets_lite import (
    Backoff,
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
    Response,
    basic_auth,
    connect,
    retryable,
    serve,
    unix_connect,
    unix_serve,
)

FAST = Backoff(initial=0.01, factor=2, maximum=0.05)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_ssl(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def client_ssl(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


class TestTLS:
    async def test_wss_round_trip(self, start_server, server_ssl, client_ssl):
        server = await start_server(echo, ssl=server_ssl)
        async with connect(f"wss://localhost:{server.port}/", ssl=client_ssl) as ws:
            await ws.send("secret")
            assert await ws.recv() == "secret"
            assert ws.transport.get_extra_info("ssl_object") is not None

    async def test_server_hostname(self, start_server, server_ssl, client_ssl):
        server = await start_server(echo, ssl=server_ssl)
        async with connect(
            f"wss://127.0.0.2:{server.port}/", ssl=client_ssl, server_hostname="localhost",
            host="127.0.0.1", port=server.port,
        ) as ws:
            await ws.send(b"x")
            assert await ws.recv() == b"x"

    async def test_default_context_verifies_certificates(self, start_server, server_ssl):
        server = await start_server(echo, ssl=server_ssl)
        with pytest.raises(ssl.SSLCertVerificationError):
            await connect(f"wss://localhost:{server.port}/")

    async def test_ssl_with_ws_uri_is_an_error(self, client_ssl):
        with pytest.raises(ValueError):
            await connect("ws://localhost:1/", ssl=client_ssl)


class TestSockets:
    async def test_unix_serve_and_unix_connect(self, tmp_path):
        path = str(tmp_path / "ws.sock")
        async with unix_serve(echo, path), unix_connect(path, "ws://localhost/unix") as ws:
            await ws.send("over a unix socket")
            assert await ws.recv() == "over a unix socket"
            assert ws.peer == "unix socket" or ws.peer

    async def test_given_sockets(self):
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        async with serve(echo, sock=listener):
            client = socket.create_connection(("127.0.0.1", port))
            async with connect(f"ws://127.0.0.1:{port}/", sock=client) as ws:
                await ws.send("given")
                assert await ws.recv() == "given"
            with pytest.raises(ValueError):
                async for _ in connect(f"ws://127.0.0.1:{port}/", sock=socket.socket()):
                    pass

    async def test_reuse_port_lets_several_servers_share_a_port(self):
        seen: dict[str, int] = {"a": 0, "b": 0}

        def handler(name):
            async def count(ws):
                seen[name] += 1

            return count

        first = await serve(handler("a"), "127.0.0.1", 0, reuse_port=True)
        port = first.sockets[0].getsockname()[1]
        second = await serve(handler("b"), "127.0.0.1", port, reuse_port=True)
        try:
            for _ in range(40):
                async with connect(f"ws://127.0.0.1:{port}/"):
                    pass
            assert seen["a"] > 0 and seen["b"] > 0 and sum(seen.values()) == 40
        finally:
            for server in (first, second):
                server.close()
                await server.wait_closed()


class TestReconnect:
    async def test_retries_until_the_server_accepts_then_resets(self, start_server):
        attempts = 0

        def refuse_three_times(ws, request):
            nonlocal attempts
            attempts += 1
            if attempts <= 3:
                return Response(503, body="not yet")
            return None

        server = await start_server(
            lambda ws: ws.send(f"attempt {attempts}"), process_request=refuse_three_times
        )
        received = []
        async for ws in connect(server.uri, backoff=FAST):
            try:
                received.append(await ws.recv())
                await ws.recv()
            except ConnectionClosed:
                if len(received) == 2:
                    break
                continue
        assert received == ["attempt 4", "attempt 5"]  # after a success, no refusal in between

    async def test_backoff_starts_over_after_a_connection_that_worked(self, start_server):
        attempts = 0

        def flaky(ws, request):
            nonlocal attempts
            attempts += 1
            return Response(503) if attempts in (1, 2, 4) else None

        drawn: list[tuple[int, int]] = []

        class Recording:
            sequences = 0

            def delays(self):
                Recording.sequences += 1
                sequence = Recording.sequences
                for index in range(100):
                    drawn.append((sequence, index))
                    yield 0.001

        server = await start_server(lambda ws: ws.close(), process_request=flaky)
        connected = 0
        async for ws in connect(server.uri, backoff=Recording()):
            await ws.wait_closed()
            connected += 1
            if connected == 2:
                break
        assert attempts == 5
        # Two failures, success, then the delays start over: the wait before
        # reconnecting and the next failure draw from a new sequence.
        assert drawn == [(1, 0), (1, 1), (2, 0), (2, 1)]

    async def test_connection_refused_is_retried(self):
        probe = socket.create_server(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        started: list = []

        async def start_later():
            await asyncio.sleep(0.1)
            started.append(await serve(echo, "127.0.0.1", port))

        task = asyncio.create_task(start_later())
        async for ws in connect(f"ws://127.0.0.1:{port}/", backoff=FAST):
            await ws.send("finally")
            assert await ws.recv() == "finally"
            break
        await task
        started[0].close()
        await started[0].wait_closed()

    @pytest.mark.parametrize("status", [401, 403, 404])
    async def test_client_errors_are_not_retried(self, start_server, status):
        server = await start_server(echo, process_request=lambda ws, r: Response(status))
        with pytest.raises(InvalidStatus) as info:
            async for _ in connect(server.uri, backoff=FAST):
                pass
        assert info.value.status == status

    async def test_invalid_uri_is_not_retried(self):
        with pytest.raises(InvalidURI):
            async for _ in connect("http://example.com/", backoff=FAST):
                pass

    def test_what_is_retryable(self):
        eof = InvalidHandshake("closed")
        eof.__cause__ = EOFError()
        assert retryable(ConnectionRefusedError()) and retryable(TimeoutError())
        assert retryable(eof) and not retryable(InvalidHandshake("malformed"))
        assert retryable(InvalidStatus(502, None, b""))
        assert not retryable(InvalidStatus(403, None, b""))

    def test_backoff_delays_grow_with_jitter(self):
        delays = Backoff(initial=1, factor=2, maximum=5).delays()
        values = [next(delays) for _ in range(100)]
        assert all(0 <= d <= 5 for d in values)
        assert values[0] <= 1 and values[1] <= 2 and max(values[4:]) <= 5


class TestRedirects:
    async def test_followed_with_credentials_kept_on_the_same_origin(self, start_server):
        seen = []

        def redirect(ws, request):
            if request.path == "/old":
                return Response(302, [("Location", "/new")])
            seen.append(request)
            return None

        server = await start_server(lambda ws: ws.send(ws.request.path), process_request=redirect)
        async with connect(server.uri + "/old", additional_headers={"Authorization": "t"}) as ws:
            assert await ws.recv() == "/new"
        assert seen[0].headers["Authorization"] == "t"

    async def test_credentials_dropped_across_origins(self, start_server):
        seen = []
        target = await start_server(lambda ws: seen.append(ws.request) or ws.close())
        source = await start_server(
            echo, process_request=lambda ws, r: Response(301, [("Location", target.uri + "/x")])
        )
        uri = source.uri.replace("ws://", "ws://user:pw@")
        async with connect(uri, additional_headers={"Cookie": "a=b", "X-Keep": "1"}):
            pass
        [request] = seen
        assert request.path == "/x"
        assert "Authorization" not in request.headers and "Cookie" not in request.headers
        assert request.headers["X-Keep"] == "1"

    async def test_redirect_loop_is_bounded(self, start_server):
        server = await start_server(
            echo, process_request=lambda ws, r: Response(307, [("Location", "/again")])
        )
        with pytest.raises(InvalidHandshake, match="redirects"):
            await connect(server.uri)

    async def test_never_from_wss_to_ws(self, start_server, server_ssl, client_ssl):
        server = await start_server(
            echo, ssl=server_ssl,
            process_request=lambda ws, r: Response(302, [("Location", "ws://localhost:1/")]),
        )
        with pytest.raises(InvalidHandshake, match="wss"):
            await connect(f"wss://localhost:{server.port}/", ssl=client_ssl)


class TestHTTPAnswers:
    async def test_health_check_on_plain_http_and_websocket_elsewhere(self, start_server):
        def health(ws, request):
            if request.path == "/healthz":
                return Response(200, body="OK\n")
            return None

        server = await start_server(echo, process_request=health)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        response = await reader.read()
        assert response.startswith(b"HTTP/1.1 200 ") and response.endswith(b"\r\n\r\nOK\n")
        writer.close()
        async with connect(server.uri + "/ws") as ws:
            await ws.send("still a websocket server")
            assert await ws.recv() == "still a websocket server"

    async def test_async_process_request(self, start_server):
        async def deny(ws, request):
            await asyncio.sleep(0)
            return Response(403, body="go away")

        server = await start_server(echo, process_request=deny)
        with pytest.raises(InvalidStatus) as info:
            await connect(server.uri)
        assert (info.value.status, info.value.body) == (403, b"go away")

    async def test_process_request_that_raises_gets_500_and_is_logged(self, start_server, caplog):
        def broken(ws, request):
            raise RuntimeError("bug")

        server = await start_server(echo, process_request=broken)
        with caplog.at_level(logging.ERROR, logger="websockets_lite"), pytest.raises(
            InvalidStatus
        ) as info:
            await connect(server.uri)
        assert info.value.status == 500
        assert caplog.records[0].exc_info[0] is RuntimeError


class TestBasicAuth:
    @staticmethod
    def header(user: str, password: str) -> dict[str, str]:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    async def test_credentials(self, start_server):
        server = await start_server(
            lambda ws: ws.send(ws.username),
            process_request=basic_auth("realm", credentials=("alice", "s3crét")),
        )
        with pytest.raises(InvalidStatus) as info:
            await connect(server.uri)
        assert info.value.status == 401
        assert info.value.headers["WWW-Authenticate"] == 'Basic realm="realm", charset="UTF-8"'
        for bad in [self.header("alice", "wrong"), {"Authorization": "Basic !!"},
                    {"Authorization": "Bearer x"}, self.header("bob", "s3crét")]:
            with pytest.raises(InvalidStatus):
                await connect(server.uri, additional_headers=bad)
        async with connect(server.uri, additional_headers=self.header("alice", "s3crét")) as ws:
            assert await ws.recv() == "alice"
        async with connect(server.uri.replace("ws://", "ws://alice:s3cr%C3%A9t@")) as ws:
            assert await ws.recv() == "alice"

    async def test_async_check_credentials(self, start_server):
        async def check(user, password):
            return password == user[::-1]

        server = await start_server(
            lambda ws: ws.send(ws.username), process_request=basic_auth(check_credentials=check)
        )
        async with connect(server.uri, additional_headers=self.header("abc", "cba")) as ws:
            assert await ws.recv() == "abc"

    def test_needs_exactly_one_way_to_check(self):
        with pytest.raises(TypeError):
            basic_auth()
        with pytest.raises(TypeError):
            basic_auth(credentials=("a", "b"), check_credentials=lambda u, p: True)
        for bad in ((), [], [("a", 1)], ("a",), [("a", "b", "c")]):
            with pytest.raises(TypeError, match="credentials"):
                basic_auth(credentials=bad)


class TestHandshakePolicy:
    async def test_select_subprotocol(self, start_server):
        def select(ws, offered):
            if "bad" in offered:
                return Response(400, body="no bad subprotocols")
            return offered[-1] if offered else None

        server = await start_server(lambda ws: ws.send(str(ws.subprotocol)),
                                    select_subprotocol=select)
        async with connect(server.uri, subprotocols=["a", "b"]) as ws:
            assert await ws.recv() == "b" and ws.subprotocol == "b"
        with pytest.raises(InvalidStatus) as info:
            await connect(server.uri, subprotocols=["bad"])
        assert info.value.status == 400

    async def test_origins(self, start_server):
        server = await start_server(echo, origins=["https://good.example", None])
        async with connect(server.uri, origin="https://good.example"):
            pass
        async with connect(server.uri):  # no Origin: allowed because None is listed
            pass
        with pytest.raises(InvalidStatus) as info:
            await connect(server.uri, origin="https://evil.example")
        assert info.value.status == 403
        strict = await start_server(echo, origins=["https://good.example"])
        with pytest.raises(InvalidStatus):
            await connect(strict.uri)

    async def test_max_connections(self, start_server):
        server = await start_server(lambda ws: ws.wait_closed(), max_connections=2)
        one = await connect(server.uri)
        two = await connect(server.uri)
        await until(lambda: len(server.server.connections) == 2)
        with pytest.raises(InvalidStatus) as info:
            await connect(server.uri)
        assert info.value.status == 503
        await one.close()
        await until(lambda: len(server.server.connections) == 1)
        three = await connect(server.uri)
        await two.close()
        await three.close()


class TestLogging:
    async def test_protocol_errors_are_warnings_without_traceback(self, start_server, caplog):
        server = await start_server(echo)
        with caplog.at_level(logging.INFO, logger="websockets_lite"):
            peer = await RawPeer.connect(server.port)
            peer.send(frame(OP_TEXT, b"\xff"))
            assert (await peer.read_close())[0] == 1007
            await until(lambda: any("connection closed" in r.message for r in caplog.records))
        [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert "1007" in warning.message and warning.exc_info is None
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        closed = next(r.message for r in caplog.records if "connection closed" in r.message)
        assert "127.0.0.1:" in closed and "1007" in closed
        peer.abort()

    async def test_invalid_handshakes_are_warnings(self, start_server, caplog):
        server = await start_server(echo)
        with caplog.at_level(logging.WARNING, logger="websockets_lite"):
            peer = await RawPeer.connect(server.port, handshake=False)
            peer.send(b"BROKEN\r\n\r\n")
            assert await peer.at_eof()
        assert caplog.records and caplog.records[0].exc_info is None
