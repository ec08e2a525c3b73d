"""Echo app under test by Autobahn|Testsuite's fuzzingclient, on uvicorn with
this library's WebSocket protocol: a Starlette endpoint wrapped by
websockets_lite.asgi (which hands it the native connection underneath).

    python compliance/uvicorn_echo.py PORT

Limits are raised as the suite needs (the fragment cap through
WebSocketProtocol.configure(), as uvicorn has no option for it); keepalive
is off. Prints ``LISTENING ws://127.0.0.1:PORT`` once ready.
"""

from __future__ import annotations

import asyncio
import math
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from websockets_lite.asgi import accept
from websockets_lite.uvicorn import WebSocketProtocol


async def echo(websocket: WebSocket) -> None:
    ws = await accept(websocket)
    async for message in ws:
        await ws.send(message)


app = Starlette(routes=[WebSocketRoute("/", echo)])


# 9.* sends 4 MiB in 64-byte fragments: no cap on their count.
Protocol = WebSocketProtocol.configure(max_fragments=math.inf)


async def main(port: int) -> None:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, ws=Protocol,
        ws_max_size=2**25, ws_max_queue=16, ws_ping_interval=None, log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    print(f"LISTENING ws://127.0.0.1:{bound}", flush=True)
    await task


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 9002))
