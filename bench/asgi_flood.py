"""How much memory an ASGI server holds for a client that floods an endpoint
which never calls ``receive()``: uvicorn with this library's protocol, and
with uvicorn's own ``websockets-sansio`` and ``wsproto`` protocols.

    python bench/asgi_flood.py [--seconds 5] [--size 65536]

For each, a uvicorn process serves a Starlette endpoint that accepts and
then never reads (``--ws-max-queue 1 --ws-max-size 1048576``, no
compression); one client sends binary messages as fast as ``send()`` lets
it for ``--seconds``. Printed: the server's RSS growth, what the client
managed to send, and whether its ``send()`` ended up blocked (TCP
backpressure reached it). Facts for the docs, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parent.parent
SERVER = r"""
import asyncio, sys, uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute

async def flood_target(websocket):
    await websocket.accept()
    await asyncio.Event().wait()

app = Starlette(routes=[WebSocketRoute("/flood", flood_target)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), ws=sys.argv[2], ws_max_queue=1,
            ws_max_size=2**20, ws_per_message_deflate=False, log_level="error", lifespan="off")
"""
PROTOCOLS = {
    "websockets_lite": "websockets_lite.uvicorn:WebSocketProtocol",
    "websockets-sansio": "websockets-sansio",
    "wsproto": "wsproto",
}


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


async def measure(protocol: str, seconds: float, size: int) -> dict[str, float]:
    from websockets_lite import connect

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(port), protocol], env=env)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
        before = rss_kib(process.pid)
        sent = 0
        async with connect(f"ws://127.0.0.1:{port}/flood", compression=None,
                           max_message_size=None) as ws:
            message = os.urandom(size)

            async def flood() -> None:
                nonlocal sent
                while True:
                    await ws.send(message)
                    sent += len(message)

            task = asyncio.ensure_future(flood())
            await asyncio.sleep(seconds)
            blocked = bool(ws._write_flow.waiters)
            growth = rss_kib(process.pid) - before
            task.cancel()
            ws.abort()
        return {"growth_mib": growth / 1024, "sent_mib": sent / 2**20, "blocked": blocked}
    finally:
        process.kill()
        process.wait()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--size", type=int, default=65536)
    args = parser.parse_args()
    print(f"{'protocol':<18} {'RSS growth':>12} {'client sent':>12}  client blocked")
    for name, protocol in PROTOCOLS.items():
        result = await measure(protocol, args.seconds, args.size)
        print(f"{name:<18} {result['growth_mib']:>9.1f} MiB {result['sent_mib']:>8.0f} MiB"
              f"  {'yes' if result['blocked'] else 'no'}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
