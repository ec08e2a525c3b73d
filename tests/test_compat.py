"""websockets_lite.compat: programs written for websockets run on it once
their imports are rewritten, with the real websockets library as the peer;
and the mapping of websockets' names, keywords and values onto the core.

The programs live in tests/compat_programs, written against websockets'
API (they run with websockets itself too: set COMPAT_ORIGINALS=1 to run
each program test a second time, unmodified, on websockets, which checks
the drivers here). Each test rewrites a program's imports as a user would,
runs it in a subprocess on 127.0.0.1 and a free port (HOST and PORT in its
environment), and drives it with websockets' client, or serves it with
websockets' server.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import datetime
import http
import inspect
import itertools
import json
import logging
import math
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import websockets
import websockets.client
import websockets.datastructures
import websockets.exceptions
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import serve as ws_serve

import websockets_lite
import websockets_lite.compat as compat
from websockets_lite.compat import exceptions as compat_exceptions
from websockets_lite.compat.asyncio.client import connect
from websockets_lite.compat.asyncio.server import (
    ServerConnection,
    basic_auth,
    broadcast,
    serve,
    unix_serve,
)
from websockets_lite.compat.client import backoff
from websockets_lite.compat.datastructures import Headers, MultipleValuesError
from websockets_lite.compat.http11 import Response

ROOT = Path(__file__).parent.parent
PROGRAMS = Path(__file__).parent / "compat_programs"
FLAVORS = ["compat", *(["websockets"] if os.environ.get("COMPAT_ORIGINALS") else [])]


def rewrite(source: str) -> str:
    """The import rewrite a user makes: websockets -> websockets_lite.compat."""
    source = re.sub(
        r"^import websockets$", "import websockets_lite.compat as websockets", source, flags=re.M
    )
    return re.sub(r"^from websockets(?=[.\s])", "from websockets_lite.compat", source, flags=re.M)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Program:
    """A program of compat_programs running in a subprocess."""

    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port
        self.uri = f"ws://127.0.0.1:{port}"

    async def listening(self) -> None:
        """Wait until the program accepts TCP connections on its port."""
        for _ in range(500):
            if self.process.poll() is not None:
                _, stderr = self.process.communicate()
                raise AssertionError(f"the program exited:\n{stderr}")
            with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", self.port), timeout=1
            ):
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the program never listened")

    async def finish(self, stdin: str | None = None, timeout: float = 20) -> tuple[str, str]:
        """Wait for the program to end (in a thread: the test's own loop may
        run its peer); return its output."""
        return await asyncio.to_thread(self.process.communicate, stdin, timeout)

    async def readline(self, timeout: float = 10) -> str:
        assert self.process.stdout is not None
        return await asyncio.wait_for(asyncio.to_thread(self.process.stdout.readline), timeout)


class Programs:
    """Runs programs: rewritten for compat, or as they are for websockets."""

    def __init__(self, flavor: str, directory: Path) -> None:
        self.flavor = flavor
        self.directory = directory
        self.running: list[Program] = []

    def start(self, name: str, **env: str) -> Program:
        source = (PROGRAMS / name).read_text()
        if self.flavor == "compat":
            source = rewrite(source)
        path = self.directory / name
        path.write_text(source)
        shutil.copy(PROGRAMS / "connect4.py", self.directory)
        port = free_port()
        environment = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "HOST": "127.0.0.1",
            "PORT": str(port),
            **env,
        }
        process = subprocess.Popen(
            [sys.executable, "-u", str(path)],
            cwd=self.directory,
            env=environment,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        program = Program(process, port)
        self.running.append(program)
        return program

    async def serve(self, name: str, **env: str) -> Program:
        program = self.start(name, **env)
        await program.listening()
        return program

    def stop(self) -> None:
        for program in self.running:
            if program.process.poll() is None:
                program.process.kill()
            program.process.communicate()


@pytest.fixture(params=FLAVORS)
def programs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Programs]:
    runner = Programs(request.param, tmp_path)
    yield runner
    runner.stop()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


async def recv_json(ws: Any) -> Any:
    async with asyncio.timeout(5):
        return json.loads(await ws.recv())


# The programs.


PROGRAM_NAMES = sorted(path.name for path in PROGRAMS.glob("*.py"))


@pytest.mark.parametrize("name", PROGRAM_NAMES)
def test_rewritten_programs_import_no_websockets(name: str) -> None:
    tree = ast.parse(rewrite((PROGRAMS / name).read_text()))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert all(alias.name.split(".")[0] != "websockets" for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert (node.module or "").split(".")[0] != "websockets"


async def test_echo(programs: Programs) -> None:
    program = await programs.serve("echo.py")
    async with ws_connect(program.uri) as ws:
        for message in ["hello", b"\x00\xff", "é" * 10_000]:
            await ws.send(message)
            assert await ws.recv() == message


async def test_hello_server(programs: Programs) -> None:
    program = await programs.serve("hello_server.py")
    async with ws_connect(program.uri) as ws:
        await ws.send("Ada")
        assert await ws.recv() == "Hello Ada!"
        # The handler returned: the server closes with 1000.
        with pytest.raises(websockets.exceptions.ConnectionClosedOK):
            await ws.recv()
        assert ws.close_code == 1000
    program.process.terminate()
    stdout, _ = await program.finish()
    assert "<<< Ada\n>>> Hello Ada!" in stdout


async def hello(ws: Any) -> None:
    name = await ws.recv()
    await ws.send(f"Hello {name}!")


async def test_hello_client(programs: Programs) -> None:
    async with ws_serve(hello, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        program = programs.start("hello_client.py", URI=f"ws://127.0.0.1:{port}")
        stdout, stderr = await program.finish("Grace\n")
    assert program.process.returncode == 0, stderr
    assert stdout.endswith(">>> Grace\n<<< Hello Grace!\n")


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def test_health_check(programs: Programs) -> None:
    program = await programs.serve("health_check.py")
    status, body = await asyncio.to_thread(http_get, f"http://127.0.0.1:{program.port}/healthz")
    assert (status, body) == (200, "OK\n")
    # A WebSocket client on /healthz gets the same answer, and no connection.
    with pytest.raises(websockets.exceptions.InvalidStatus) as caught:
        await ws_connect(f"{program.uri}/healthz")
    assert caught.value.response.status_code == 200
    assert caught.value.response.body == b"OK\n"
    async with ws_connect(program.uri) as ws:
        await ws.send("still echoing")
        assert await ws.recv() == "still echoing"


async def test_counter(programs: Programs) -> None:
    program = await programs.serve("counter.py")
    async with ws_connect(program.uri) as first:
        assert await recv_json(first) == {"type": "users", "count": 1}
        assert await recv_json(first) == {"type": "value", "value": 0}
        async with ws_connect(program.uri) as second:
            assert await recv_json(first) == {"type": "users", "count": 2}
            assert await recv_json(second) == {"type": "users", "count": 2}
            assert await recv_json(second) == {"type": "value", "value": 0}
            await first.send(json.dumps({"action": "plus"}))
            assert await recv_json(first) == {"type": "value", "value": 1}
            assert await recv_json(second) == {"type": "value", "value": 1}
            await second.send(json.dumps({"action": "minus"}))
            assert await recv_json(first) == {"type": "value", "value": 0}
            assert await recv_json(second) == {"type": "value", "value": 0}
        assert await recv_json(first) == {"type": "users", "count": 1}


async def test_show_time(programs: Programs) -> None:
    program = await programs.serve("show_time.py", INTERVAL="0.05")
    async with ws_connect(program.uri) as first, ws_connect(program.uri) as second:
        for ws in (first, second):
            times = [await asyncio.wait_for(ws.recv(), 5) for _ in range(3)]
            parsed = [datetime.datetime.fromisoformat(str(time)) for time in times]
            assert parsed == sorted(parsed)
            assert all(time.tzinfo is not None for time in parsed)


async def test_shutdown_on_sigterm(programs: Programs) -> None:
    program = await programs.serve("shutdown_server.py")
    async with ws_connect(program.uri) as ws:
        await ws.send("ping")
        assert await ws.recv() == "ping"
        program.process.send_signal(signal.SIGTERM)
        with pytest.raises(websockets.exceptions.ConnectionClosedOK):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1001  # going away
    stdout, stderr = await program.finish()
    assert program.process.returncode == 0, stderr
    assert stdout == "server closed\n"
    assert "Traceback" not in stderr


def tls_files(ca: trustme.CA, directory: Path) -> tuple[str, str]:
    """The server's certificate chain and key, and the CA: PEM files."""
    cert = ca.issue_cert("localhost", "127.0.0.1")
    chain = directory / "localhost.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
    authority = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(authority))
    return str(chain), str(authority)


