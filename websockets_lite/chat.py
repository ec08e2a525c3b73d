"""The chat demo: a web page and its WebSocket endpoint, built from the
patterns (``python -m websockets_lite chat``).

- ``process_request`` serves the page at ``/`` and a health check at
  ``/healthz``; the WebSocket endpoint is ``/ws?room=ROOM&name=NAME``;
- each connection subscribes to its room's topic on a :class:`Hub` and
  :func:`consume`\\ s its messages by publishing them to the room;
- the Hub is in memory by default; with ``--redis URL`` rooms are shared by
  every process using that Redis (``--workers N`` starts N of them on one
  port with ``reuse_port``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Callable

from .client import Backoff
from .exceptions import ConnectionClosed
from .http import Request, Response
from .patterns import consume
from .pubsub import BackendError, Hub, SubscriptionLost
from .server import Handler, ServerProtocol, serve
from .typing import Data

__all__ = ["PAGE", "main", "make_handler", "process_request", "run_workers"]

#: Longest chat message accepted, in bytes; longer ones close with 1009.
MAX_MESSAGE = 4096

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>websockets_lite chat</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 42em; margin: 2em auto; padding: 0 1em; }
  #log { border: 1px solid #ccc; height: 22em; overflow-y: auto; padding: .5em; }
  #log p { margin: .2em 0; }
  .system { color: #777; font-style: italic; }
  input { padding: .3em; }
  #text { width: 75%; }
</style>
</head>
<body>
<h1>Chat</h1>
<form id="join">
  <label>Name <input id="name" required maxlength="32"></label>
  <label>Room <input id="room" required maxlength="64" value="lobby"></label>
  <button>Join</button>
</form>
<section id="chat" hidden>
  <p id="status">connecting...</p>
  <div id="log" aria-live="polite"></div>
  <form id="send">
    <input id="text" autocomplete="off" maxlength="1000" placeholder="Say something">
    <button>Send</button>
  </form>
</section>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
if (params.get("name")) $("name").value = params.get("name");
if (params.get("room")) $("room").value = params.get("room");

function show(text, system) {
  const line = document.createElement("p");
  line.textContent = text;
  line.className = system ? "system" : "message";
  $("log").append(line);
  $("log").scrollTop = $("log").scrollHeight;
}

function join() {
  const name = $("name").value, room = $("room").value;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = new URLSearchParams({ room, name });
  const ws = new WebSocket(`${scheme}://${location.host}/ws?${query}`);
  $("join").hidden = true;
  $("chat").hidden = false;
  ws.onopen = () => { $("status").textContent = `${name} in room ${room}`; };
  ws.onmessage = (event) => {
    const data = JSON.parse(event.data);
    if (data.type === "message") show(`${data.name}: ${data.text}`, false);
    else show(`${data.name} ${data.type === "join" ? "joined" : "left"}`, true);
  };
  ws.onclose = (event) => {
    $("status").textContent = `disconnected (${event.code} ${event.reason})`;
  };
  $("send").onsubmit = (event) => {
    event.preventDefault();
    if ($("text").value && ws.readyState === WebSocket.OPEN) ws.send($("text").value);
    $("text").value = "";
  };
}

$("join").onsubmit = (event) => { event.preventDefault(); join(); };
if (params.get("name") && params.get("room")) join();
</script>
</body>
</html>
"""


def process_request(ws: ServerProtocol, request: Request) -> Response | None:
    """Serve the page, the health check, and 404; let /ws through."""
    path = urllib.parse.urlsplit(request.path).path
    if path == "/ws":
        return None
    if path == "/":
        headers = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
        return Response(200, headers, PAGE)
    if path == "/healthz":
        return Response(200, body="OK\n")
    return Response(404, body="Not found.\n")


