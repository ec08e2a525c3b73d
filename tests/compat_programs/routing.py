#!/usr/bin/env python
"""One server, two kinds of connections, dispatched on the path."""

import asyncio
import os

from websockets.asyncio.router import route
from werkzeug.routing import Map, Rule

HOST = os.environ.get("HOST", "localhost")
PORT = int(os.environ.get("PORT", "8765"))


async def clock(websocket):
    await websocket.send("tick")


async def room(websocket, name, number):
    await websocket.send(f"room {name} #{number}")


url_map = Map(
    [
        Rule("/clock", endpoint=clock),
        Rule("/rooms/<name>/<int:number>", endpoint=room),
    ]
)


async def main():
    async with route(url_map, HOST, PORT) as server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