async def test_tls_server(programs: Programs, ca: trustme.CA, tmp_path: Path) -> None:
    chain, authority = tls_files(ca, tmp_path)
    program = await programs.serve("tls_server.py", TLS_CERT=chain)
    context = ssl.create_default_context(cafile=authority)
    async with ws_connect(f"wss://127.0.0.1:{program.port}", ssl=context) as ws:
        await ws.send("Alan")
        assert await ws.recv() == "Hello Alan!"
    # Without trusting the CA, the TLS handshake fails.
    with pytest.raises(ssl.SSLCertVerificationError):
        await ws_connect(f"wss://127.0.0.1:{program.port}")


async def test_tls_client(programs: Programs, ca: trustme.CA, tmp_path: Path) -> None:
    _, authority = tls_files(ca, tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    async with ws_serve(hello, "127.0.0.1", 0, ssl=context) as server:
        port = server.sockets[0].getsockname()[1]
        program = programs.start("tls_client.py", URI=f"wss://127.0.0.1:{port}", TLS_CA=authority)
        stdout, stderr = await program.finish("Barbara\n")
    assert program.process.returncode == 0, stderr
    assert stdout.endswith("<<< Hello Barbara!\n")


async def test_reconnect_loop(programs: Programs) -> None:
    port = free_port()
    count = itertools.count(1)

    async def handler(ws: Any) -> None:
        number = next(count)
        await ws.send(f"connection {number}")
        if number == 2:
            ws.transport.abort()  # lost without a closing handshake: ConnectionClosedError
        # Otherwise the handler returns: closed normally, the loop ends quietly.

    # Short delays, through the environment variables websockets reads.
    delays = {f"WEBSOCKETS_BACKOFF_{name}": "0.05" for name in ("INITIAL_DELAY", "MIN_DELAY")}
    program = programs.start(
        "reconnect_client.py", URI=f"ws://127.0.0.1:{port}", WEBSOCKETS_BACKOFF_MAX_DELAY="0.1",
        **delays,
    )
    await asyncio.sleep(0.3)  # nothing listens yet: the client retries
    assert program.process.poll() is None
    async with ws_serve(handler, "127.0.0.1", port):
        lines = [await program.readline() for _ in range(3)]
    assert lines == ["connection 1\n", "connection 2\n", "connection 3\n"]


async def test_basic_auth_server(programs: Programs) -> None:
    program = await programs.serve("basic_auth_server.py")
    async with ws_connect(f"ws://mary:p%40ssw0rd@127.0.0.1:{program.port}") as ws:
        assert await ws.recv() == "Hello mary!"
    with pytest.raises(websockets.exceptions.InvalidStatus) as caught:
        await ws_connect(f"ws://mary:wrong@127.0.0.1:{program.port}")
    assert caught.value.response.status_code == 401
    assert caught.value.response.headers["WWW-Authenticate"].startswith('Basic realm="example"')


async def test_routing(programs: Programs) -> None:
    pytest.importorskip("werkzeug")
    program = await programs.serve("routing.py")
    async with ws_connect(f"{program.uri}/clock") as ws:
        assert await ws.recv() == "tick"
    async with ws_connect(f"{program.uri}/rooms/lobby/3") as ws:
        assert await ws.recv() == "room lobby #3"
    with pytest.raises(websockets.exceptions.InvalidStatus) as caught:
        await ws_connect(f"{program.uri}/nowhere")
    assert caught.value.response.status_code == 404


# The Connect Four tutorial, driven with its JSON protocol.


def play(column: int) -> str:
    return json.dumps({"type": "play", "column": column})


async def test_tutorial_step1(programs: Programs) -> None:
    program = await programs.serve("tutorial_step1.py")
    async with ws_connect(program.uri) as ws:
        # Red stacks four in column 3 while yellow plays column 4: red wins.
        moves = [3, 4, 3, 4, 3, 4, 3]
        for number, column in enumerate(moves):
            await ws.send(play(column))
            player = "red" if number % 2 == 0 else "yellow"
            assert await recv_json(ws) == {
                "type": "play", "player": player, "column": column, "row": number // 2,
            }
        assert await recv_json(ws) == {"type": "win", "player": "red"}
        await ws.send(play(9))
        assert await recv_json(ws) == {"type": "error", "message": "This column doesn't exist."}


@pytest.mark.parametrize("step", ["tutorial_step2.py", "tutorial_step3.py"])
async def test_tutorial_steps_2_and_3(programs: Programs, step: str) -> None:
    program = await programs.serve(step)
    async with ws_connect(program.uri) as red:
        await red.send(json.dumps({"type": "init"}))
        init = await recv_json(red)
        assert init["type"] == "init"
        await red.send(play(0))  # before anyone joins: replayed to them
        assert (await recv_json(red))["row"] == 0
        async with ws_connect(program.uri) as yellow, ws_connect(program.uri) as spectator:
            await yellow.send(json.dumps({"type": "init", "join": init["join"]}))
            await spectator.send(json.dumps({"type": "init", "watch": init["watch"]}))
            first = {"type": "play", "player": "red", "column": 0, "row": 0}
            assert await recv_json(yellow) == first
            assert await recv_json(spectator) == first
            await red.send(play(1))  # out of turn
            assert await recv_json(red) == {"type": "error", "message": "It isn't your turn."}
            await yellow.send(play(1))
            move = {"type": "play", "player": "yellow", "column": 1, "row": 0}
            for ws in (red, yellow, spectator):
                assert await recv_json(ws) == move  # broadcast to the game
        async with ws_connect(program.uri) as lost:
            await lost.send(json.dumps({"type": "init", "join": "nope"}))
            assert await recv_json(lost) == {"type": "error", "message": "Game not found."}
    if step == "tutorial_step3.py":
        status, body = await asyncio.to_thread(
            http_get, f"http://127.0.0.1:{program.port}/healthz"
        )
        assert (status, body) == (200, "OK\n")
        async with ws_connect(program.uri) as ws:
            program.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(ws.wait_closed(), 5)
            assert ws.close_code == 1001
        _, stderr = await program.finish()
        assert program.process.returncode == 0, stderr


# The mapping: names.

#: websockets' top-level names that compat does not provide, and why.
NOT_PROVIDED = {
    "Router",  # the core's router has another API; route() and unix_route() are there
    "ClientProtocol",  # websockets' Sans-I/O objects: the core's are asyncio connections
    "ServerProtocol",
    "Protocol",
    "Side",
    "Frame",  # frames are not exposed
    "Opcode",
    "ExtensionName",  # no custom extensions
    "ExtensionParameter",
}


def test_websockets_names_are_provided() -> None:
    missing = {name for name in websockets.__all__ if not hasattr(compat, name)}
    assert missing == NOT_PROVIDED
    for name in websockets.exceptions.__all__:
        assert hasattr(compat_exceptions, name), name
    assert set(compat.__all__) <= {*websockets.__all__, "__version__"}


def test_exception_tree_matches_websockets() -> None:
    names = websockets.exceptions.__all__
    for name in names:
        theirs = getattr(websockets.exceptions, name)
        ours = getattr(compat_exceptions, name)
        for other in names:
            if issubclass(theirs, getattr(websockets.exceptions, other)):
                assert issubclass(ours, getattr(compat_exceptions, other)), (name, other)
        for builtin in (RuntimeError, AssertionError, TimeoutError, LookupError):
            if issubclass(theirs, builtin):
                assert issubclass(ours, builtin), (name, builtin)


def test_shared_exceptions_are_the_core_classes() -> None:
    assert compat.WebSocketException is websockets_lite.WebSocketError
    for name in ["ConnectionClosed", "ConnectionClosedOK", "ConnectionClosedError",
                 "InvalidStatus", "InvalidHandshake", "InvalidURI", "InvalidMessage",
                 "ConcurrencyError", "PayloadTooBig", "ProtocolError", "SecurityError"]:
        assert getattr(compat, name) is getattr(websockets_lite, name)
    assert issubclass(compat.InvalidHeaderValue, websockets_lite.InvalidHeader)
    assert issubclass(compat.TooManyFragments, websockets_lite.PayloadTooBig)
    assert str(compat.InvalidParameterValue("x", None)) == "missing value for parameter x"
    error = compat.InvalidHeaderFormat("X", "bad", "a;b", 1)
    assert str(error) == "invalid X header: bad at 1 in a;b"


def test_states_and_close_codes() -> None:
    from websockets_lite.compat import frames, protocol

    for state in websockets.protocol.State:
        assert protocol.State[state.name] == state
    assert protocol.OPEN is websockets_lite.State.OPEN
    for code in websockets.frames.CloseCode:
        assert frames.CloseCode[code.name] == code
    assert str(frames.Close(1001, "bye")) == str(websockets.frames.Close(1001, "bye"))


# The mapping: keyword arguments and their values.


async def nothing(ws: ServerConnection) -> None:
    await ws.wait_closed()


async def test_serve_maps_keywords_onto_the_core() -> None:
    async with serve(nothing, "127.0.0.1", 0) as server:
        # websockets' defaults.
        options = server.options
        assert options.max_message_size == 2**20
        assert options.message_queue_size == 16
        assert options.write_limit == 2**15
        assert options.connect_timeout == 10
        assert options.disconnect_timeout == 10
    async with serve(
        nothing, "127.0.0.1", 0,
        max_size=(2**10, 2**8), max_queue=(8, 2), write_limit=(4096, 1024),
        open_timeout=3, close_timeout=None, ping_interval=None, ping_timeout=5,
    ) as server:
        options = server.options
        assert options.max_message_size == 2**10
        assert options.message_queue_size == 8
        assert options.write_limit == 4096
        assert options.connect_timeout == 3
        assert options.disconnect_timeout == math.inf
        assert options.ping_interval == math.inf
        assert options.ping_timeout == 5
    async with serve(nothing, "127.0.0.1", 0, max_size=None, max_queue=None) as server:
        assert server.options.max_message_size == math.inf
        assert server.options.message_queue_size == math.inf


def test_connect_maps_keywords_onto_the_core() -> None:
    client = connect("ws://127.0.0.1:1/")
    assert client.options.message_queue_size == 16
    assert client.options.write_limit == 2**15
    client = connect(
        "ws://127.0.0.1:1/", max_size=(None, 2**16), max_queue=None, write_limit=(2**16, None),
        open_timeout=None, close_timeout=2,
    )
    options = client.options
    assert options.max_message_size == math.inf
    assert options.message_queue_size == math.inf
    assert options.write_limit == 2**16
    assert options.connect_timeout == math.inf
    assert options.disconnect_timeout == 2
    with pytest.raises(ValueError, match="max_queue"):
        connect("ws://127.0.0.1:1/", max_queue=(1, 2, 3))  # type: ignore[arg-type]
    with pytest.raises(NotImplementedError, match="extensions"):
        connect("ws://127.0.0.1:1/", extensions=[object()])
    with pytest.raises(NotImplementedError, match="extensions"):
        serve(nothing, "127.0.0.1", 0, extensions=[object()])


async def test_max_size_is_enforced() -> None:
    async with serve(nothing, "127.0.0.1", 0, max_size=(1024, 128)) as server:
        port = server.sockets[0].getsockname()[1]
        async with ws_connect(f"ws://127.0.0.1:{port}") as ws:
            await ws.send("x" * 1000)  # fragments may be bigger than 128: no fragment cap
            await ws.send("x" * 2000)
            with pytest.raises(websockets.exceptions.ConnectionClosedError):
                await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == 1009


async def test_open_timeout_raises_timeout_error() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers the handshake

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(TimeoutError):
            await connect(f"ws://127.0.0.1:{port}", open_timeout=0.1)


async def test_headers_and_hooks_of_a_handshake() -> None:
    seen: dict[str, Any] = {}

    async def handler(ws: Any) -> None:
        seen["headers"] = ws.request.headers
        seen["path"] = ws.request.path
        await ws.send(ws.subprotocol or "")

    async with ws_serve(handler, "127.0.0.1", 0, subprotocols=["chat"]) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(
            f"ws://127.0.0.1:{port}/room?id=1", user_agent_header="agent/1",
            additional_headers=Headers([("X-Id", "1"), ("X-Id", "2")]),
            subprotocols=["chat"],
        ) as ws:
            assert await ws.recv() == "chat"
        assert seen["path"] == "/room?id=1"
        assert seen["headers"]["User-Agent"] == "agent/1"
        assert seen["headers"].get_all("X-Id") == ["1", "2"]
        async with connect(
            f"ws://127.0.0.1:{port}/", user_agent_header=None, subprotocols=["chat"]
        ) as ws:
            await ws.recv()
        assert "User-Agent" not in seen["headers"]


async def test_server_header_and_subprotocol_selection() -> None:
    def select(connection: ServerConnection, offered: Any) -> str | None:
        assert isinstance(connection, ServerConnection)
        return "b" if "b" in offered else None

    async def handler(ws: ServerConnection) -> None:
        await ws.send(ws.subprotocol or "")

    for header in ("test/1", None):
        async with serve(
            handler, "127.0.0.1", 0, server_header=header, select_subprotocol=select
        ) as server:
            port = server.sockets[0].getsockname()[1]
            async with ws_connect(f"ws://127.0.0.1:{port}", subprotocols=["a", "b"]) as ws:
                assert ws.response is not None
                assert ws.response.headers.get("Server") == header
                assert await ws.recv() == "b"


async def test_process_request_gets_websockets_request_and_response() -> None:
    def process_request(connection: ServerConnection, request: Any) -> Response | None:
        assert isinstance(request.headers, Headers)  # websockets' semantics
        with pytest.raises(MultipleValuesError):
            request.headers["X-Twice"]
        if request.path == "/teapot":
            headers = Headers([("Set-Cookie", "a=1")])
            headers["Set-Cookie"] = "b=2"  # appends, as websockets' Headers do
            return Response(http.HTTPStatus.IM_A_TEAPOT, "I'm a teapot", headers, b"tea\n")
        if request.path == "/respond":
            response = connection.respond(http.HTTPStatus.FORBIDDEN, "no\n")
            response.headers["X-Reason"] = "test"
            return response
        return None

    async def process_response(
        connection: ServerConnection, request: Any, response: Any
    ) -> None:
        response.headers["X-Extra"] = "1"
        response.headers["X-Extra"] = "2"

    async def handler(ws: ServerConnection) -> None:
        await ws.send(ws.request.path)

    async with serve(
        handler, "127.0.0.1", 0, process_request=process_request,
        process_response=process_response,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        twice = [("X-Twice", "1"), ("X-Twice", "2")]
        with pytest.raises(websockets.exceptions.InvalidStatus) as caught:
            await ws_connect(f"ws://127.0.0.1:{port}/teapot", additional_headers=twice)
        response = caught.value.response
        assert (response.status_code, response.reason_phrase) == (418, "I'm a teapot")
        assert response.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
        assert response.body == b"tea\n"
        assert response.headers["Server"].startswith("Python/")
        with pytest.raises(websockets.exceptions.InvalidStatus) as caught:
            await ws_connect(f"ws://127.0.0.1:{port}/respond", additional_headers=twice)
        response = caught.value.response
        assert (response.status_code, response.body) == (403, b"no\n")
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert response.headers["X-Reason"] == "test"
        async with ws_connect(f"ws://127.0.0.1:{port}/ok", additional_headers=twice) as ws:
            assert await ws.recv() == "/ok"
            assert ws.response is not None
            assert ws.response.headers.get_all("X-Extra") == ["1", "2"]


def test_response_takes_websockets_arguments() -> None:
    response = Response(200, "OK", Headers(a="1"), b"body")
    assert isinstance(response, websockets_lite.Response)
    assert (response.status_code, response.reason_phrase, response.body) == (200, "OK", b"body")
    response.status_code = 404
    response.reason_phrase = "Not Found"
    assert (response.status, response.reason) == (404, "Not Found")
    assert Response(204, "No Content").headers == Headers()
    assert Response(200, "OK", [("a", "1")]).headers["a"] == "1"


# The mapping: Headers.


def headers_operations(cls: Any, errors: tuple[type[BaseException], ...]) -> list[Any]:
    """Apply the same operations to a Headers class; record what happens."""
    results: list[Any] = []

    def attempt(operation: Any) -> None:
        try:
            results.append(operation())
        except errors as exc:
            results.append(type(exc).__name__)

    headers = cls([("Host", "example.com")], Accept="*/*")
    headers["Set-Cookie"] = "a=1"
    headers["set-cookie"] = "b=2"
    attempt(lambda: headers["SET-COOKIE"])
    attempt(lambda: headers.get_all("Set-Cookie"))
    attempt(lambda: headers.get("Set-Cookie"))
    attempt(lambda: headers["host"])
    attempt(lambda: headers["missing"])
    attempt(lambda: headers.get("missing", "default"))
    attempt(lambda: list(headers))
    attempt(lambda: list(headers.keys()))
    attempt(lambda: len(headers))
    attempt(lambda: "HOST" in headers)
    attempt(lambda: list(headers.raw_items()))
    attempt(lambda: str(headers))
    attempt(lambda: headers.serialize())
    attempt(lambda: headers.setdefault("Origin", "o"))
    attempt(lambda: headers.setdefault("Origin", "p"))
    attempt(lambda: str(cls(headers)))  # copies keep repeated names
    attempt(lambda: str(headers.copy()))
    attempt(lambda: headers == cls(list(headers.raw_items())))
    attempt(lambda: headers == cls([("host", "example.com")]))
    attempt(lambda: headers.__delitem__("set-cookie"))
    attempt(lambda: headers.__delitem__("set-cookie"))
    attempt(lambda: headers.pop("accept"))
    attempt(lambda: headers.__setitem__("X-Bad", "a\r\nb"))
    headers.update(cls([("Via", "1"), ("Via", "2")]))
    headers.update({"Dnt": "1"}, Te="trailers")
    attempt(lambda: headers.update({}, {}))
    attempt(lambda: headers.get_all("via"))
    attempt(lambda: str(headers))
    headers.clear()
    attempt(lambda: (len(headers), str(headers)))
    attempt(lambda: str(MultipleValuesError("Via")) if cls is Headers else "'Via'")
    return results


def test_headers_behave_as_websockets_headers() -> None:
    from websockets.exceptions import InvalidHeaderValue as TheirInvalidHeaderValue

    theirs = headers_operations(
        websockets.datastructures.Headers,
        (
            KeyError, TypeError, websockets.datastructures.MultipleValuesError,
            TheirInvalidHeaderValue,
        ),
    )
    ours = headers_operations(
        Headers, (KeyError, TypeError, MultipleValuesError, compat.InvalidHeaderValue)
    )
    assert ours == theirs


def test_headers_are_the_cores() -> None:
    headers = Headers([("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    assert isinstance(headers, websockets_lite.Headers)
    assert isinstance(MultipleValuesError("x"), LookupError)
    assert websockets_lite.Response(200, headers).headers is headers
    assert websockets_lite.Headers(headers.raw_items()).get_all("set-cookie") == ["a=1", "b=2"]


def test_core_headers_copy_keeps_repeated_names() -> None:
    headers = websockets_lite.Headers([("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    assert websockets_lite.Headers(headers).get_all("Set-Cookie") == ["a=1", "b=2"]
    assert websockets_lite.Headers(Headers(headers.raw_items())).get_all("Set-Cookie") == [
        "a=1", "b=2",
    ]


# The mapping: connections.


@contextlib.asynccontextmanager
async def websockets_server(handler: Any, **kwargs: Any) -> AsyncIterator[str]:
    async with ws_serve(handler, "127.0.0.1", 0, **kwargs) as server:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def test_ping_returns_a_future_of_the_latency() -> None:
    peers: list[Any] = []

    async def handler(ws: Any) -> None:
        peers.append(ws)
        await ws.wait_closed()

    async with websockets_server(handler) as uri, connect(uri) as ws:
        pong_waiter = await ws.ping()
        assert isinstance(pong_waiter, asyncio.Future)
        latency = await asyncio.wait_for(pong_waiter, 5)
        assert isinstance(latency, float) and latency >= 0
        assert ws.latency == latency
        # The peer stops reading: no pong comes, and the same data cannot be
        # pinged twice meanwhile.
        peers[0].transport.pause_reading()
        pending = await ws.ping(b"same")
        with pytest.raises(compat.ConcurrencyError):
            await ws.ping(bytearray(b"same"))
        with pytest.raises(TypeError):
            await ws.ping(42)  # type: ignore[arg-type]
        peers[0].transport.resume_reading()
        assert await asyncio.wait_for(pending, 5) >= 0
        # A ping whose pong never comes fails with ConnectionClosed.
        peers[0].transport.pause_reading()
        lost = await ws.ping()
        peers[0].transport.abort()
        with pytest.raises(compat.ConnectionClosed):
            await asyncio.wait_for(lost, 5)
        with pytest.raises(compat.ConnectionClosed):
            await ws.ping()


async def test_ping_future_needs_no_awaiting() -> None:
    async with websockets_server(nothing_peer) as uri:
        ws = await connect(uri)
        await ws.ping()  # never awaited, then the connection closes
        ws.transport.abort()
        await ws.wait_closed()
        await asyncio.sleep(0)  # the no_loop_errors fixture checks for "never retrieved"


async def nothing_peer(ws: Any) -> None:
    await ws.wait_closed()


async def test_connection_attributes() -> None:
    async def handler(ws: ServerConnection) -> None:
        ws.user = "me"  # type: ignore[attr-defined]  # set by the application
        assert ws.state is compat.State.OPEN
        assert ws.remote_address[0] == "127.0.0.1"
        assert ws.close_timeout == 10
        ws.close_timeout = None
        assert ws.disconnect_timeout == math.inf
        await ws.send(f"{ws.user} {ws.id.version} {ws.request.path}")
        await ws.close(4000, "bye")

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}/path") as ws:
            assert isinstance(ws, compat.ClientConnection)
            assert await ws.recv() == "me 4 /path"
            with pytest.raises(compat.ConnectionClosedError) as caught:
                await ws.recv()
            assert caught.value.rcvd is not None and caught.value.rcvd.code == 4000
            assert (ws.close_code, ws.close_reason) == (4000, "bye")


async def test_exceptions_are_caught_by_websockets_names() -> None:
    def refuse(connection: Any, request: Any) -> Any:
        if request.path == "/missing":
            return connection.respond(http.HTTPStatus.NOT_FOUND, "Not here.\n")
        return None

    async def handler(ws: Any) -> None:
        message = await ws.recv()
        await ws.close(1000 if message == "ok" else 1011)

    async with websockets_server(handler, process_request=refuse) as uri:
        with pytest.raises(compat_exceptions.InvalidStatus) as status:
            await connect(f"{uri}/missing")
        assert status.value.response.status_code == 404
        assert isinstance(status.value, compat_exceptions.InvalidHandshake)
        assert isinstance(status.value, compat_exceptions.WebSocketException)
        closes = [("ok", compat.ConnectionClosedOK), ("ko", compat.ConnectionClosedError)]
        for message, expected in closes:
            async with connect(uri) as ws:
                await ws.send(message)
                with pytest.raises(expected):
                    await ws.recv()
    with pytest.raises(compat.InvalidURI):
        connect("http://example.com/")
    with pytest.raises(OSError):
        await connect(f"ws://127.0.0.1:{free_port()}")


async def test_concurrent_recv_raises_concurrency_error() -> None:
    async with websockets_server(nothing_peer) as uri, connect(uri) as ws:
        receiving = asyncio.ensure_future(ws.recv())
        await asyncio.sleep(0)
        with pytest.raises(compat.ConcurrencyError):
            await ws.recv()
        receiving.cancel()


# The mapping: broadcast.


@contextlib.asynccontextmanager
async def clients(count: int, **kwargs: Any) -> AsyncIterator[tuple[list[Any], list[Any]]]:
    """A compat server and ``count`` websockets clients: (server side, clients)."""
    connected: list[ServerConnection] = []
    ready = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        connected.append(ws)
        if len(connected) == count:
            ready.set()
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, **kwargs) as server:
        port = server.sockets[0].getsockname()[1]
        async with contextlib.AsyncExitStack() as stack:
            peers = [
                await stack.enter_async_context(ws_connect(f"ws://127.0.0.1:{port}"))
                for _ in range(count)
            ]
            await asyncio.wait_for(ready.wait(), 5)
            yield connected, peers


async def test_broadcast_text_argument() -> None:
    async with clients(2) as (connected, peers):
        assert broadcast(connected, "text") is None
        broadcast(connected, b"binary")
        broadcast(connected, "as binary", text=False)
        broadcast(connected, "é as text".encode(), text=True)
        broadcast(connected, bytearray(b"bytearray"))
        for peer in peers:
            received = [await asyncio.wait_for(peer.recv(), 5) for _ in range(5)]
            assert received == ["text", b"binary", b"as binary", "é as text", b"bytearray"]
        with pytest.raises(TypeError):
            broadcast(connected, 42)  # type: ignore[arg-type]


async def test_broadcast_raise_exceptions_for_slow_connections() -> None:
    # write_limit=1: once a message waits in a connection's buffer, the next
    # one does not fit; websockets would buffer it, the core skips it. The
    # first message of a loop iteration goes straight to the socket; the
    # second waits (corked) until the iteration ends.
    async with clients(2, write_limit=1) as (connected, peers):
        broadcast(connected, "first")
        broadcast(connected, "second")
        broadcast(connected, "skipped")  # quietly, by default
        with pytest.raises(ExceptionGroup) as caught:
            broadcast(connected, "skipped too", raise_exceptions=True)
        assert len(caught.value.exceptions) == 2
        assert all(isinstance(exc, RuntimeError) for exc in caught.value.exceptions)
        assert [ws.stats.broadcasts_skipped for ws in connected] == [2, 2]
        await asyncio.sleep(0.05)  # the buffers drain
        broadcast(connected, "last", raise_exceptions=True)
        for peer in peers:
            assert [await peer.recv() for _ in range(3)] == ["first", "second", "last"]


async def test_broadcast_raise_exceptions_while_sending_fragments(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with clients(2) as (connected, peers):
        release = asyncio.Event()

        async def fragments() -> AsyncIterator[str]:
            yield "frag"
            await release.wait()
            yield "ment"

        sending = asyncio.ensure_future(connected[0].send(fragments()))
        await asyncio.sleep(0.01)
        with pytest.raises(ExceptionGroup) as caught:
            broadcast(connected, "news", raise_exceptions=True)
        [error] = caught.value.exceptions
        assert isinstance(error, compat.ConcurrencyError)
        with caplog.at_level(logging.WARNING, "websockets.server"):
            broadcast(connected, "more news")
        assert "skipped broadcast: sending a fragmented message" in caplog.text
        release.set()
        await sending
        assert await peers[0].recv() == "fragment"
        assert [await peers[1].recv(), await peers[1].recv()] == ["news", "more news"]
        # Connections that are not open are skipped silently.
        await connected[1].close()
        broadcast(connected, "after", raise_exceptions=True)
        assert await peers[0].recv() == "after"


# The mapping: reconnection.


def test_backoff_draws_websockets_delays() -> None:
    random.seed(17)
    theirs = list(itertools.islice(websockets.client.backoff(), 12))
    random.seed(17)
    ours = list(itertools.islice(backoff(), 12))
    assert ours == pytest.approx(theirs)


async def test_reconnect_delays_and_process_exception() -> None:
    port = free_port()  # nothing listens there
    failures: list[Exception] = []
    waits = []

    def process_exception(exc: Exception) -> Exception | None:
        failures.append(exc)
        return exc if len(failures) == 3 else None

    def reconnect_delays() -> Iterator[float]:
        while True:
            waits.append(0.01)
            yield 0.01

    with pytest.raises(OSError):
        async for _ in connect(
            f"ws://127.0.0.1:{port}", process_exception=process_exception,
            reconnect_delays=reconnect_delays,  # type: ignore[arg-type]
        ):
            pass
    assert len(failures) == 3
    assert all(isinstance(exc, OSError) for exc in failures)
    # The first failure is retried at once (see the howto), then the delays.
    assert len(waits) == 1


async def test_reconnect_at_once_after_a_connection_that_worked() -> None:
    count = itertools.count()

    async def handler(ws: Any) -> None:
        await ws.send(str(next(count)))

    received = []
    loop = asyncio.get_running_loop()
    async with websockets_server(handler) as uri:
        start = loop.time()
        async for ws in connect(uri):
            with contextlib.suppress(compat.ConnectionClosed):
                received.append(await ws.recv())
            if len(received) == 3:
                break
    assert received == ["0", "1", "2"]
    assert loop.time() - start < 1  # websockets' backoff starts at up to 5 s


# The mapping: the rest of the server's API.


def test_basic_auth_arguments() -> None:
    with pytest.raises(ValueError):
        basic_auth()
    with pytest.raises(ValueError):
        basic_auth(credentials=("a", "b"), check_credentials=lambda user, password: True)
    with pytest.raises(TypeError):
        basic_auth(credentials=[("a", 1)])  # type: ignore[list-item]
    assert inspect.signature(basic_auth).parameters.keys() == inspect.signature(
        websockets.asyncio.server.basic_auth
    ).parameters.keys()


async def test_basic_auth_with_check_credentials() -> None:
    async def check(username: str, password: str) -> bool:
        return password == f"{username}!"

    async def handler(ws: ServerConnection) -> None:
        await ws.send(ws.username or "")

    process_request = basic_auth(check_credentials=check)
    async with serve(handler, "127.0.0.1", 0, process_request=process_request) as server:
        port = server.sockets[0].getsockname()[1]
        async with ws_connect(f"ws://eve:eve!@127.0.0.1:{port}") as ws:
            assert await ws.recv() == "eve"
        with pytest.raises(websockets.exceptions.InvalidStatus):
            await ws_connect(f"ws://eve:eve@127.0.0.1:{port}")


async def test_unix_serve_and_unix_connect(tmp_path: Path) -> None:
    path = str(tmp_path / "socket")

    async def handler(ws: ServerConnection) -> None:
        await ws.send(ws.request.path)

    async with unix_serve(handler, path):
        async with compat.unix_connect(path) as ws:
            assert await ws.recv() == "/"
        async with compat.unix_connect(path, "ws://localhost/there") as ws:
            assert await ws.recv() == "/there"


async def test_serve_awaited_and_closed() -> None:
    server = await serve(nothing, "127.0.0.1", 0, start_serving=False)
    assert isinstance(server, compat.Server)
    assert not server.is_serving()
    await server.start_serving()
    port = server.sockets[0].getsockname()[1]
    async with ws_connect(f"ws://127.0.0.1:{port}") as ws:
        assert len(server.connections) == 1
        server.close(code=1012, reason="restart")
        await asyncio.wait_for(server.wait_closed(), 5)
        await ws.wait_closed()
        assert ws.close_code == 1012


async def test_route() -> None:
    pytest.importorskip("werkzeug")
    from werkzeug.routing import Map, Rule

    async def item(ws: ServerConnection, number: int) -> None:
        await ws.send(str(number * 2))

    url_map = Map([Rule("/items/<int:number>", endpoint=item)])
    async with compat.route(url_map, "127.0.0.1", 0, max_queue=(4, 1)) as server:
        assert server.options.message_queue_size == 4
        port = server.sockets[0].getsockname()[1]
        async with ws_connect(f"ws://127.0.0.1:{port}/items/21") as ws:
            assert await ws.recv() == "42"
    with pytest.raises(NotImplementedError):
        compat.route(url_map, "127.0.0.1", 0, create_router=object)
