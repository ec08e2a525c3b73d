"""ASGI apps for the tests, written as users write them: Starlette and
FastAPI endpoints wrapped by websockets_lite.asgi, a raw ASGI app, Quart.

Also runnable as a process: ``python -m tests.asgi_apps chat REDIS_URL PORT``
serves the FastAPI chat on uvicorn with our protocol (prints ``READY``).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from fastapi import FastAPI, WebSocket
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket as StarletteWebSocket

from websockets_lite import Hub, broadcast, consume, registered
from websockets_lite.asgi import accept

CLIENTS: set[Any] = set()


async def echo(websocket: StarletteWebSocket) -> None:
    ws = await accept(websocket, subprotocols=["chat", "superchat"])
    await ws.send(json.dumps({
        "path": ws.request.path,
        "subprotocol": ws.subprotocol,
        "agent": ws.request.headers.get("User-Agent"),
        "native": type(ws).__name__ != "ASGIConnection",
    }))
    async for message in ws:
        if message == "close please":
            await ws.close(4000, "as asked")
            return
        await ws.send(message)


async def idle(websocket: StarletteWebSocket) -> None:
    """Registration pattern: never reads, waits for the end."""
    ws = await accept(websocket)
    with registered(CLIENTS, ws):
        await ws.send("registered")
        await ws.wait_closed()


async def flood_target(websocket: StarletteWebSocket) -> None:
    """Accepts, then never calls receive() at all."""
    await websocket.accept()
    await asyncio.Event().wait()


starlette_app = Starlette(routes=[
    WebSocketRoute("/echo", echo),
    WebSocketRoute("/idle", idle),
    WebSocketRoute("/flood", flood_target),
])


# FastAPI: the docs' ConnectionManager, done with registered() + broadcast().
fastapi_app = FastAPI()
ROOM: set[Any] = set()


@fastapi_app.websocket("/room")
async def room(websocket: WebSocket) -> None:
    ws = await accept(websocket)
    with registered(ROOM, ws):
        await ws.send("joined")
        async for message in ws:
            broadcast(ROOM, message)


@fastapi_app.post("/announce")
async def announce(text: str) -> dict[str, int]:
    return {"sent": broadcast(ROOM, text)}


def chat_app(redis_url: str) -> FastAPI:
    """A FastAPI chat whose rooms are shared through Redis by every process."""
    from websockets_lite import RedisBackend

    hub = Hub(RedisBackend(redis_url, history_size=100))
    app = FastAPI()

    @app.websocket("/chat/{room}")
    async def chat(websocket: WebSocket, room: str) -> None:
        ws = await accept(websocket)
        async with hub.subscribe(ws, room):
            await ws.send("ready")

            async def publish(message: str | bytes) -> None:
                await hub.publish(room, message)

            await consume(ws, publish)

    return app


async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A raw ASGI app: the wrapper over scope, receive and send."""
    ws = await accept(scope, receive, send)
    async for message in ws:
        await ws.send(message)


async def send_before_accept(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.send", "text": "too early"})


async def deny(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.http.response.start", "status": 401,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "websocket.http.response.body", "body": b"who are you?"})


async def receive_after_disconnect(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    events = []
    while True:
        event = await receive()
        events.append(event["type"])
        if event["type"] == "websocket.disconnect":
            break
    again = await asyncio.wait_for(receive(), 5)  # must not hang
    RESULTS.append((events, again))


RESULTS: list[Any] = []


def quart_app() -> Any:
    from quart import Quart, websocket

    app = Quart(__name__)

    @app.websocket("/echo")
    async def echo_quart() -> None:
        ws = await accept(websocket, subprotocols=["chat"])
        await ws.send(f"subprotocol {ws.subprotocol}")
        async for message in ws:
            await ws.send(message)

    return app


def main() -> None:
    import uvicorn

    _, _, redis_url, port = sys.argv
    config = uvicorn.Config(
        chat_app(redis_url), host="127.0.0.1", port=int(port), log_level="warning",
        ws="websockets_lite.uvicorn:WebSocketProtocol", lifespan="off",
    )
    server = uvicorn.Server(config)

    async def run() -> None:
        task = asyncio.ensure_future(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        print("READY", flush=True)
        await task

    asyncio.run(run())


if __name__ == "__main__":
    main()
