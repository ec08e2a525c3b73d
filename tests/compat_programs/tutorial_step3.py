#!/usr/bin/env python
"""Connect Four, step 3: step 2 made ready for deployment. The port comes
from the environment, /healthz answers health checks, and SIGTERM shuts
the server down gracefully."""

import asyncio
import http
import json
import os
import secrets
import signal

from connect4 import PLAYER1, PLAYER2, Connect4
from websockets.asyncio.connection import broadcast
from websockets.asyncio.server import serve

HOST = os.environ.get("HOST", "")
PORT = int(os.environ.get("PORT", "8001"))

JOIN = {}

WATCH = {}


async def error(websocket, message):
    """Send an error message."""
    event = {"type": "error", "message": message}
    await websocket.send(json.dumps(event))


async def replay(websocket, game):
    """Send the moves already played."""
    # A copy: moves may be played while this runs.
    for player, column, row in game.moves.copy():
        event = {"type": "play", "player": player, "column": column, "row": row}
        await websocket.send(json.dumps(event))


async def play(websocket, game, player, connected):
    """Receive and process the moves of a player."""
    async for message in websocket:
        # Parse a "play" event from the UI.
        event = json.loads(message)
        assert event["type"] == "play"
        column = event["column"]

        try:
            # Play the move.
            row = game.play(player, column)
        except ValueError as exc:
            # Send an "error" event if the move was illegal.
            await error(websocket, str(exc))
            continue

        # Send a "play" event to update the UI of everyone in the game.
        event = {"type": "play", "player": player, "column": column, "row": row}
        broadcast(connected, json.dumps(event))

        # If the move is winning, send a "win" event.
        if game.winner is not None:
            event = {"type": "win", "player": game.winner}
            broadcast(connected, json.dumps(event))


async def start(websocket):
    """Handle a connection from the first player: start a new game."""
    # A game, the set of connections that receive its moves, and the keys
    # to join and to watch it.
    game = Connect4()
    connected = {websocket}

    join_key = secrets.token_urlsafe(12)
    JOIN[join_key] = game, connected

    watch_key = secrets.token_urlsafe(12)
    WATCH[watch_key] = game, connected

    try:
        # Send the keys to the first player's browser, which makes links of them.
        event = {"type": "init", "join": join_key, "watch": watch_key}
        await websocket.send(json.dumps(event))
        # Receive and process the moves of the first player.
        await play(websocket, game, PLAYER1, connected)
    finally:
        del JOIN[join_key]
        del WATCH[watch_key]


async def join(websocket, join_key):
    """Handle a connection from the second player: join a game."""
    try:
        game, connected = JOIN[join_key]
    except KeyError:
        await error(websocket, "Game not found.")
        return

    # Register to receive the moves of this game.
    connected.add(websocket)
    try:
        # Send the moves already played.
        await replay(websocket, game)
        # Receive and process the moves of the second player.
        await play(websocket, game, PLAYER2, connected)
    finally:
        connected.remove(websocket)


async def watch(websocket, watch_key):
    """Handle a connection from a spectator: watch a game."""
    try:
        game, connected = WATCH[watch_key]
    except KeyError:
        await error(websocket, "Game not found.")
        return

    # Register to receive the moves of this game.
    connected.add(websocket)
    try:
        # Send the moves already played.
        await replay(websocket, game)
        # Keep the connection open, receiving nothing.
        await websocket.wait_closed()
    finally:
        connected.remove(websocket)


async def handler(websocket):
    """Dispatch a connection according to who is connecting."""
    # Receive and parse the "init" event from the UI.
    message = await websocket.recv()
    event = json.loads(message)
    assert event["type"] == "init"

    if "join" in event:
        # The second player joins a game.
        await join(websocket, event["join"])
    elif "watch" in event:
        # A spectator watches a game.
        await watch(websocket, event["watch"])
    else:
        # The first player starts a game.
        await start(websocket)


def health_check(connection, request):
    if request.path == "/healthz":
        return connection.respond(http.HTTPStatus.OK, "OK\n")


async def main():
    async with serve(handler, HOST, PORT, process_request=health_check) as server:
        # Close the server when receiving SIGTERM.
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, server.close)
        await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
