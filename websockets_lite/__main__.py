"""The command line: ``python -m websockets_lite serve | connect URL | chat``.

``serve`` runs an echo server until SIGINT or SIGTERM, then shuts down
gracefully (connections are closed with 1001). ``connect`` is an interactive
client: each line read from stdin is sent as a text message, each message
received is printed; it works with a pipe as well as a terminal. At the end
of its input it waits until the server has been quiet for ``LINGER`` seconds
(replies may still be on their way), then closes the connection.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import threading

from . import chat
from .client import connect
from .exceptions import ConnectionClosed, WebSocketError
from .server import ServerProtocol, serve
from .typing import Data

#: Seconds of silence from the server after the end of input before closing.
LINGER = 0.5


async def echo(ws: ServerProtocol) -> None:
    async for message in ws:
        await ws.send(message)


async def run_server(host: str, port: int) -> None:
    async with serve(echo, host, port) as server:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, server.close)
        bound = server.sockets[0].getsockname()
        print(f"echo server listening on ws://{host}:{bound[1]}", flush=True)
        await server.serve_forever()
    print("server stopped", file=sys.stderr)


def _format(message: Data) -> str:
    if isinstance(message, str):
        return message
    return f"<binary, {len(message)} bytes> {message[:64].hex()}"


def _read_lines(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
    # A daemon thread: it cannot keep the process alive, unlike asyncio's
    # default executor, and it reads terminals, pipes and files alike.
    for line in sys.stdin:
        loop.call_soon_threadsafe(lines.put_nowait, line.rstrip("\r\n"))
    loop.call_soon_threadsafe(lines.put_nowait, None)


async def run_client(url: str) -> int:
    try:
        ws = await connect(url, message_queue_size=64)
    except (WebSocketError, OSError) as exc:
        print(f"failed to connect to {url}: {exc}", file=sys.stderr)
        return 1
    print(f"connected to {url}", file=sys.stderr)

    received = asyncio.Event()

    async def print_messages() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                print(_format(message), flush=True)
                received.set()

    printer = asyncio.create_task(print_messages())
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    threading.Thread(target=_read_lines, args=(loop, lines), daemon=True).start()
    try:
        while not printer.done():
            line = asyncio.ensure_future(lines.get())
            await asyncio.wait([line, printer], return_when=asyncio.FIRST_COMPLETED)
            if not line.done():
                line.cancel()
                break
            text = line.result()
            if text is None:
                await _linger(received, printer)
                break
            try:
                await ws.send(text)
            except ConnectionClosed:
                break
    finally:
        await ws.close()
        await printer
    print(f"connection closed: {ws.close_code} {ws.close_reason}".rstrip(), file=sys.stderr)
    return 0


async def _linger(received: asyncio.Event, printer: asyncio.Task[None]) -> None:
    """Wait until no message arrived for LINGER seconds, or the connection ended."""
    while not printer.done():
        received.clear()
        waiter = asyncio.ensure_future(received.wait())
        try:
            done, _ = await asyncio.wait(
                [waiter, printer], timeout=LINGER, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()
        if waiter not in done:
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m websockets_lite")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run an echo server")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8765)
    connect_parser = commands.add_parser(
        "connect", help="send lines from stdin, print messages received"
    )
    connect_parser.add_argument("url", help="ws:// or wss:// URL")
    chat_parser = commands.add_parser("chat", help="run the chat demo: a web page and its rooms")
    chat_parser.add_argument("--host", default="127.0.0.1")
    chat_parser.add_argument("--port", type=int, default=8000)
    chat_parser.add_argument("--redis", metavar="URL", help="share rooms through this Redis")
    chat_parser.add_argument("--workers", type=int, default=1,
                             help="processes on one port (needs --redis)")
    chat_parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            asyncio.run(run_server(args.host, args.port))
            return 0
        if args.command == "chat":
            return chat.main(args.host, args.port, args.redis, args.workers, args.worker)
        return asyncio.run(run_client(args.url))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
