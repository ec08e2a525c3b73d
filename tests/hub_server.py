"""A server process for the Redis Hub tests.

    python -m tests.hub_server REDIS_URL HISTORY_SIZE PRESENCE_TTL

prints its port, then serves:

- ``/sub[?since=EPOCH:OFFSET]``: subscribes to "room" with presence (its
  process id), sends ``{"recovered": ...}`` once subscribed, then every
  message as ``{"position": ..., "message": ...}``; closes with 1013 when
  the subscription is lost;
- ``/watch``: subscribes to the room's presence topic;
- ``/pub?n=N&tag=T``: publishes ``T-0`` .. ``T-{N-1}``, then sends "done".
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.parse

from websockets_lite import (
    Backoff,
    Hub,
    Position,
    RedisBackend,
    ServerProtocol,
    SubscriptionLost,
    serve,
)


def stamped(topic: str, position: Position, message: str | bytes) -> str:
    return json.dumps({"position": str(position), "message": message})


async def main(url: str, history_size: int, presence_ttl: float) -> None:
    backend = RedisBackend(
        url, history_size=history_size, presence_ttl=presence_ttl, heartbeat=0.5,
        backoff=Backoff(initial=0.05, maximum=0.2),
    )
    hub = Hub(backend, formatter=stamped)

    async def handler(ws: ServerProtocol) -> None:
        parts = urllib.parse.urlsplit(ws.request.path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        try:
            if parts.path == "/pub":
                for i in range(int(query["n"])):
                    await hub.publish("room", f"{query['tag']}-{i}")
                await ws.send("done")
                await ws.wait_closed()
            elif parts.path == "/watch":
                async with hub.subscribe(ws, hub.presence_topic("room"), formatter=None):
                    await ws.send("ready")
                    await ws.wait_closed()
            else:
                since = Position.parse(query["since"]) if "since" in query else None
                async with hub.subscribe(
                    ws, "room", since=since, presence={"pid": os.getpid()}
                ) as subscription:
                    await ws.send(json.dumps({"recovered": subscription.recovered}))
                    await ws.wait_closed()
        except SubscriptionLost:
            await ws.close(1013, "subscription lost")

    async with hub, serve(handler, "127.0.0.1", 0, max_message_size=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
