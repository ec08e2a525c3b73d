#!/usr/bin/env python
"""Prints every message it receives, and reconnects whenever the connection
is lost or cannot be opened."""

import asyncio
import os

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

URI = os.environ.get("URI", "ws://localhost:8765")


async def main():
    async for websocket in connect(URI):
        try:
            async for message in websocket:
                print(message, flush=True)
        except ConnectionClosed:
            continue


if __name__ == "__main__":
    asyncio.run(main())