def make_handler(hub: Hub) -> Handler:
    """The WebSocket endpoint: one room per topic on ``hub``."""

    async def handler(ws: ServerProtocol) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(ws.request.path).query)
        room = query.get("room", ["lobby"])[0][:64] or "lobby"
        name = query.get("name", ["anonymous"])[0][:32] or "anonymous"
        topic = f"room:{room}"

        def event(kind: str, **fields: str) -> str:
            return json.dumps({"type": kind, "name": name, **fields})

        async def consumer(message: Data) -> None:
            if not isinstance(message, str):
                await ws.close(1003, "text messages only")
                return
            try:
                await hub.publish(topic, event("message", text=message))
            except BackendError:
                await ws.close(1013, "chat unavailable; try again later")

        try:
            async with hub.subscribe(ws, topic):
                await hub.publish(topic, event("join"))
                try:
                    await consume(ws, consumer)
                finally:
                    with contextlib.suppress(BackendError):
                        await hub.publish(topic, event("leave"))
        except (SubscriptionLost, BackendError):
            await ws.close(1013, "chat unavailable; try again later")
        except ConnectionClosed:
            pass

    return handler


def _watch_parent(loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> None:
    # A worker's stdin is a pipe from its parent: EOF means the parent is
    # gone, even if it was killed without a chance to stop its workers.
    for _ in sys.stdin:
        pass
    loop.call_soon_threadsafe(stop)


async def _check_redis(url: str) -> str | None:
    """Why Redis at ``url`` cannot be used now, or ``None`` when it answers."""
    import redis.asyncio
    from redis.exceptions import RedisError

    client = redis.asyncio.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        return str(exc) or type(exc).__name__
    finally:
        await client.aclose()
    return None


async def run(host: str, port: int, redis_url: str | None, worker: bool) -> int:
    """Serve the chat until SIGINT or SIGTERM (or, for a worker, until its
    parent process is gone). Returns 1, after one line on stderr, when the
    port cannot be bound or Redis cannot be reached at startup; a Redis that
    goes away later is told to the rooms and reconnected to."""
    backend = None
    if redis_url is not None:
        from .pubsub.redis import RedisBackend

        problem = await _check_redis(redis_url)
        if problem is not None:
            print(f"cannot reach Redis at {redis_url}: {problem}", file=sys.stderr, flush=True)
            return 1
        backend = RedisBackend(redis_url, backoff=Backoff(initial=0.2, maximum=5.0))
    async with Hub(backend) as hub:
        try:
            server = await serve(
                make_handler(hub),
                host,
                port,
                process_request=process_request,
                max_message_size=MAX_MESSAGE,
                reuse_port=worker or None,
            )
        except OSError as exc:
            why = os.strerror(exc.errno) if exc.errno else exc
            print(f"cannot listen on {host}:{port}: {why}", file=sys.stderr, flush=True)
            return 1
        async with server:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, server.close)
            if worker:
                threading.Thread(
                    target=_watch_parent, args=(loop, server.close), daemon=True
                ).start()
            bound = server.sockets[0].getsockname()[1]
            shared = f" (rooms shared through {redis_url})" if redis_url else ""
            print(f"chat demo on http://{host}:{bound}/{shared}", flush=True)
            await server.serve_forever()
    return 0


def run_workers(host: str, port: int, redis_url: str, workers: int) -> int:
    """Start ``workers`` processes serving the chat on one port (reuse_port),
    sharing rooms through Redis; stop them all on SIGINT or SIGTERM."""
    if port == 0:
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
    command = [sys.executable, "-m", "websockets_lite", "chat", "--host", host,
               "--port", str(port), "--redis", redis_url, "--worker"]
    processes = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(workers)
    ]

    def stop(signum: int, frame: object) -> None:
        for process in processes:
            process.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for process in processes:
        assert process.stdout is not None
        if not process.stdout.readline():  # each worker says when it listens
            # It failed at startup and said why on stderr: stop the others.
            stop(signal.SIGTERM, None)
            for other in processes:
                other.wait()
            return 1
    print(f"chat demo on http://{host}:{port}/ ({workers} workers, "
          f"rooms shared through {redis_url})", flush=True)
    codes = [process.wait() for process in processes]
    return max(codes, key=abs)


def main(host: str, port: int, redis_url: str | None, workers: int, worker: bool) -> int:
    if workers > 1:
        if redis_url is None:
            print("--workers needs --redis: workers share rooms through Redis", file=sys.stderr)
            return 2
        return run_workers(host, port, redis_url, workers)
    return asyncio.run(run(host, port, redis_url, worker))
