#!/usr/bin/env python
"""A counter shared by every client: "plus" and "minus" actions change it,
and every client sees the value and how many users are connected."""

import asyncio
import json
import logging
import os

from websockets.asyncio.server import broadcast, serve

HOST = os.environ.get("HOST", "localhost")
PORT = int(os.environ.get("PORT", "6789"))

logging.basicConfig()

USERS = set()

VALUE = 0


def users_event():
    return json.dumps({"type": "users", "count": len(USERS)})


def value_event():
    return json.dumps({"type": "value", "value": VALUE})


async def counter(websocket):
    global USERS, VALUE
    try:
        # Register the user.
        USERS.add(websocket)
        broadcast(USERS, users_event())
        # Send the current state to the user.
        await websocket.send(value_event())
        # Manage state changes.
        async for message in websocket:
            event = json.loads(message)
            if event["action"] == "minus":
                VALUE -= 1
                broadcast(USERS, value_event())
            elif event["action"] == "plus":
                VALUE += 1
                broadcast(USERS, value_event())
            else:
                logging.error("unsupported event: %s", event)
    finally:
        # Unregister the user.
        USERS.remove(websocket)
        broadcast(USERS, users_event())


async def main():
    async with serve(counter, HOST, PORT):
        await asyncio.get_running_loop().create_future()  # run forever


if __name__ == "__main__":
    asyncio.run(main())
