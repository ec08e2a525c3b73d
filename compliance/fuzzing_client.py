"""Client under test by Autobahn|Testsuite's fuzzingserver.

Reads ``AUTOBAHN_URL`` and ``AUTOBAHN_AGENT``; asks for the case count, runs
every case echoing each message, then asks the suite to update its reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os

from websockets_lite import WebSocketError, connect

URL = os.environ.get("AUTOBAHN_URL", "ws://127.0.0.1:9001")
AGENT = os.environ.get("AUTOBAHN_AGENT", "websockets_lite")
OPTIONS = dict(
    max_message_size=2**25,
    max_fragments=math.inf,
    message_queue_size=16,
    ping_interval=None,
)


async def run_case(number: int) -> None:
    async with connect(f"{URL}/runCase?case={number}&agent={AGENT}", **OPTIONS) as ws:
        async for message in ws:
            await ws.send(message)


async def main() -> None:
    async with connect(f"{URL}/getCaseCount") as ws:
        count = int(await ws.recv())
    for number in range(1, count + 1):
        with contextlib.suppress(WebSocketError, OSError):  # the case judges errors
            await run_case(number)
    async with connect(f"{URL}/updateReports?agent={AGENT}") as ws:
        await ws.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
