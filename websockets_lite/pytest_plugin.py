"""pytest fixtures for testing WebSocket servers and clients.

pytest loads this module through the ``pytest11`` entry point that
websockets_lite installs (nothing happens without pytest). It needs
pytest-asyncio for its async fixtures.

- ``websocket_server``: a factory that starts a server on 127.0.0.1 with a
  free port and closes it after the test::

      async def test_echo(websocket_server, websocket_client):
          server = await websocket_server(echo)
          ws = await websocket_client(server)
          await ws.send("hi")
          assert await ws.recv() == "hi"

- ``websocket_client``: a factory that connects to a running server (or a
  URI) and closes the connection after the test.

For handlers alone, without a port, see :func:`websockets_lite.testing.connect`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from .client import ClientProtocol, connect
from .server import Server, serve

__all__ = ["RunningServer", "start_server"]


class RunningServer:
    """A server started by ``websocket_server``: the :class:`Server`, its
    port and its ``ws://`` URI."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.port: int = server.sockets[0].getsockname()[1]
        self.uri = f"ws://127.0.0.1:{self.port}"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.server, name)


async def start_server(target: Any, **kwargs: Any) -> RunningServer:
    """Start ``target`` (a handler, or a ``serve()``/``route()`` made but not
    started) on 127.0.0.1 with a free port."""
    if isinstance(target, serve):
        if kwargs:
            raise TypeError("give serve()'s arguments to serve(), not with it: "
                            f"{', '.join(sorted(kwargs))}")
        target.host, target.port = "127.0.0.1", 0
        server = await target
    else:
        server = await serve(target, "127.0.0.1", 0, **kwargs)
    return RunningServer(server)


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover
    pytest_asyncio = None  # type: ignore[assignment]

if pytest_asyncio is None:  # pragma: no cover

    @pytest.fixture(name="websocket_server")
    def _no_server() -> None:
        pytest.skip("the websocket_server fixture needs pytest-asyncio")

    @pytest.fixture(name="websocket_client")
    def _no_client() -> None:
        pytest.skip("the websocket_client fixture needs pytest-asyncio")

else:

    @pytest_asyncio.fixture
    async def websocket_server() -> AsyncIterator[Callable[..., Awaitable[RunningServer]]]:
        """Start servers on 127.0.0.1 (free ports); close them after the test."""
        running: list[RunningServer] = []

        async def start(target: Any, **kwargs: Any) -> RunningServer:
            started = await start_server(target, **kwargs)
            running.append(started)
            return started

        yield start
        for started in running:
            started.server.close()
            await started.server.wait_closed()

    @pytest_asyncio.fixture
    async def websocket_client() -> AsyncIterator[Callable[..., Awaitable[ClientProtocol]]]:
        """Connect to servers (a RunningServer or a URI); close the
        connections after the test."""
        connections: list[ClientProtocol] = []

        async def open_(
            server: RunningServer | str, path: str = "/", **kwargs: Any
        ) -> ClientProtocol:
            uri = server.uri + path if isinstance(server, RunningServer) else server
            kwargs.setdefault("proxy", None)
            connection = await connect(uri, **kwargs)
            connections.append(connection)
            return connection

        yield open_
        for connection in connections:
            await connection.close()
