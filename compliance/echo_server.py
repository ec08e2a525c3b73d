"""Echo server under test by Autobahn|Testsuite's fuzzingclient.

Limits are raised as the suite needs (9.* sends 16 MiB messages and 4 MiB in
64-byte frames); keepalive is off so that pings don't interfere with cases.
Prints ``LISTENING ws://127.0.0.1:PORT`` once ready.
"""

from __future__ import annotations

import asyncio
import math
import sys

from websockets_lite import ServerProtocol, serve


async def echo(ws: ServerProtocol) -> None:
    async for message in ws:
        await ws.send(message)


async def main(port: int) -> None:
    async with serve(
        echo,
        "127.0.0.1",
        port,
        max_message_size=2**25,
        max_fragments=math.inf,
        message_queue_size=16,
        ping_interval=None,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"LISTENING ws://127.0.0.1:{port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 9001))
