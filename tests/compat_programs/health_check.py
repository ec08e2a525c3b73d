#!/usr/bin/env python
"""An echo server that answers health checks on /healthz over plain HTTP."""

import asyncio
import http
import os

import websockets

HOST = os.environ.get("HOST", "localhost")
PORT = int(os.environ.get("PORT", "8765"))


def health_check(connection, request):
    if request.path == "/healthz":
        return connection.respond(http.HTTPStatus.OK, "OK\n")


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def main():
    async with websockets.serve(echo, HOST, PORT, process_request=health_check) as server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
