"""A chat-like server process for the Redis tests: every message received is
published to the "room" topic, which every connection subscribes to.

    python -m tests.pubsub_server REDIS_URL      (prints its port, then serves)
"""

from __future__ import annotations

import asyncio
import sys

from websockets_lite import Backoff, Hub, RedisBackend, SubscriptionLost, serve


async def main(redis_url: str) -> None:
    backend = RedisBackend(redis_url, heartbeat=0.5, backoff=Backoff(initial=0.05, maximum=0.2))
    hub = Hub(backend)

    async def handler(ws):  # type: ignore[no-untyped-def]
        try:
            async with hub.subscribe(ws, "room"):
                await ws.send("ready")
                async for message in ws:
                    await hub.publish("room", message)
        except SubscriptionLost:
            await ws.close(1013, "pub/sub lost")

    async with serve(handler, "127.0.0.1", 0) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
