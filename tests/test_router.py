"""route() and unix_route(): dispatch by path with werkzeug's Map, path
parameters as keyword arguments, 404, redirects, process_request first, and
werkzeug as an optional dependency."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import websockets.asyncio.client
from werkzeug.routing import Map, Rule

from websockets_lite import (
    InvalidStatus,
    Request,
    Response,
    Server,
    ServerProtocol,
    connect,
    serve,
    unix_connect,
)
from websockets_lite.router import Router, route, unix_route


async def hello(ws: ServerProtocol) -> None:
    await ws.send(f"hello {ws.request.path}")


async def goodbye(ws: ServerProtocol) -> None:
    await ws.send("goodbye")


async def room(ws: ServerProtocol, room: str) -> None:
    await ws.send(f"room {room}")


async def user(ws: ServerProtocol, user_id: int) -> None:
    await ws.send(f"user {user_id!r} {type(user_id).__name__}")


def make_map() -> Map:
    return Map([
        Rule("/", endpoint=hello),
        Rule("/bye", endpoint=goodbye),
        Rule("/rooms/", endpoint=hello),
        Rule("/rooms/<room>", endpoint=room),
        Rule("/users/<int:user_id>", endpoint=user),
        Rule("/old/<room>", redirect_to="/rooms/<room>"),
        Rule("/upload", endpoint=hello, methods=["POST"]),
    ])


class Routed:
    """A server started by ``start_route``."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.port: int = server.sockets[0].getsockname()[1]
        self.uri = f"ws://127.0.0.1:{self.port}"


