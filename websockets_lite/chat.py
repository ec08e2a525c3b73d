"""The chat demo: a web page and its WebSocket endpoint, built from the
patterns (``python -m websockets_lite chat``).

- ``process_request`` serves the page at ``/`` and a health check at
  ``/healthz``; the WebSocket endpoint is
  ``/ws?room=ROOM&name=NAME[&client=ID][&since=POSITION]``;
- each connection subscribes to its room's topic on a :class:`Hub` with a
  history, with presence, and to the room's presence topic; the room's
  latest messages come first on join; a page that reconnects gives the
  position of the last message it showed and gets exactly what it missed;
- every message sent to the page carries its position; the page keeps
  what is typed until the room echoes it back, and reconnects with backoff;
- the Hub is in memory by default; with ``--redis URL`` rooms (history and
  presence included) are shared by every process using that Redis
  (``--workers N`` starts N of them on one port with ``reuse_port``).

Events sent to the page, as JSON: ``message`` (``name``, ``tag``, ``text``,
``cid``, ``position``), ``ready`` (``recovered``: ``null`` on a first join,
``false`` when missed messages could not be recovered), ``online``
(``members``: id -> ``{"name", "tag"}``), ``join`` / ``leave`` (``id``,
``info``), ``error`` (``text``). The page sends ``{"text", "cid"}`` (or
plain text).
"""

from __future__ import annotations

import asyncio
import hashlib
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
from .pubsub import BackendError, Hub, Position, SubscriptionLost
from .server import Handler, ProcessRequest, ServerProtocol, serve
from .typing import Data

__all__ = ["PAGE", "main", "make_handler", "make_hub", "process_request", "run_workers"]

