#!/usr/bin/env python
"""The hello client over TLS; TLS_CA names the certificate authority to
trust (PEM; default: localhost.pem beside this file)."""

import asyncio
import os
import pathlib
import ssl

from websockets.asyncio.client import connect

URI = os.environ.get("URI", "wss://localhost:8765")
CA = os.environ.get("TLS_CA", pathlib.Path(__file__).with_name("localhost.pem"))

ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ssl_context.load_verify_locations(CA)


async def hello():
    async with connect(URI, ssl=ssl_context) as websocket:
        name = input("What's your name? ")

        await websocket.send(name)
        print(f">>> {name}")

        greeting = await websocket.recv()
        print(f"<<< {greeting}")


if __name__ == "__main__":
    asyncio.run(hello())
