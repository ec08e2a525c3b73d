#!/usr/bin/env python
"""The hello server over TLS; TLS_CERT names the certificate chain and key
(PEM; default: localhost.pem beside this file)."""

import asyncio
import os
import pathlib
import ssl

from websockets.asyncio.server import serve

HOST = os.environ.get("HOST", "localhost")
PORT = int(os.environ.get("PORT", "8765"))
CERT = os.environ.get("TLS_CERT", pathlib.Path(__file__).with_name("localhost.pem"))


async def hello(websocket):
    name = await websocket.recv()
    print(f"<<< {name}")

    greeting = f"Hello {name}!"

    await websocket.send(greeting)
    print(f">>> {greeting}")


ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ssl_context.load_cert_chain(CERT)


async def main():
    async with serve(hello, HOST, PORT, ssl=ssl_context) as server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
