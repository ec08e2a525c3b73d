"""Server memory per idle connection: RSS growth of a server process while
N clients connect, exchange one message (so that compression state exists
when it is negotiated) and then stay idle.

    python bench/idle_mem.py [--connections 1000] [--library websockets_lite]
                             [--compression deflate|none]

Prints one JSON line: {"library", "compression", "connections", "kib_per_connection"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys

SERVER = r'''
import asyncio, sys
library, compression = sys.argv[1], (None if sys.argv[2] == "none" else sys.argv[2])

async def main():
    if library == "websockets_lite":
        import websockets_lite as lib
        async def echo(ws):
            async for message in ws:
                await ws.send(message)
        server = await lib.serve(echo, "127.0.0.1", 0, compression=compression)
    else:
        import websockets.asyncio.server as lib
        async def echo(ws):
            async for message in ws:
                await ws.send(message)
        server = await lib.serve(echo, "127.0.0.1", 0, compression=compression)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
'''


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def measure(library: str, compression: str, connections: int) -> float:
    import websockets.asyncio.client

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * connections)), hard))
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, library, compression],
        stdout=subprocess.PIPE,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (4 * connections, hard)),
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        uri = f"ws://127.0.0.1:{port}/"
        comp = None if compression == "none" else compression
        # Warm up: one connection, so that code paths and allocator pools exist.
        async with websockets.asyncio.client.connect(uri, compression=comp) as ws:
            await ws.send("warm up")
            await ws.recv()
        await asyncio.sleep(0.3)
        before = rss_kib(process.pid)
        clients = []
        for _ in range(connections):
            ws = await websockets.asyncio.client.connect(
                uri, compression=comp, ping_interval=None
            )
            await ws.send("hello, this is a message of a typical size: " + "x" * 64)
            await ws.recv()
            clients.append(ws)
        await asyncio.sleep(0.5)
        after = rss_kib(process.pid)
        await asyncio.gather(*(ws.close() for ws in clients))
        return (after - before) / connections
    finally:
        process.kill()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--library", default="websockets_lite")
    parser.add_argument("--compression", default="none", choices=["deflate", "none"])
    args = parser.parse_args()
    kib = asyncio.run(measure(args.library, args.compression, args.connections))
    print(json.dumps({
        "library": args.library, "compression": args.compression,
        "connections": args.connections, "kib_per_connection": round(kib, 1),
    }))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
