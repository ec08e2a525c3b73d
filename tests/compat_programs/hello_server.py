#!/usr/bin/env python
"""Greets whoever connects, by the name it sends."""

import asyncio
import os

from websockets.asyncio.server import serve

HOST = os.environ.get("HOST", "localhost")
PORT = int(os.environ.get("PORT", "8765"))


async def hello(websocket):
    name = await websocket.recv()
    print(f"<<< {name}")

    greeting = f"Hello {name}!"

    await websocket.send(greeting)
    print(f">>> {greeting}")


async def main():
    async with serve(hello, HOST, PORT) as server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
