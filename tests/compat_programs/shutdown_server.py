#!/usr/bin/env python
"""A server that shuts down gracefully on SIGTERM: it stops accepting,
closes open connections with 1001 (going away) and exits."""

import asyncio
import os
import signal

from websockets.asyncio.server import serve

HOST = os.environ.get("HOST", "localhost")
PORT = int(os.environ.get("PORT", "8765"))


async def handler(websocket):
    async for message in websocket:
        await websocket.send(message)


async def server():
    async with serve(handler, HOST, PORT) as server:
        # Close the server when receiving SIGTERM.
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, server.close)
        await server.wait_closed()
    print("server closed")


if __name__ == "__main__":
    asyncio.run(server())