#: Longest chat message accepted, in bytes; longer ones close with 1009.
MAX_MESSAGE = 4096
#: Messages kept per room, and how many a page gets when it joins.
HISTORY_SIZE = 200
HISTORY_ON_JOIN = 50
#: A room unused for this long (seconds) loses its history.
HISTORY_TTL = 24 * 3600

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>websockets_lite chat</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 48em; margin: 2em auto; padding: 0 1em; }
  #main { display: flex; gap: 1em; }
  #log { flex: 1; border: 1px solid #ccc; height: 22em; overflow-y: auto; padding: .5em; }
  #log p { margin: .2em 0; }
  #people { width: 12em; }
  #online { list-style: none; padding: 0; margin: 0; }
  .system { color: #777; font-style: italic; }
  .pending { color: #999; }
  .tag { color: #999; font-size: .8em; }
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
  <div id="main">
    <div id="log" aria-live="polite"></div>
    <aside id="people"><strong>Online</strong><ul id="online"></ul></aside>
  </div>
  <form id="send">
    <input id="text" autocomplete="off" maxlength="1000" placeholder="Say something">
    <button>Send</button>
  </form>
  <p id="hint" class="system"></p>
</section>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
if (params.get("name")) $("name").value = params.get("name");
if (params.get("room")) $("room").value = params.get("room");

// One id per browser tab, kept across reloads and reconnections: it tells
// people with the same name apart.
let client = sessionStorage.getItem("chat-client");
if (!client) {
  client = Math.random().toString(16).slice(2, 10);
  sessionStorage.setItem("chat-client", client);
}
const chat = {
  ws: null, name: "", room: "", position: null, delay: 500, members: {},
  pending: [],  // {cid, text, line}: typed, not yet echoed by the room
};
window.chat = chat;  // for tests and the curious

function line(text, className) {
  const p = document.createElement("p");
  p.className = className;
  p.textContent = text;
  $("log").append(p);
  $("log").scrollTop = $("log").scrollHeight;
  return p;
}

function renderOnline() {
  const list = $("online");
  list.replaceChildren();
  for (const info of Object.values(chat.members)) {
    const item = document.createElement("li");
    item.textContent = `${info.name} #${info.tag}`;
    list.append(item);
  }
}

function newer(position) {
  // Positions are "epoch:offset": within an epoch, offsets only grow.
  if (!chat.position) return true;
  const [epoch, offset] = position.split(/:(?=[^:]*$)/);
  const [lastEpoch, lastOffset] = chat.position.split(/:(?=[^:]*$)/);
  return epoch !== lastEpoch || Number(offset) > Number(lastOffset);
}

function handle(event) {
  if (event.type === "message") {
    if (!newer(event.position)) return;  // shown already
    chat.position = event.position;
    const mine = chat.pending.findIndex((item) => item.cid === event.cid);
    if (mine >= 0) chat.pending.splice(mine, 1)[0].line.remove();
    const p = line(`${event.name}: ${event.text}`, "message");
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = ` #${event.tag}`;
    p.insertBefore(tag, p.firstChild.splitText(event.name.length));
  } else if (event.type === "ready") {
    if (event.recovered === false) line("some messages were missed while disconnected", "system");
    for (const item of chat.pending) send(item);  // what the room did not echo yet
  } else if (event.type === "online") {
    chat.members = event.members;
    renderOnline();
  } else if (event.type === "join" || event.type === "leave") {
    if (event.type === "join") chat.members[event.id] = event.info;
    else delete chat.members[event.id];
    renderOnline();
    line(`${event.info.name} #${event.info.tag} ${event.type === "join" ? "joined" : "left"}`,
         "system");
  } else if (event.type === "error") {
    line(event.text, "system");
  }
}

function send(item) {
  if (chat.ws && chat.ws.readyState === WebSocket.OPEN) {
    chat.ws.send(JSON.stringify({text: item.text, cid: item.cid}));
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = new URLSearchParams({room: chat.room, name: chat.name, client});
  if (chat.position) query.set("since", chat.position);
  const ws = new WebSocket(`${scheme}://${location.host}/ws?${query}`);
  chat.ws = ws;
  $("status").textContent = "connecting...";
  ws.onopen = () => {
    chat.delay = 500;
    $("status").textContent = `${chat.name} in room ${chat.room}`;
  };
  ws.onmessage = (message) => handle(JSON.parse(message.data));
  ws.onclose = (close) => {
    if (chat.ws !== ws) return;
    chat.ws = null;
    // Exponential backoff with jitter: a restarted server is not hammered.
    const delay = chat.delay * (0.5 + Math.random() / 2);
    chat.delay = Math.min(chat.delay * 2, 10000);
    const why = close.code === 1006 ? "connection lost" : `closed (${close.code})`;
    $("status").textContent = `${why}; reconnecting in ${(delay / 1000).toFixed(1)} s...`;
    setTimeout(connect, delay);
  };
}

function join() {
  chat.name = $("name").value.trim();
  chat.room = $("room").value.trim();
  if (!chat.name || !chat.room) return;
  // In the address, so that a reload joins the same room again.
  history.replaceState(null, "", "?" + new URLSearchParams({room: chat.room, name: chat.name}));
  $("join").hidden = true;
  $("chat").hidden = false;
  connect();
}

$("send").onsubmit = (event) => {
  event.preventDefault();
  const text = $("text").value.trim();
  if (!text) {
    $("hint").textContent = "Type a message first.";
    return;
  }
  $("hint").textContent = "";
  const item = {cid: Math.random().toString(16).slice(2, 14), text};
  item.line = line(`${chat.name}: ${text} (sending...)`, "pending");
  chat.pending.push(item);
  send(item);
  $("text").value = "";
};
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
    if path == "/metrics":  # served by Metrics when prometheus_client is there
        return Response(501, body="Metrics need prometheus_client: "
                                  "pip install websockets_lite[metrics]\n")
    return Response(404, body="Not found.\n")


def metrics_for(hub: Hub) -> ProcessRequest:
    """The page's process_request, with Prometheus metrics at /metrics when
    prometheus_client is installed."""
    try:
        from .metrics import Metrics
    except ImportError:  # pragma: no cover  (the module itself needs nothing)
        return process_request
    try:
        return Metrics(hub=hub, fallback=process_request).process_request
    except ImportError:
        return process_request


def with_position(topic: str, position: Position, message: Data) -> Data:
    """The hub's formatter: add the position to a published event (JSON
    text that this module wrote, so it ends with a closing brace)."""
    assert isinstance(message, str)
    return f'{message[:-1]}, "position": "{position}"}}'


def make_hub(redis_url: str | None = None) -> Hub:
    """A hub with a history per room, in memory or shared through Redis."""
    if redis_url is None:
        return Hub(history_size=HISTORY_SIZE, history_ttl=HISTORY_TTL, formatter=with_position)
    from .pubsub.redis import RedisBackend

    backend = RedisBackend(
        redis_url, history_size=HISTORY_SIZE, history_ttl=HISTORY_TTL,
        backoff=Backoff(initial=0.2, maximum=5.0),
    )
    return Hub(backend, formatter=with_position)


def make_handler(hub: Hub) -> Handler:
    """The WebSocket endpoint: one room per topic on ``hub``."""

    async def handler(ws: ServerProtocol) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(ws.request.path).query)
        room = query.get("room", ["lobby"])[0].strip()[:64] or "lobby"
        name = query.get("name", ["anonymous"])[0].strip()[:32] or "anonymous"
        # A short tag tells people with the same name apart; it follows the
        # page's client id, so a page that reconnects keeps it.
        client = query.get("client", [ws.id.hex])[0][:64]
        tag = hashlib.sha256(client.encode()).hexdigest()[:4]
        try:
            since = Position.parse(query["since"][0]) if "since" in query else None
        except ValueError:
            await ws.close(1008, "invalid position")
            return
        topic = f"room:{room}"

        async def consumer(message: Data) -> None:
            if not isinstance(message, str):
                await ws.close(1003, "text messages only")
                return
            try:
                event = json.loads(message)
            except ValueError:
                event = {"text": message}
            if not isinstance(event, dict) or not isinstance(event.get("text"), str):
                event = {"text": message}
            text = event["text"].strip()
            cid = event.get("cid")
            if not text:
                await ws.send(json.dumps({"type": "error", "text": "Blank messages are not sent."}))
                return
            fields = {"type": "message", "name": name, "tag": tag, "text": text}
            if isinstance(cid, str) and len(cid) <= 64:
                fields["cid"] = cid
            try:
                await hub.publish(topic, json.dumps(fields))
            except BackendError:
                await ws.close(1013, "chat unavailable; try again later")

        try:
            async with hub.subscribe(ws, hub.presence_topic(topic), formatter=None):
                recovered_if_resumed: bool | None = None
                if since is None:
                    # The room's latest messages, then everything after them.
                    recent = await hub.history(topic, limit=HISTORY_ON_JOIN)
                    for position, message in recent:
                        await ws.send(with_position(topic, position, message))
                    since = recent[-1][0] if recent else await hub.position(topic)
                else:
                    recovered_if_resumed = True
                presence = {"name": name, "tag": tag}
                async with hub.subscribe(ws, topic, since=since, presence=presence) as room_:
                    if recovered_if_resumed is not None:
                        recovered_if_resumed = room_.recovered
                    await ws.send(json.dumps({"type": "ready", "recovered": recovered_if_resumed}))
                    members = await hub.presence(topic)
                    await ws.send(json.dumps({"type": "online", "members": members}))
                    await consume(ws, consumer)
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
    if redis_url is not None:
        problem = await _check_redis(redis_url)
        if problem is not None:
            print(f"cannot reach Redis at {redis_url}: {problem}", file=sys.stderr, flush=True)
            return 1
    async with make_hub(redis_url) as hub:
        try:
            server = await serve(
                make_handler(hub),
                host,
                port,
                process_request=metrics_for(hub),
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
