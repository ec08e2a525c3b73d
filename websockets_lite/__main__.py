"""The command line: ``python -m websockets_lite serve | connect URL | chat``
(also ``python -m websockets_lite URL``, and the ``websockets-lite`` script).

``serve`` runs an echo server until SIGINT or SIGTERM, then shuts down
gracefully (connections are closed with 1001). ``connect`` is an interactive
client: each line read from stdin is sent as a text message, each message
received is printed. On a terminal it shows a ``>`` prompt and marks
received messages with ``<``; with a pipe it prints messages alone, one per
line, for scripts. At the end of its input it waits until the server has
been quiet for ``LINGER`` seconds (replies may still be on their way), then
closes the connection. Errors a user can cause (a bad URL, a port in use, a
Redis that cannot be reached) print one line, not a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import threading

from . import chat
from .client import connect
from .exceptions import ConnectionClosed, WebSocketError
from .server import ServerProtocol, serve
from .typing import Data
from .version import __version__

#: Seconds of silence from the server after the end of input before closing.
LINGER = 0.5


async def echo(ws: ServerProtocol) -> None:
    async for message in ws:
        await ws.send(message)


async def run_server(host: str, port: int) -> int:
    try:
        server = await serve(echo, host, port)
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else exc
        print(f"cannot listen on {host}:{port}: {why}", file=sys.stderr)
        return 1
    async with server:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, server.close)
        bound = server.sockets[0].getsockname()
        print(f"echo server listening on ws://{host}:{bound[1]}", flush=True)
        await server.serve_forever()
    print("server stopped", file=sys.stderr)
    return 0


def _format(message: Data) -> str:
    if isinstance(message, str):
        return message
    return f"<binary, {len(message)} bytes> {message[:64].hex()}"


class Console:
    """Where the client prints. On a terminal: a ``> `` prompt on the input
    line, and received messages inserted above it with ``< ``, so that they
    do not break what is being typed. Elsewhere: plain lines."""

    def __init__(self, interactive: bool) -> None:
        self.interactive = interactive

    def prompt(self) -> None:
        if self.interactive:
            sys.stdout.write("> ")
            sys.stdout.flush()

    def received(self, message: Data) -> None:
        if not self.interactive:
            print(_format(message), flush=True)
            return
        # Save the cursor; a line feed makes room at the bottom of the
        # screen; back up, insert a blank line above the input line, write
        # there; restore the cursor and follow the input line down.
        sys.stdout.write(f"\0337\n\033[A\033[L< {_format(message)}\0338\033[B")
        sys.stdout.flush()

    def status(self, text: str) -> None:
        if self.interactive:
            sys.stdout.write(f"\r\033[K{text}\n")
            sys.stdout.flush()
        else:
            print(text, file=sys.stderr)


def _read_lines(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[bytes | None]) -> None:
    # A daemon thread: it cannot keep the process alive, unlike asyncio's
    # default executor, and it reads terminals, pipes and files alike.
    for line in sys.stdin.buffer:
        loop.call_soon_threadsafe(lines.put_nowait, line.rstrip(b"\r\n"))
    loop.call_soon_threadsafe(lines.put_nowait, None)


async def run_client(url: str) -> int:
    console = Console(sys.stdin.isatty() and sys.stdout.isatty())
    try:
        ws = await connect(url, message_queue_size=64)
    except (WebSocketError, OSError) as exc:
        print(f"failed to connect to {url}: {exc}", file=sys.stderr)
        return 1
    console.status(f"connected to {url}")
    console.prompt()

    received = asyncio.Event()

    async def print_messages() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                console.received(message)
                received.set()

    printer = asyncio.create_task(print_messages())
    lines: asyncio.Queue[bytes | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    threading.Thread(target=_read_lines, args=(loop, lines), daemon=True).start()
    try:
        while not printer.done():
            line = asyncio.ensure_future(lines.get())
            await asyncio.wait([line, printer], return_when=asyncio.FIRST_COMPLETED)
            if not line.done():
                line.cancel()
                break
            raw = line.result()
            if raw is None:
                await _linger(received, printer)
                break
            try:
                text = raw.decode()
            except UnicodeDecodeError:
                text = raw.decode(errors="replace")
                console.status("that line is not valid UTF-8: sent with U+FFFD in its place")
            try:
                await ws.send(text)
            except ConnectionClosed:
                break
            console.prompt()
    finally:
        await ws.close()
        await printer
    console.status(f"connection closed: {ws.close_code} {ws.close_reason}".rstrip())
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


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (0 to 65535)")
    return port


def _workers(value: str) -> int:
    try:
        workers = int(value)
    except ValueError:
        workers = 0
    if workers < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of workers (1 or more)")
    return workers


def parser(prog: str) -> argparse.ArgumentParser:
    formatter = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog=prog,
        formatter_class=formatter,
        description="WebSocket client, echo server and chat demo. A bare ws:// or wss:// "
        "URL is the same as 'connect URL'.",
    )
    parser.add_argument("--version", action="version", version=f"websockets_lite {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser(
        "serve", help="run an echo server", formatter_class=formatter
    )
    serve_parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve_parser.add_argument("--port", type=_port, default=8765, help="port (0: any free one)")
    connect_parser = commands.add_parser(
        "connect", help="send lines from stdin, print messages received",
        formatter_class=formatter,
    )
    connect_parser.add_argument("url", help="ws:// or wss:// URL")
    chat_parser = commands.add_parser(
        "chat", help="run the chat demo: a web page and its rooms", formatter_class=formatter
    )
    chat_parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    chat_parser.add_argument("--port", type=_port, default=8000, help="port (0: any free one)")
    chat_parser.add_argument("--redis", metavar="URL", help="share rooms through this Redis")
    chat_parser.add_argument("--workers", type=_workers, default=1,
                             help="processes on one port (needs --redis)")
    chat_parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None, prog: str = "python -m websockets_lite") -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0].startswith(("ws://", "wss://")):
        argv = ["connect", *argv]  # as websockets users type it
    args = parser(prog).parse_args(argv)
    try:
        if args.command == "serve":
            return asyncio.run(run_server(args.host, args.port))
        if args.command == "chat":
            return chat.main(args.host, args.port, args.redis, args.workers, args.worker)
        return asyncio.run(run_client(args.url))
    except KeyboardInterrupt:
        return 130


def run() -> None:
    """Entry point of the ``websockets-lite`` console script."""
    sys.exit(main(prog=os.path.basename(sys.argv[0])))


if __name__ == "__main__":
    sys.exit(main())
