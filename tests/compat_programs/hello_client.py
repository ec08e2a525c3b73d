#!/usr/bin/env python
"""Asks for a name, sends it, prints the greeting."""

import asyncio
import os

from websockets.asyncio.client import connect

URI = os.environ.get("URI", "ws://localhost:8765")


async def hello():
    async with connect(URI) as websocket:
        name = input("What's your name? ")

        await websocket.send(name)
        print(f">>> {name}")

        greeting = await websocket.recv()
        print(f"<<< {greeting}")


if __name__ == "__main__":
    asyncio.run(hello())