@pytest.fixture
async def start_route() -> AsyncIterator[Callable[..., Awaitable[Routed]]]:
    """Start routed servers on 127.0.0.1, port 0; every one is closed at the end."""
    servers: list[Server] = []

    async def start(url_map: Map, **kwargs: Any) -> Routed:
        kwargs.setdefault("disconnect_timeout", 1.0)
        server = await route(url_map, "127.0.0.1", 0, **kwargs)
        servers.append(server)
        return Routed(server)

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def get(port: int, path: str, host: str = "") -> tuple[str, dict[str, str], str]:
    """A plain HTTP request: return the status line, the headers
    (lower-case names) and the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    host = host or f"127.0.0.1:{port}"
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = data.decode().partition("\r\n\r\n")
    status, *lines = head.split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.lower()] = value.strip()
    return status, headers, body


async def first_message(uri: str) -> str:
    async with connect(uri) as ws:
        message = await ws.recv()
        assert isinstance(message, str)
        return message


class TestDispatch:
    async def test_two_handlers_on_one_server(self, start_route):
        server = await start_route(make_map())
        assert await first_message(f"{server.uri}/?x=1") == "hello /?x=1"
        assert await first_message(f"{server.uri}/bye") == "goodbye"

    async def test_path_parameters_are_keyword_arguments(self, start_route):
        server = await start_route(make_map())
        assert await first_message(f"{server.uri}/rooms/lobby") == "room lobby"
        assert await first_message(f"{server.uri}/users/42") == "user 42 int"

    async def test_path_parameters_are_percent_decoded(self, start_route):
        server = await start_route(make_map())
        assert await first_message(f"{server.uri}/rooms/caf%C3%A9") == "room café"
        status, _, _ = await get(server.port, "/rooms/%FF")
        assert status == "HTTP/1.1 400 Bad Request"

    async def test_handlers_run_concurrently_with_their_own_arguments(self, start_route):
        server = await start_route(make_map())
        names = [f"r{number}" for number in range(10)]
        messages = await asyncio.gather(*(first_message(f"{server.uri}/rooms/{n}") for n in names))
        assert messages == [f"room {name}" for name in names]

    async def test_a_rule_added_after_route_matches(self, start_route):
        url_map = make_map()
        server = await start_route(url_map)
        url_map.add(Rule("/later", endpoint=goodbye))  # without websocket=True
        assert await first_message(f"{server.uri}/later") == "goodbye"

    async def test_router_with_serve(self, start_server):
        router = Router(make_map())
        server = await start_server(router.handler, process_request=router.route_request)
        assert await first_message(f"{server.uri}/users/7") == "user 7 int"

    async def test_router_handler_without_route_request_fails(self, start_server, caplog):
        router = Router(make_map())
        server = await start_server(router.handler)
        async with connect(server.uri) as ws:
            await ws.wait_closed()
        assert ws.close_code == 1011
        assert "no route for this connection" in caplog.text

    async def test_real_websockets_client(self, start_route):
        server = await start_route(make_map())
        async with websockets.asyncio.client.connect(f"{server.uri}/users/3") as ws:
            assert await ws.recv() == "user 3 int"
        # It follows our redirects too.
        async with websockets.asyncio.client.connect(f"{server.uri}/old/attic") as ws:
            assert await ws.recv() == "room attic"


class TestRefusals:
    async def test_unknown_path_is_404(self, start_route):
        server = await start_route(make_map())
        status, headers, body = await get(server.port, "/nowhere")
        assert status == "HTTP/1.1 404 Not Found"
        assert headers["content-type"] == "text/plain; charset=utf-8"
        assert body == "Not Found.\n"
        with pytest.raises(InvalidStatus) as info:
            await connect(f"{server.uri}/nowhere")
        assert info.value.status == 404
        assert info.value.body == b"Not Found.\n"

    async def test_a_known_path_without_upgrade_is_426(self, start_route):
        server = await start_route(make_map())
        status, _, _ = await get(server.port, "/bye")
        assert status == "HTTP/1.1 426 Upgrade Required"

    async def test_method_not_allowed_is_405_with_allow(self, start_route):
        server = await start_route(make_map())
        status, headers, _ = await get(server.port, "/upload")
        assert status == "HTTP/1.1 405 Method Not Allowed"
        assert headers["allow"] == "POST"

    async def test_missing_trailing_slash_redirects(self, start_route):
        server = await start_route(make_map())
        status, headers, body = await get(server.port, "/rooms?since=5")
        assert status in ("HTTP/1.1 301 Moved Permanently", "HTTP/1.1 308 Permanent Redirect")
        location = f"ws://127.0.0.1:{server.port}/rooms/?since=5"
        assert headers["location"] == location
        assert location in body
        # connect() follows it, with the query string.
        assert await first_message(f"{server.uri}/rooms?since=5") == "hello /rooms/?since=5"

    async def test_redirect_to_rule(self, start_route):
        server = await start_route(make_map())
        status, headers, _ = await get(server.port, "/old/attic")
        assert status.split()[1] in ("301", "308")
        assert headers["location"] == f"ws://127.0.0.1:{server.port}/rooms/attic"
        assert await first_message(f"{server.uri}/old/attic") == "room attic"

    async def test_server_name_and_ssl_true_shape_redirects(self, start_route):
        server = await start_route(make_map(), server_name="chat.example.com", ssl=True)
        # ssl=True: TLS ends at a proxy, the server itself speaks plain TCP.
        _, headers, _ = await get(server.port, "/rooms", host="elsewhere")
        assert headers["location"] == "wss://chat.example.com/rooms/"

    async def test_redirects_use_the_host_header(self, start_route):
        server = await start_route(make_map())
        _, headers, _ = await get(server.port, "/rooms", host="Public.Example:443")
        assert headers["location"] == "ws://public.example:443/rooms/"


class TestProcessRequest:
    async def test_runs_first_and_can_refuse(self, start_route):
        seen: list[str] = []

        def process_request(ws: ServerProtocol, request: Request) -> Response | None:
            seen.append(request.path)
            if request.path == "/healthz":
                return Response(200, body="OK\n")  # not in the map: answered anyway
            if request.headers.get("Authorization") != "Bearer t0k3n":
                return Response(403, body="Forbidden.\n")
            return None

        server = await start_route(make_map(), process_request=process_request)
        status, _, body = await get(server.port, "/healthz")
        assert (status, body) == ("HTTP/1.1 200 OK", "OK\n")
        with pytest.raises(InvalidStatus) as info:
            await connect(f"{server.uri}/rooms/lobby")
        assert info.value.status == 403
        token = {"Authorization": "Bearer t0k3n"}
        async with connect(f"{server.uri}/rooms/lobby", additional_headers=token) as ws:
            assert await ws.recv() == "room lobby"
        with pytest.raises(InvalidStatus) as info:
            await connect(f"{server.uri}/nowhere", additional_headers=token)
        assert info.value.status == 404
        assert seen == ["/healthz", "/rooms/lobby", "/rooms/lobby", "/nowhere"]

    async def test_async_process_request(self, start_route):
        async def process_request(ws: ServerProtocol, request: Request) -> Response | None:
            await asyncio.sleep(0)
            if "deny" in request.path:
                return Response(403, body="Forbidden.\n")
            return None

        server = await start_route(make_map(), process_request=process_request)
        with pytest.raises(InvalidStatus) as info:
            await connect(f"{server.uri}/rooms/lobby?deny")
        assert info.value.status == 403
        assert await first_message(f"{server.uri}/rooms/lobby") == "room lobby"
        with pytest.raises(InvalidStatus) as info:
            await connect(f"{server.uri}/nowhere")
        assert info.value.status == 404


async def test_unix_route(tmp_path: Path):
    path = str(tmp_path / "ws.sock")
    async with unix_route(make_map(), path, disconnect_timeout=1.0):
        async with unix_connect(path, "ws://localhost/rooms/unix") as ws:
            assert await ws.recv() == "room unix"
        with pytest.raises(InvalidStatus) as info:
            await unix_connect(path, "ws://localhost/nowhere")
        assert info.value.status == 404


class TestArguments:
    def test_url_map_must_be_a_map(self):
        with pytest.raises(TypeError, match=r"url_map must be a werkzeug\.routing\.Map"):
            route({"/": hello}, "127.0.0.1", 0)  # type: ignore[arg-type]

    def test_endpoints_must_be_callable(self):
        with pytest.raises(TypeError, match="url_map: the endpoint of rule '/x'"):
            route(Map([Rule("/x", endpoint="x")]), "127.0.0.1", 0)

    def test_ssl(self):
        with pytest.raises(TypeError, match="ssl must be"):
            route(make_map(), "127.0.0.1", 0, ssl="yes")  # type: ignore[arg-type]

    def test_server_name(self):
        with pytest.raises(TypeError, match="server_name must be"):
            route(make_map(), "127.0.0.1", 0, server_name=b"x")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="server_name is not a valid host name"):
            route(make_map(), "127.0.0.1", 0, server_name="a" * 70 + ".com")

    def test_process_request(self):
        with pytest.raises(TypeError, match="process_request must be callable"):
            route(make_map(), "127.0.0.1", 0, process_request="no")  # type: ignore[arg-type]

    def test_serve_arguments_are_checked_too(self):
        with pytest.raises(ValueError, match="max_connections"):
            route(make_map(), "127.0.0.1", 0, max_connections=0)
        with pytest.raises(ValueError, match="max_connections"):
            unix_route(make_map(), "/tmp/x.sock", max_connections=0)

    def test_ssl_context_goes_to_the_server(self):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server = route(make_map(), "127.0.0.1", 0, ssl=context)
        assert isinstance(server, serve)
        assert server.kwargs["ssl"] is context


class TestWithoutWerkzeug:
    def test_route_says_how_to_install_it(self, monkeypatch):
        for name in ("werkzeug", "werkzeug.routing", "werkzeug.exceptions"):
            monkeypatch.setitem(sys.modules, name, None)
        for call in (
            lambda: route(make_map(), "127.0.0.1", 0),
            lambda: unix_route(make_map(), "/tmp/x.sock"),
            lambda: Router(make_map()),
        ):
            with pytest.raises(ImportError, match=r"pip install 'websockets_lite\[router\]'"):
                call()

    def test_importing_the_library_does_not_import_werkzeug(self):
        code = (
            "import sys, websockets_lite, websockets_lite.router; "
            "assert 'werkzeug' not in sys.modules, 'werkzeug was imported'"
        )
        subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
