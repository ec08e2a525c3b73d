#!/usr/bin/env python
"""Greets authenticated users by their name."""

import asyncio
import os

from websockets.asyncio.server import basic_auth, serve

HOST = os.environ.get("HOST", "localhost")
PORT = int(os.environ.get("PORT", "8765"))


async def hello(websocket):
    await websocket.send(f"Hello {websocket.username}!")


async def main():
    async with serve(
        hello,
        HOST,
        PORT,
        process_request=basic_auth(
            realm="example",
            credentials=("mary", "p@ssw0rd"),
        ),
    ) as server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
