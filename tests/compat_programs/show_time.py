#!/usr/bin/env python
"""Sends the time to every connected client, every one to three seconds
(INTERVAL in the environment sets a fixed interval)."""

import asyncio
import datetime
import os
import random

from websockets.asyncio.server import broadcast, serve

HOST = os.environ.get("HOST", "localhost")
PORT = int(os.environ.get("PORT", "5678"))
INTERVAL = os.environ.get("INTERVAL")

CONNECTIONS = set()


async def register(websocket):
    CONNECTIONS.add(websocket)
    try:
        await websocket.wait_closed()
    finally:
        CONNECTIONS.remove(websocket)


async def show_time():
    while True:
        message = datetime.datetime.now(datetime.UTC).isoformat()
        broadcast(CONNECTIONS, message)
        await asyncio.sleep(float(INTERVAL) if INTERVAL else random.random() * 2 + 1)


async def main():
    async with serve(register, HOST, PORT):
        await show_time()


if __name__ == "__main__":
    asyncio.run(main())
